"""The real-server benchmarks: uvicorn (and Node) processes on loopback, driven by :mod:`loadgen`.

Each scenario starts its servers once, then measures its competitors in rounds, rotating the order
every round (:func:`benchmarks.stats.rotated_orders`). Throughput ratios are taken per round
against the section's baseline. Servers are always stopped, database tables always dropped and
Redis keys always deleted, even when a scenario fails; a scenario that cannot run (no Redis, no
PostgreSQL, no Node) is skipped with a note in the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from . import inprocess
from .loadgen import LoadResult, build_request, read_response, run_load
from .report import Row, Section
from .servers import HOST, ROOT, Server, running
from .stats import paired_ratios, rotated_orders, summarize

__all__ = ["Competitor", "run"]

T = TypeVar("T")
Progress = Callable[[str], None]
LOG_DIR = ROOT / "benchmarks" / "results" / "logs"
MIDDLEWARE_APP = "benchmarks.apps.middleware:create_app"
AUTH_APP = "benchmarks.apps.auth:create_app"
LOOPBACK = {"localhost"}


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the standard loop is only slower
        return asyncio.run(coro)
    return uvloop.run(coro)


@dataclass
class Competitor:
    """One row: requests for ``path`` with ``cookie`` to the named server(s)."""

    name: str
    servers: tuple[str, ...]
    path: str
    cookie: str | None
    detail: str


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _get_cookie(port: int, path: str) -> str:
    """GET ``path`` once and return the first ``Set-Cookie`` as ``name=value``."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
        status, headers, body, _ = await read_response(reader)
    finally:
        writer.close()
    if status != 200 or b"set-cookie" not in headers:
        raise RuntimeError(f"GET {path} on port {port} gave {status} without a cookie: {body[:200]!r}")
    return headers[b"set-cookie"].split(b"\n")[0].split(b";")[0].decode("latin-1")


def login(server: Server, path: str) -> str:
    return _run_async(_get_cookie(server.port, path))


def measure(
    key: str,
    title: str,
    baseline: str,
    competitors: Sequence[Competitor],
    servers: dict[str, Server],
    profile: dict[str, Any],
    progress: Progress,
    *,
    concurrency: int | None = None,
) -> tuple[Section, dict[str, list[float]]]:
    """Measure every competitor for ``profile['rounds']`` rounds in rotated order."""
    by_name = {c.name: c for c in competitors}
    samples: dict[str, list[float]] = {c.name: [] for c in competitors}
    p50: dict[str, list[float]] = {c.name: [] for c in competitors}
    p99: dict[str, list[float]] = {c.name: [] for c in competitors}
    errors = dict.fromkeys(samples, 0)
    rounds = profile["rounds"]
    for r, order in enumerate(rotated_orders(list(by_name), rounds)):
        for i, name in enumerate(order):
            progress(f"{title}: round {r + 1}/{rounds}, {i + 1}/{len(order)} {name}")
            c = by_name[name]
            requests = [build_request(HOST, servers[s].port, c.path, cookie=c.cookie) for s in c.servers]
            result: LoadResult = _run_async(
                run_load(
                    requests,
                    concurrency=concurrency or profile["concurrency"],
                    duration=profile["duration"],
                    warmup=profile["warmup"],
                    max_requests=profile.get("max_requests", 1_000_000),
                )
            )
            samples[name].append(result.rps)
            if result.latencies:
                p50[name].append(result.p(50) or 0.0)
                p99[name].append(result.p(99) or 0.0)
            errors[name] += result.errors
    base = samples[baseline]
    rows = []
    for c in competitors:
        values = samples[c.name]
        ratio = None if c.name == baseline else summarize(paired_ratios(values, base))
        rows.append(
            Row(
                c.name,
                c.detail,
                summarize(values),
                ratio,
                p50_ms=summarize(p50[c.name]).median if p50[c.name] else None,
                p99_ms=summarize(p99[c.name]).median if p99[c.name] else None,
                errors=errors[c.name],
            )
        )
    return Section(key, title, "req/s", baseline, rows), samples


def _pair(samples: dict[str, list[float]], a: str, b: str) -> float:
    return summarize(paired_ratios(samples[a], samples[b])).median


def _skipped(key: str, title: str, why: str) -> Section:
    return Section(key, title, "req/s", "-", notes=[f"skipped: {why}"])


# -- scenarios ---------------------------------------------------------------------------------------


def scenario_ceiling(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """The generator against the trivial asyncio server and the bare Starlette app."""
    specs = [
        ("trivial", ["{python}", "-m", "benchmarks.apps.trivial", "{port}"], {}),
        ("bare", None, {"BENCH_APP": MIDDLEWARE_APP, "BENCH_VARIANT": "none"}),
    ]
    specs = [(n, None if c is None else [p.replace("{python}", _python()) for p in c], e) for n, c, e in specs]
    with running(specs, log_dir=LOG_DIR, ready_path="/health") as servers:
        competitors = [
            Competitor("trivial server", ("trivial",), "/health", None, "raw asyncio protocol, fixed response"),
            Competitor("bare app", ("bare",), "/read", None, "uvicorn + Starlette, no session middleware"),
        ]
        section, _ = measure(
            "server.ceiling",
            "Load generator ceiling (trivial server) vs the bare app",
            "trivial server",
            competitors,
            servers,
            profile,
            progress,
        )
    bare = next(r for r in section.rows if r.name == "bare app")
    if bare.ratio is not None:
        section.notes.append(
            f"the bare app reaches {bare.ratio.median:.0%} of the generator's ceiling: "
            + ("the generator is not the bottleneck" if bare.ratio.median < 0.6 else "the generator may be limiting")
        )
    return [section], {}


def _python() -> str:
    import sys

    return sys.executable


def _redis_url() -> str:
    return os.environ.get("SEALED_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_available(url: str) -> str | None:
    """``None`` if Redis answers at ``url``, else why not."""
    if not _is_loopback(url):
        return f"{url} is not a loopback address"
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.close()
    except Exception as exc:  # any failure means "not available": say which, then skip
        return f"Redis at {url} does not answer ({type(exc).__name__})"
    return None


@contextlib.contextmanager
def _redis_prefix(url: str | None) -> Iterator[str]:
    """A per-run key prefix; every key under it is deleted afterwards."""
    prefix = f"bench.{secrets.token_hex(4)}."
    try:
        yield prefix
    finally:
        if url is not None:
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=1)
            try:
                keys = list(client.scan_iter(match=prefix + "*", count=1000))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()


def scenario_middleware(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    redis_url = _redis_url()
    redis_problem = _redis_available(redis_url)
    with _redis_prefix(None if redis_problem else redis_url) as prefix:
        env = {"BENCH_APP": MIDDLEWARE_APP}
        specs: list[tuple[str, Sequence[str] | None, dict[str, str]]] = [
            ("none", None, {**env, "BENCH_VARIANT": "none"}),
            ("starlette", None, {**env, "BENCH_VARIANT": "starlette"}),
            ("ours", None, {**env, "BENCH_VARIANT": "ours"}),
            ("ours-idle", None, {**env, "BENCH_VARIANT": "ours-idle"}),
        ]
        if redis_problem is None:
            specs.append(
                (
                    "starsessions",
                    None,
                    {
                        **env,
                        "BENCH_VARIANT": "starsessions",
                        "BENCH_REDIS_URL": redis_url,
                        "BENCH_REDIS_PREFIX": prefix,
                    },
                )
            )
        with running(specs, log_dir=LOG_DIR) as servers:
            s_cookie = login(servers["starlette"], "/login")
            o_cookie = login(servers["ours"], "/login")
            stale = inprocess.ours_cookie({"user_id": 123456, "csrf": "q3Jd7Zk1vYx2Lw9Pm4Nc8Rt6"}, last_active_ago=1000)
            competitors = [
                Competitor("none", ("none",), "/read", None, "uvicorn + Starlette, no session middleware"),
                Competitor("starlette", ("starlette",), "/read", s_cookie, "Starlette's SessionMiddleware, read"),
                Competitor("ours read", ("ours",), "/read", o_cookie, "sealed_sessions, valid cookie, reads one key"),
                Competitor("ours write", ("ours",), "/write", o_cookie, "sealed_sessions, writes on every request"),
                Competitor(
                    "ours renewal due", ("ours-idle",), "/read", stale, "idle_timeout set, cookie due for renewal"
                ),
            ]
            if redis_problem is None:
                st_cookie = login(servers["starsessions"], "/login")
                competitors.append(
                    Competitor("starsessions redis", ("starsessions",), "/read", st_cookie, "starsessions + Redis")
                )
            section, samples = measure(
                "server.middleware",
                "Session middleware on a real server: GET, valid cookie, endpoint reads one key",
                "none",
                competitors,
                servers,
                profile,
                progress,
            )
    if redis_problem is not None:
        section.notes.append(f"starsessions skipped: {redis_problem}")
    return [section], {"derived.server-read-vs-starlette": _pair(samples, "ours read", "starlette")}


def scenario_sizes(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    env = {"BENCH_APP": MIDDLEWARE_APP}
    specs: list[tuple[str, Sequence[str] | None, dict[str, str]]] = [
        ("none", None, {**env, "BENCH_VARIANT": "none"}),
        ("ours", None, {**env, "BENCH_VARIANT": "ours"}),
        ("ours16", None, {**env, "BENCH_VARIANT": "ours", "BENCH_KEYS": "16"}),
        ("starlette", None, {**env, "BENCH_VARIANT": "starlette"}),
    ]
    # The padding is chosen so the largest cookie stays under 4096 bytes with its attributes.
    sizes = [("100 B", 0), ("1 kB", 900), ("2.8 kB", 2800)]
    with running(specs, log_dir=LOG_DIR) as servers:
        competitors = [Competitor("none", ("none",), "/read", None, "no session middleware")]
        for label, pad in sizes:
            cookie = login(servers["ours"], f"/login?size={pad}")
            competitors.append(
                Competitor(f"ours {label}", ("ours",), "/read", cookie, f"ours, 1 key, cookie of {len(cookie)} chars")
            )
        cookie16 = login(servers["ours16"], "/login")
        competitors.append(
            Competitor("ours 16 keys", ("ours16",), "/read", cookie16, "ours, ring of 16 keys, small cookie")
        )
        for label, pad in (sizes[0], sizes[-1]):
            cookie = login(servers["starlette"], f"/login?size={pad}")
            competitors.append(
                Competitor(f"starlette {label}", ("starlette",), "/read", cookie, f"cookie of {len(cookie)} chars")
            )
        section, samples = measure(
            "server.sizes",
            "Key ring 1 vs 16 and session size: GET, endpoint reads one key",
            "none",
            competitors,
            servers,
            profile,
            progress,
        )
    return [section], {"derived.ring16-vs-ring1": _pair(samples, "ours 16 keys", "ours 100 B")}


def _postgres_url() -> str:
    return os.environ.get("SEALED_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _postgres_available(url: str) -> str | None:
    if not _is_loopback(url):
        return f"{url} is not a loopback address"

    async def ping() -> None:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url, connect_args={"timeout": 2})
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(ping())
    except Exception as exc:  # any failure means "not available": say which, then skip
        return f"PostgreSQL at {url} does not answer ({type(exc).__name__})"
    return None


@contextlib.contextmanager
def _database(url: str) -> Iterator[str]:
    """Per-run tables (unique suffix) with users; dropped afterwards whatever happens."""
    from .apps import auth

    suffix = secrets.token_hex(4)
    asyncio.run(auth.setup(url, suffix))
    try:
        yield suffix
    finally:
        asyncio.run(auth.teardown(url, suffix))


AUTH_VARIANTS = [
    ("ours", "SessionAuth.current_user: one SELECT by id AND token"),
    ("by-id", "same code path, token condition removed (no revocation)"),
    ("by-id-plain", "db.get(User, id) from the sealed session (no revocation)"),
    ("table", "server-side session table: SELECT session, then SELECT user"),
    ("redis", "starsessions in Redis, then SELECT user"),
]


def _auth_section(
    db_name: str, url: str, profile: dict[str, Any], progress: Progress
) -> tuple[Section, dict[str, list[float]]]:
    redis_url = _redis_url()
    redis_problem = _redis_available(redis_url)
    variants = [v for v in AUTH_VARIANTS if v[0] != "redis" or redis_problem is None]
    with _database(url) as suffix, _redis_prefix(None if redis_problem else redis_url) as prefix:
        base_env = {
            "BENCH_APP": AUTH_APP,
            "BENCH_DB_URL": url,
            "BENCH_SUFFIX": suffix,
            "BENCH_REDIS_URL": redis_url,
            "BENCH_REDIS_PREFIX": prefix,
        }
        specs: list[tuple[str, Sequence[str] | None, dict[str, str]]] = [
            (name, None, {**base_env, "BENCH_AUTH": name}) for name, _ in variants
        ]
        with running(specs, log_dir=LOG_DIR) as servers:
            competitors = [
                Competitor(name, (name,), "/me", login(servers[name], "/login?uid=7"), detail)
                for name, detail in variants
            ]
            section, samples = measure(
                f"server.auth-{db_name.lower()}",
                f"Authenticated FastAPI request on {db_name}: session + user load",
                "by-id",
                competitors,
                servers,
                profile,
                progress,
            )
    if redis_problem is not None:
        section.notes.append(f"redis variant skipped: {redis_problem}")
    return section, samples


def scenario_auth(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    sections: list[Section] = []
    derived: dict[str, float] = {}
    databases: list[tuple[str, str | None, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="sealed-bench-"))
    try:
        databases.append(("SQLite", None, f"sqlite+aiosqlite:///{tmp / 'bench.db'}"))
        pg = _postgres_url()
        databases.append(("PostgreSQL", _postgres_available(pg), pg))
        for db_name, problem, url in databases:
            if problem is not None:
                sections.append(
                    _skipped(f"server.auth-{db_name.lower()}", f"Authenticated request on {db_name}", problem)
                )
                continue
            section, samples = _auth_section(db_name, url, profile, progress)
            sections.append(section)
            tag = db_name.lower()
            derived[f"derived.auth-{tag}-vs-by-id"] = _pair(samples, "ours", "by-id")
            derived[f"derived.auth-{tag}-vs-table"] = _pair(samples, "ours", "table")
            if "redis" in samples:
                derived[f"derived.auth-{tag}-vs-redis"] = _pair(samples, "ours", "redis")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sections, derived


def scenario_scaleout(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """The authenticated request (ours, SQLite) on 1 and on 2 processes sharing the key."""
    tmp = Path(tempfile.mkdtemp(prefix="sealed-bench-"))
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    try:
        with _database(url) as suffix:
            env = {"BENCH_APP": AUTH_APP, "BENCH_DB_URL": url, "BENCH_SUFFIX": suffix, "BENCH_AUTH": "ours"}
            specs: list[tuple[str, Sequence[str] | None, dict[str, str]]] = [("a", None, env), ("b", None, env)]
            with running(specs, log_dir=LOG_DIR) as servers:
                cookie = login(servers["a"], "/login?uid=7")  # sealed by one process, opened by both
                competitors = [
                    Competitor("1 process", ("a",), "/me", cookie, "all connections to one uvicorn process"),
                    Competitor("2 processes", ("a", "b"), "/me", cookie, "connections split over two processes"),
                ]
                section, _ = measure(
                    "server.scaleout",
                    "Scale-out: authenticated request (SQLite) on 1 vs 2 processes, same key",
                    "1 process",
                    competitors,
                    servers,
                    profile,
                    progress,
                    concurrency=2 * profile["concurrency"],
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cpus = os.cpu_count() or 1
    section.notes.append(
        f"{cpus} CPUs are shared by the server processes and the load generator: with 2 CPUs the "
        "second process competes with the generator, so this understates scale-out on a bigger machine"
    )
    return [section], {}


NODE_PACKAGES = ["express@4", "client-sessions@0.8"]


def scenario_node(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    key, title = "server.node", "Node: express with and without client-sessions (the reference)"
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return [_skipped(key, title, "node or npm is not installed")], {}
    tmp = Path(tempfile.mkdtemp(prefix="sealed-bench-node-"))
    try:
        progress("node: npm install express client-sessions (into a temporary folder)")
        shutil.copy(Path(__file__).parent / "apps" / "node_app.js", tmp / "node_app.js")
        (tmp / "package.json").write_text('{"name": "sealed-bench-node", "private": true}\n')
        install = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", *NODE_PACKAGES],
            cwd=tmp,
            capture_output=True,
            timeout=300,
            check=False,
        )
        if install.returncode != 0:
            why = install.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["npm install failed"]
            return [_skipped(key, title, why[0][:200])], {}
        app = str(tmp / "node_app.js")
        specs: list[tuple[str, Sequence[str] | None, dict[str, str]]] = [
            ("express", [node, app, "{port}", "none"], {}),
            ("client-sessions", [node, app, "{port}", "client-sessions"], {}),
        ]
        with running(specs, log_dir=LOG_DIR) as servers:
            cookie = login(servers["client-sessions"], "/login")
            competitors = [
                Competitor("express", ("express",), "/read", None, "express 4, no session"),
                Competitor("client-sessions", ("client-sessions",), "/read", cookie, "client-sessions, read one key"),
            ]
            section, _ = measure(key, title, "express", competitors, servers, profile, progress)
        version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
        section.notes.append(f"Node {version}; compare its ratio with ours read / none, not the absolute numbers")
        return [section], {}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_WRK_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")


def scenario_wrk(profile: dict[str, Any], progress: Progress) -> tuple[list[Section], dict[str, float]]:
    """Cross-check the generator: the middleware read scenario measured by wrk and by ours."""
    key, title = "server.wrk", "Cross-check with wrk: bare app vs ours read, both generators"
    wrk = shutil.which("wrk")
    if wrk is None:
        return [_skipped(key, title, "wrk is not installed (apt-get install wrk)")], {}
    env = {"BENCH_APP": MIDDLEWARE_APP}
    specs: list[tuple[str, Sequence[str] | None, dict[str, str]]] = [
        ("none", None, {**env, "BENCH_VARIANT": "none"}),
        ("ours", None, {**env, "BENCH_VARIANT": "ours"}),
    ]
    samples: dict[str, list[float]] = {
        "wrk none": [],
        "wrk ours read": [],
        "python-gen none": [],
        "python-gen ours read": [],
    }
    with running(specs, log_dir=LOG_DIR) as servers:
        cookie = login(servers["ours"], "/login")
        plan = {
            "none": (servers["none"], None),
            "ours read": (servers["ours"], cookie),
        }
        seconds = max(1, round(profile["duration"]))
        for r, order in enumerate(rotated_orders(list(plan), profile["rounds"])):
            for name in order:
                server, c = plan[name]
                progress(f"{title}: round {r + 1}, {name}")
                argv = [wrk, "-t1", f"-c{profile['concurrency']}", f"-d{seconds}s", "--latency"]
                if c is not None:
                    argv += ["-H", f"Cookie: {c}"]
                out = subprocess.run(
                    [*argv, f"http://{HOST}:{server.port}/read"],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                ).stdout
                match = _WRK_RPS.search(out)
                samples[f"wrk {name}"].append(float(match.group(1)) if match else 0.0)
                result = _run_async(
                    run_load(
                        [build_request(HOST, server.port, "/read", cookie=c)],
                        concurrency=profile["concurrency"],
                        duration=profile["duration"],
                        warmup=profile["warmup"],
                    )
                )
                samples[f"python-gen {name}"].append(result.rps)
    rows = []
    for gen in ("wrk", "python-gen"):
        base = samples[f"{gen} none"]
        for name in ("none", "ours read"):
            values = samples[f"{gen} {name}"]
            ratio = None if name == "none" else summarize(paired_ratios(values, base))
            rows.append(Row(f"{gen}: {name}", "", summarize(values), ratio))
    section = Section(key, title, "req/s", "wrk: none", rows)
    section.notes.append("ratios are against each generator's own 'none' run: the two ratios should agree")
    return [section], {}


SCENARIOS: dict[str, Callable[[dict[str, Any], Progress], tuple[list[Section], dict[str, float]]]] = {
    "ceiling": scenario_ceiling,
    "middleware": scenario_middleware,
    "node": scenario_node,
    "auth": scenario_auth,
    "scaleout": scenario_scaleout,
    "sizes": scenario_sizes,
    "wrk": scenario_wrk,
}


def run(
    profile: dict[str, Any], *, scenarios: Sequence[str] | None, progress: Progress
) -> tuple[list[Section], dict[str, float]]:
    """Run the chosen scenarios (all by default); a failing scenario becomes a note, not a crash."""
    sections: list[Section] = []
    derived: dict[str, float] = {}
    for name in scenarios or list(SCENARIOS):
        started = time.monotonic()
        try:
            s, d = SCENARIOS[name](profile, progress)
        except Exception as exc:  # report and go on: the other scenarios' numbers are still worth having
            s, d = [_skipped(f"server.{name}", f"Scenario {name}", f"failed: {type(exc).__name__}: {exc}")], {}
        progress(f"{name}: done in {time.monotonic() - started:.0f} s")
        sections += s
        derived |= d
    return sections, derived
