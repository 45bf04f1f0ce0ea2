"""Real demo processes on loopback, for the several-servers and browser tests.

``demo_cluster`` starts the topology of docker-compose.yml on loopback: several
``python -m examples.demo`` processes, each on its own free 127.0.0.1 port, sharing one key and one
database. Processes are always terminated, and startup waits with a bounded timeout.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.helpers import KEY_A

REPO_ROOT = Path(__file__).resolve().parents[2]

CLUSTER_SIZE = 3
"""Demo processes in the several-servers test: as many as docker-compose.yml runs replicas."""
STARTUP_TIMEOUT = 30.0
"""Seconds a process may take to answer /healthz before the test fails with its log."""
STOP_TIMEOUT = 10.0

T = TypeVar("T")


def run_in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on its own loop in a worker thread (for synchronous fixtures)."""

    async def runner() -> T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, runner()).result()


@dataclass
class DemoServer:
    """One ``python -m examples.demo`` process on loopback."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn_server(name: str, env: dict[str, str], log_dir: Path) -> DemoServer:
    """Start one demo process; it is not ready until :func:`wait_ready` says so."""
    port = free_port()
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "examples.demo", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env={**env, "DEMO_INSTANCE_NAME": name, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return DemoServer(name, port, process, log_path)


def wait_ready(server: DemoServer, deadline: float) -> None:
    """Poll /healthz until it answers 200; fail with the process log when it dies or the deadline passes."""
    with httpx.Client(timeout=2.0) as client:
        while True:
            if server.process.poll() is not None:
                pytest.fail(f"{server.name} exited with {server.process.returncode}:\n{server.log()[-4000:]}")
            try:
                if client.get(f"{server.url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{server.name} did not start within {STARTUP_TIMEOUT} s:\n{server.log()[-4000:]}")
            time.sleep(0.1)


def stop_server(server: DemoServer) -> None:
    """Terminate the process (SIGTERM, then SIGKILL after a bounded wait)."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def demo_cluster(
    count: int, database_url: str, log_dir: Path, keys: str = KEY_A, *, read_database_url: str | None = None
) -> Iterator[list[DemoServer]]:
    """``count`` demo processes sharing ``keys`` and ``database_url`` (and a read replica, when given);
    all started together, like compose."""
    env = {
        **os.environ,
        "SEALED_SESSIONS_KEYS": keys,
        "DATABASE_URL": database_url,
        "DEMO_HTTPS_ONLY": "false",  # plain HTTP on loopback, as behind the compose load balancer
    }
    env.pop("DEMO_READ_DATABASE_URL", None)
    if read_database_url is not None:
        env["DEMO_READ_DATABASE_URL"] = read_database_url
    servers: list[DemoServer] = []
    try:
        for index in range(count):
            servers.append(spawn_server(f"app{index + 1}", env, log_dir))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for server in servers:
            wait_ready(server, deadline)
        yield servers
    finally:
        for server in servers:
            stop_server(server)


@contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``base_url``, dropped afterwards."""
    url = make_url(base_url)
    if url.host not in ("127.0.0.1", "localhost", "::1"):
        pytest.skip(f"refusing a non-loopback database host {url.host!r}")
    name = "sealed_demo_" + secrets.token_hex(4)

    async def admin(statement: str) -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    run_in_thread(lambda: admin(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        run_in_thread(lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
