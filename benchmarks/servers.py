"""Start app servers on loopback, wait until they answer, and always stop them.

Every server is a child process on 127.0.0.1 with a free port picked by the OS. ``running()``
is a context manager: whatever happens inside (an error, Ctrl-C), the processes are terminated,
then killed if they linger.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "Server", "free_port", "running", "uvicorn_command"]

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def uvicorn_command(app: str, port: int) -> list[str]:
    """uvicorn serving the factory ``app`` (``module:function``) on one process, quietly."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--backlog",
        "1024",
    ]


def _wait_ready(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"server {server.name!r} exited with {server.process.returncode}; its log:\n"
                + server.log.read_text(errors="replace")[-3000:]
            )
        try:
            with socket.create_connection((HOST, server.port), timeout=1) as s:
                s.sendall(request)
                answer = s.recv(64)
            if answer.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server {server.name!r} did not answer {path} within {timeout} s")


@contextlib.contextmanager
def running(
    specs: Sequence[tuple[str, Sequence[str] | None, Mapping[str, str]]],
    *,
    log_dir: Path,
    ready_path: str = "/health",
    timeout: float = 30.0,
) -> Iterator[dict[str, Server]]:
    """Start servers given as ``(name, command or None, extra environment)``; stop them all on exit.

    ``command`` may contain ``{port}``, replaced by a free port; ``None`` means a uvicorn command
    for the app named by ``BENCH_APP`` in the environment. Yields servers by name once every one
    answers ``ready_path`` with 200.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    servers: dict[str, Server] = {}
    logs = []
    try:
        for name, command, env in specs:
            port = free_port()
            argv = (
                uvicorn_command(env["BENCH_APP"], port)
                if command is None
                else [part.replace("{port}", str(port)) for part in command]
            )
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
            log = log_dir / f"server-{safe}.log"
            handle = log.open("wb")
            logs.append(handle)
            full_env = {
                **os.environ,
                **env,
                "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            }
            process = subprocess.Popen(
                argv, cwd=ROOT, env=full_env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
            servers[name] = Server(name, port, process, log)
        for server in servers.values():
            _wait_ready(server, ready_path, timeout)
        yield servers
    finally:
        for server in servers.values():
            if server.process.poll() is None:
                server.process.terminate()
        for server in servers.values():
            try:
                server.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=5)
        for handle in logs:
            handle.close()
