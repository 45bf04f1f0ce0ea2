"""Several servers, one key, one database: revocation across processes (G3, I1) and the soak (J3 at scale).

Three uvicorn processes on loopback run tests/security/sealedapp.py against the same PostgreSQL
table with the same key. The soak drives at least 64 concurrent clients mixing reads, writes,
logins and revocations across all three for ``SEALED_SOAK_SECONDS`` (10 by default; the long
profile is ``SEALED_SOAK_SECONDS=60``): zero 5xx, zero sessions lost or crossed, memory flat.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from tests.helpers import COOKIE, KEY_A, KEY_B, loopback_url

from .sealedapp import build_app, create_users, drop_table

pytestmark = pytest.mark.postgres

HERE = Path(__file__).resolve().parent
PROCESSES = 3
CLIENTS = 64
USERS = CLIENTS + 4  # the extra users serve the revocation tests


@dataclass
class Servers:
    ports: list[int]
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def url(self, i: int, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[i % len(self.ports)]}{path}"

    def rss_kib(self) -> list[int]:
        """Resident memory of each server process, from /proc."""
        sizes = []
        for proc in self.procs:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]))
        return sizes

    def logs_text(self) -> str:
        return "\n".join(
            f"--- server {i} ---\n{p.read_text(errors='replace')[-2000:]}" for i, p in enumerate(self.logs)
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _setup(url: str, table: str) -> None:
    engine = create_async_engine(url)
    await create_users(engine, build_app(url, table, keys=[KEY_A]), USERS)
    await engine.dispose()


async def _teardown(url: str, table: str) -> None:
    engine = create_async_engine(url)
    await drop_table(engine, build_app(url, table, keys=[KEY_A]))
    await engine.dispose()


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    url = loopback_url("SEALED_TEST_POSTGRES_URL")
    if url is None:
        pytest.skip("SEALED_TEST_POSTGRES_URL is not set")
    table = "sec_soak_" + secrets.token_hex(4)
    asyncio.run(_setup(url, table))
    env = {
        **os.environ,
        "SEALED_SOAK_DATABASE_URL": url,
        "SEALED_SOAK_TABLE": table,
        "SEALED_SOAK_KEYS": f"{KEY_A},{KEY_B}",
        "SEALED_SOAK_POOL": "8",
    }
    logdir = Path(tempfile.mkdtemp(prefix="sealed-soak-"))
    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    logs: list[Path] = []
    try:
        for i in range(PROCESSES):
            port = _free_port()
            log = logdir / f"server{i}.log"
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "uvicorn",
                            "--factory",
                            "sealedapp:app_from_env",
                            "--app-dir",
                            str(HERE),
                            "--host",
                            "127.0.0.1",
                            "--port",
                            str(port),
                            "--log-level",
                            "warning",
                            "--no-access-log",
                        ],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            ports.append(port)
            logs.append(log)
        found = Servers(ports, procs, logs)
        deadline = time.monotonic() + 30
        for i in range(PROCESSES):
            while True:
                try:
                    if httpx.get(found.url(i, "/ping"), timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert procs[i].poll() is None, found.logs_text()
                assert time.monotonic() < deadline, "servers did not start\n" + found.logs_text()
                time.sleep(0.1)
        yield found
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        asyncio.run(_teardown(url, table))
        shutil.rmtree(logdir, ignore_errors=True)


class Browser:
    """One client's cookie, kept by hand (the servers set Secure cookies; this is plain-HTTP loopback)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.cookie: str | None = None

    async def send(self, method: str, url: str) -> httpx.Response:
        headers = {"cookie": f"{COOKIE}={self.cookie}"} if self.cookie else {}
        response = await asyncio.wait_for(self.http.request(method, url, headers=headers), 30)
        self.http.cookies.clear()
        for value in response.headers.get_list("set-cookie"):
            if value.startswith(f"{COOKIE}="):
                self.cookie = value.split(";", 1)[0].removeprefix(f"{COOKIE}=") or None
        return response


@pytest.mark.case("G3", "I1")
async def test_revocation_on_one_process_is_refused_by_the_others(servers: Servers) -> None:
    """Log in on server 0, be served by 1 and 2, revoke on 2: the old cookie is refused by 0 and 1 at once."""
    async with httpx.AsyncClient() as http:
        phone, laptop = Browser(http), Browser(http)
        uid = USERS
        assert (await phone.send("POST", servers.url(0, f"/login/{uid}"))).status_code == 200
        assert (await laptop.send("POST", servers.url(1, f"/login/{uid}"))).status_code == 200
        for i in range(PROCESSES):
            response = await phone.send("GET", servers.url(i, "/me"))
            assert response.status_code == 200 and response.json()["user"] == uid
        stolen = phone.cookie
        # Requests in flight while the laptop revokes everything but itself from server 2.
        in_flight = [
            asyncio.create_task(http.get(servers.url(i % 2, "/me"), headers={"cookie": f"{COOKIE}={stolen}"}))
            for i in range(20)
        ]
        revoked = await laptop.send("POST", servers.url(2, "/revoke?keep=true"))
        assert revoked.status_code == 200
        after = [
            await http.get(servers.url(i, "/me"), headers={"cookie": f"{COOKIE}={stolen}"}) for i in range(PROCESSES)
        ]
        for response in await asyncio.gather(*in_flight):
            assert response.status_code in (200, 401)  # started before the commit: either answer is fine
        assert [r.status_code for r in after] == [401] * PROCESSES
        for i in range(PROCESSES):  # the device that revoked stays logged in everywhere
            response = await laptop.send("GET", servers.url(i, "/me"))
            assert response.status_code == 200 and response.json()["user"] == uid


async def _soak_client(
    browser: Browser, uid: int, servers: Servers, deadline: float, stats: collections.Counter[str], seed: int
) -> None:
    rng = random.Random(seed)
    note: str | None = None

    async def login() -> None:
        nonlocal note
        response = await browser.send("POST", servers.url(rng.randrange(PROCESSES), f"/login/{uid}"))
        assert response.status_code == 200, response.text
        note = None
        stats["login"] += 1

    await login()
    n = 0
    while time.monotonic() < deadline:
        n += 1
        server = rng.randrange(PROCESSES)
        roll = rng.random()
        if roll < 0.6:
            response = await browser.send("GET", servers.url(server, "/me"))
            assert response.status_code == 200, (response.status_code, response.text)
            body = response.json()
            assert body["user"] == uid, "a session crossed to another client"
            assert body["note"] == note, "a session lost its data"
            stats["read"] += 1
        elif roll < 0.85:
            note = f"{uid}-{n}"
            response = await browser.send("POST", servers.url(server, f"/note/{note}"))
            assert response.status_code == 200 and response.json()["user"] == uid, response.text
            stats["write"] += 1
        elif roll < 0.93:
            await login()
        elif roll < 0.97:
            response = await browser.send("POST", servers.url(server, "/revoke?keep=true"))
            assert response.status_code == 200, response.text
            stats["revoke_keep"] += 1
        else:
            old = browser.cookie
            response = await browser.send("POST", servers.url(server, "/revoke"))
            assert response.status_code == 200, response.text
            refused = await browser.send("GET", servers.url(server + 1, "/me"))
            assert refused.status_code == 401 and browser.cookie is None and old
            stats["revoke_all"] += 1
            await login()


@pytest.mark.case("J3")
async def test_soak_of_64_clients_on_three_processes(servers: Servers) -> None:
    """64 clients mixing reads, writes, logins, revocations on three processes: no 5xx, no loss, flat memory."""
    seconds = float(os.environ.get("SEALED_SOAK_SECONDS", "10"))
    limits = httpx.Limits(max_connections=CLIENTS * PROCESSES, max_keepalive_connections=CLIENTS * PROCESSES)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        stats: collections.Counter[str] = collections.Counter()
        # Warm-up: every process has served logins and reads before memory is measured.
        warm = min(3.0, seconds / 3)
        await asyncio.gather(
            *(
                _soak_client(Browser(http), uid, servers, time.monotonic() + warm, stats, uid)
                for uid in range(1, CLIENTS + 1)
            )
        )
        rss_before = servers.rss_kib()
        stats.clear()
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(_soak_client(Browser(http), uid, servers, deadline, stats, 1000 + uid) for uid in range(1, CLIENTS + 1))
        )
        rss_after = servers.rss_kib()
    growth = [after - before for before, after in zip(rss_before, rss_after, strict=True)]
    print(f"soak {seconds:.0f}s: {dict(stats)}; RSS KiB before {rss_before} after {rss_after}")
    assert all(p.poll() is None for p in servers.procs), servers.logs_text()
    assert stats["read"] > CLIENTS and stats["write"] > 0 and stats["login"] >= CLIENTS
    assert all(g < 16 * 1024 for g in growth), f"server memory grew by {growth} KiB"
