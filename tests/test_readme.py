"""Every code snippet in README.md runs: Python blocks in order, shell lines by what they do."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import httpx
import pytest

from sealed_sessions import KeyRing, generate_key
from sealed_sessions.testing import seal
from tests.helpers import COOKIE

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == language]


def shell_lines() -> list[str]:
    lines = []
    for body in blocks("bash"):
        for line in body.splitlines():
            line = re.sub(r"\s+# .*$", "", line).strip()
            if line:
                lines.append(line)
    return lines


def run_module(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False
    )


def run_python_blocks(monkeypatch: pytest.MonkeyPatch, name: str) -> dict[str, Any]:
    """Run every Python block of the README, in order, in one fresh module named ``name``; its namespace."""
    monkeypatch.setenv("SESSION_KEY", generate_key())
    monkeypatch.delenv("DATABASE_URL", raising=False)  # the FastAPI example falls back to in-memory SQLite
    # A real module: SQLAlchemy resolves the example's annotations through sys.modules.
    module = types.ModuleType(name)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for number, code in enumerate(blocks("python"), 1):
        exec(compile(code, f"README.md python block {number}", "exec"), module.__dict__)  # noqa: S102 - our own README
    return module.__dict__


def test_python_snippets_run_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Python block in the README executes, in order, in one namespace, without error."""
    assert len(blocks("python")) >= 5
    run_python_blocks(monkeypatch, "readme_snippets")


def test_device_mode_snippet_logs_in_lists_ends_and_logs_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's device-mode app, run: two logins, the list with this device flagged, ending the other, logout."""
    asyncio.run(_device_flow(run_python_blocks(monkeypatch, "readme_devices")))


async def _device_flow(ns: dict[str, Any]) -> None:
    async with ns["engine"].begin() as conn:
        await conn.run_sync(ns["DeviceBase"].metadata.create_all)
    async with ns["Database"]() as db:
        db.add(ns["Account"](email="ada@example.com"))
        await db.commit()
    transport = httpx.ASGITransport(app=ns["devices_app"])
    async with (
        httpx.AsyncClient(transport=transport, base_url="https://testserver") as laptop,
        httpx.AsyncClient(transport=transport, base_url="https://testserver") as phone,
    ):
        for client in (laptop, phone):
            assert (await client.post("/login", params={"email": "ada@example.com"})).status_code == 200
        listed = (await laptop.get("/devices")).json()
        assert len(listed) == 2 and sum(d["current"] for d in listed) == 1
        other = next(d["id"] for d in listed if not d["current"])
        assert (await laptop.delete(f"/devices/{other}")).status_code == 204
        assert (await phone.get("/devices")).status_code == 401
        assert (await laptop.delete(f"/devices/{other}")).status_code == 404
        copy = laptop.cookies[COOKIE]
        assert (await laptop.post("/logout")).status_code == 200
        replayed = await phone.get("/devices", headers={"cookie": f"{COOKIE}={copy}"})
        assert replayed.status_code == 401
    await ns["engine"].dispose()


def test_toolkit_snippets_flash_once_and_span_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's flash app shows its message once; its large-session app splits and compresses as it says."""
    asyncio.run(_toolkit_flow(run_python_blocks(monkeypatch, "readme_toolkit")))


async def _toolkit_flow(ns: dict[str, Any]) -> None:
    transport = httpx.ASGITransport(app=ns["flash_app"])
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        changed = await client.post("/password", follow_redirects=True)
        assert changed.json() == {"messages": ["Password changed"]}
        assert (await client.get("/account")).json() == {"messages": []}

    async def store(request: Any) -> Any:
        from starlette.responses import PlainTextResponse

        request.session["cart"] = [{"sku": f"ITEM-{i:05d}", "note": os.urandom(8).hex()} for i in range(400)]
        return PlainTextResponse("ok")

    ns["big_app"].add_route("/fill", store)
    transport = httpx.ASGITransport(app=ns["big_app"])
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        names = [c.split("=", 1)[0] for c in (await client.get("/fill")).headers.get_list("set-cookie")]
        assert names == [COOKIE, f"{COOKIE}.1"]  # too large for one cookie even compressed: two parts


def test_fastapi_example_is_the_type_checked_file() -> None:
    """The README's FastAPI block is examples/quickstart.py verbatim, which mypy and a test exercise."""
    [block] = [code for code in blocks("python") if "SessionAuth(User, get_db)" in code]
    module = (ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8")
    assert block == module.split('"""', 2)[2].lstrip("\n")


def check_keygen(line: str) -> None:
    result = run_module("sealed_sessions", "keygen")
    assert result.returncode == 0, result.stderr
    KeyRing(result.stdout.strip())


def check_inspect(line: str) -> None:
    key1, key2 = generate_key(), generate_key()
    cookie = seal(key2, {"user_id": 7})
    words = shlex.split(line.replace("key1,key2", f"{key1},{key2}").replace("COOKIE_VALUE", cookie))
    env_assignment, command = words[0], words[1:]
    name, value = env_assignment.split("=", 1)
    assert command[:3] == ["python", "-m", "sealed_sessions"]
    result = run_module(*command[2:], env={**os.environ, name: value})
    assert result.returncode == 0, result.stderr
    assert '"user_id": 7' in result.stdout


def check_pip_install(line: str) -> None:
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    for named in re.findall(r"\[([a-z,]+)\]", line):
        for extra in named.split(","):
            assert extra in extras, f"README installs unknown extra {extra!r}"


def check_demo_command(line: str) -> None:
    check_pip_install(line)
    assert line.endswith(".venv/bin/python -m examples.demo")
    result = run_module("examples.demo", "--help")
    assert result.returncode == 0, result.stderr


def check_test_command(line: str) -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert line in ci.splitlines(), ".ci/run must run the README's test command exactly"
    check_pip_install(line)


def check_compose_env(line: str) -> None:
    check_keygen(line)
    assert "SEALED_SESSIONS_KEYS" in (ROOT / "docker-compose.yml").read_text(), "compose must read the key from .env"


def check_compose_up(line: str) -> None:
    # No Docker engine runs here: tests/demo/test_compose.py checks the files this command uses.
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "build:" in compose
    assert (ROOT / "Dockerfile").is_file()


def check_benchmark_command(line: str) -> None:
    # Running a benchmark is not a test's job; every flag the README uses must exist, though.
    result = run_module("benchmarks", "--help")
    assert result.returncode == 0, result.stderr
    for flag in re.findall(r"(--[a-z-]+)", line):
        assert flag in result.stdout, f"README uses {flag}, which python -m benchmarks does not have"


HANDLERS = [
    (re.compile(r"^python -m benchmarks( --[a-z-]+( \S+)?)*$"), check_benchmark_command),
    (
        re.compile(r'^echo "SEALED_SESSIONS_KEYS=\$\(\.venv/bin/python -m sealed_sessions keygen\)" > \.env$'),
        check_compose_env,
    ),
    (re.compile(r"^docker compose up --build$"), check_compose_up),
    (re.compile(r"python -m sealed_sessions keygen$"), check_keygen),
    (re.compile(r"SEALED_SESSIONS_KEYS=\S+ python -m sealed_sessions inspect COOKIE_VALUE$"), check_inspect),
    (re.compile(r"python3 -m venv \.venv && \.venv/bin/pip install .* -m examples\.demo$"), check_demo_command),
    (
        re.compile(r'^python3 -m venv \.venv && \. \.venv/bin/activate && pip install -e "\.\[dev\]" && pytest$'),
        check_test_command,
    ),
    (re.compile(r"pip install \S+$|pip install \"sealed-sessions\[[a-z,]+\]\"$"), check_pip_install),
]


@pytest.mark.parametrize("line", shell_lines())
def test_shell_snippet(line: str) -> None:
    """Each shell line in the README does what it says (or is checked against the file that runs it)."""
    for pattern, handler in HANDLERS:
        if pattern.search(line):
            handler(line)
            return
    pytest.fail(f"README shell line with no check: {line!r}")
