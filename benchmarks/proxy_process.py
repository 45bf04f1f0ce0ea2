"""The benchmark's side of :mod:`benchmarks.proxy`: start it as a child process, ask it, always stop it."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .proxy import Address, Counters
from .servers import HOST, ROOT

__all__ = ["ProxyProcess", "running_proxy"]


@dataclass
class ProxyProcess:
    """A running proxy: the loopback port of each route; its counters, and its delay, through the control port."""

    delay: float
    ports: dict[str, int]
    control_port: int
    process: subprocess.Popen[bytes]
    log: Path

    def counters(self) -> dict[str, Counters]:
        """The counters now, by route name."""
        return self._ask(b"stats")

    def set_delay(self, seconds: float) -> None:
        """Hold chunks ``seconds`` from now on, on every route (chunks already held keep their time)."""
        self._ask(b"delay %r" % seconds)
        self.delay = seconds

    def _ask(self, command: bytes) -> dict[str, Counters]:
        with socket.create_connection((HOST, self.control_port), timeout=10) as s:
            s.sendall(command + b"\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        if not data:
            raise RuntimeError(f"the proxy did not answer; its log:\n{self.log.read_text(errors='replace')[-3000:]}")
        return {name: Counters(**values) for name, values in json.loads(data).items()}


def _listener() -> socket.socket:
    sock = socket.create_server((HOST, 0), backlog=1024)
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def running_proxy(targets: Mapping[str, Address], delay: float, *, log_dir: Path) -> Iterator[ProxyProcess]:
    """A proxy process forwarding a new loopback port to each of ``targets``; stopped on exit, whatever happens.

    The listening sockets are bound here and inherited by the child, so connections made before it
    runs wait in the backlog. Yields once the child has answered a first request for its counters.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    sockets = {name: _listener() for name in targets}
    control = _listener()
    argv = [sys.executable, "-m", "benchmarks.proxy", "--delay", repr(delay), "--control", f"fd:{control.fileno()}"]
    for name, (host, port) in targets.items():
        argv += ["--route", name, f"fd:{sockets[name].fileno()}", f"{host}:{port}"]
    log = log_dir / "proxy.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as handle:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=[s.fileno() for s in [*sockets.values(), control]],
            )
        ports = {name: s.getsockname()[1] for name, s in sockets.items()}
        proxy = ProxyProcess(delay, ports, control.getsockname()[1], process, log)
        for s in [*sockets.values(), control]:
            s.close()  # the child has its own copies; the ports stay bound
        proxy.counters()
        yield proxy
    finally:
        for s in [*sockets.values(), control]:
            s.close()
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
