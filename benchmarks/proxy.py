"""A TCP proxy on loopback that holds every chunk for a fixed delay each way: network round trips on one machine.

This kernel has no ``netem``, so the latency scenario puts PostgreSQL and Redis behind this proxy
instead::

    python -m benchmarks.proxy --delay 0.00025 --route pg 127.0.0.1:6543 127.0.0.1:5432 \\
        --route redis fd:5 127.0.0.1:6379 --control fd:6

Each route listens on a loopback address (or an inherited listening socket, ``fd:N``) and forwards
every accepted connection to its target, which must be a loopback address too. On the
``--control`` socket, a line ``stats`` is answered with the counters (connections, and chunks and
bytes each way, per route) as one JSON line; ``delay SECONDS`` sets the delay of every route first.
:func:`benchmarks.proxy_process.running_proxy` starts the proxy as a child process on sockets
it binds itself (no race for a port, no wait for readiness) and always stops it.

Guaranteed: bytes arrive intact and in order, each direction separately; a chunk read at time *t*
is written on at *t* + ``delay`` or later, never earlier; chunks do not wait for each other, so
pipelined chunks each get the delay once, not the sum (a queue per direction, released by a
:class:`benchmarks.clock.PreciseTimer`, not a sleep in the reading loop). An end of stream (EOF)
travels like data, after the delay; when both directions have ended, or one socket is lost, both
sockets are closed. Reading pauses while the other side's write buffer is full.

Not guaranteed: how much later than the delay a chunk goes; the timer adds tens of microseconds,
more on a busy machine, and the extra hop adds its own (the latency scenario measures the added
round trip, and shortens the delay so that a ping gains what it should). A new delay applies to
the chunks read from then on. TCP
may split or merge chunks, so the chunk counts are writes as the proxy saw them, which for small
request-response protocols on loopback is one per round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import cast

from .clock import PreciseTimer
from .stores import is_loopback

__all__ = ["Address", "Counters", "Route", "main", "serve_route"]

Address = tuple[str, int]


@dataclass
class Counters:
    """What one route forwarded: connections accepted, chunks and bytes each way."""

    connections: int = 0
    chunks_up: int = 0
    """Chunks from clients towards the target: about one per request of a request-response protocol."""
    chunks_down: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


class _End:
    """The end of a direction in a queue of chunks: EOF read (``lost=False``) or the socket gone."""

    def __init__(self, *, lost: bool) -> None:
        self.lost = lost


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; what it reads is written to ``peer`` ``delay`` later."""

    def __init__(self, route: Route, *, upstream: bool) -> None:
        self.route = route
        self.upstream = upstream
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.queue: deque[tuple[float, bytes | _End]] = deque()
        self.eof_written = False
        self.scheduled = False
        """A call of :meth:`_release` is on the timer."""
        self.connecting: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they have the same methods.
        self.transport = cast(asyncio.Transport, transport)
        if not self.upstream:  # a client: read nothing until the target answers (asyncio; uvloop reads anyway)
            self.route.counters.connections += 1
            self.transport.pause_reading()
            self.connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        assert self.transport is not None
        host, port = self.route.target
        upstream = _Side(self.route, upstream=True)
        upstream.peer, self.peer = self, upstream
        try:
            await asyncio.get_running_loop().create_connection(lambda: upstream, host, port)
        except OSError:
            self.transport.close()
            return
        if not self.transport.is_closing():
            self.transport.resume_reading()
        if self.queue and not self.scheduled:  # read before the target answered (uvloop ignores the pause)
            self._release()

    def data_received(self, data: bytes) -> None:
        counters = self.route.counters
        if self.upstream:
            counters.chunks_down += 1
            counters.bytes_down += len(data)
        else:
            counters.chunks_up += 1
            counters.bytes_up += len(data)
        self._hold(data)

    def eof_received(self) -> bool:
        self._hold(_End(lost=False))
        return True  # keep the socket open for what still comes the other way

    def connection_lost(self, exc: Exception | None) -> None:
        self._hold(_End(lost=True))

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.transport.is_closing():
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.transport.is_closing():
            self.peer.transport.resume_reading()

    def _hold(self, item: bytes | _End) -> None:
        due = time.monotonic() + self.route.delay
        self.queue.append((due, item))
        if not self.scheduled:
            self.scheduled = True
            self.route.timer.call_at(due, self._release)

    def _release(self) -> None:
        """Write on every item that is due, in order; schedule the next release if any are left.

        Before the target has answered there is nowhere to write: the items wait, and
        :meth:`_connect` releases them once it has.
        """
        self.scheduled = False
        peer = self.peer
        if peer is None or peer.transport is None:
            return
        now = time.monotonic()
        queue = self.queue
        while queue and queue[0][0] <= now:
            item = queue.popleft()[1]
            if isinstance(item, _End):
                peer._end(lost=item.lost)
            elif not peer.transport.is_closing():
                peer.transport.write(item)
        if queue:
            self.scheduled = True
            self.route.timer.call_at(queue[0][0], self._release)

    def _end(self, *, lost: bool) -> None:
        """The other direction has ended: pass the EOF on, or close both sockets once both directions have."""
        assert self.transport is not None and self.peer is not None
        self.eof_written = True
        if lost or self.peer.eof_written or not self.transport.can_write_eof():
            self.transport.close()
            if self.peer.transport is not None:
                self.peer.transport.close()
        elif not self.transport.is_closing():
            self.transport.write_eof()


@dataclass
class Route:
    """Where one listening socket forwards to, how long chunks are held (may change while running), what went by."""

    target: Address
    delay: float
    timer: PreciseTimer
    counters: Counters = field(default_factory=Counters)


async def serve_route(sock: socket.socket, route: Route) -> asyncio.Server:
    """Accept on the listening ``sock`` and forward each connection as ``route`` says."""
    return await asyncio.get_running_loop().create_server(lambda: _Side(route, upstream=False), sock=sock)


def _address(text: str) -> Address:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    if not is_loopback(f"//{host}"):
        raise argparse.ArgumentTypeError(f"{host!r} is not a loopback address")
    return host, int(port)


def _listening(text: str) -> socket.socket:
    """``fd:N``, an inherited listening socket, or ``HOST:PORT`` on loopback, bound here."""
    if text.startswith("fd:"):
        return socket.socket(fileno=int(text[3:]))
    return socket.create_server(_address(text), backlog=1024)


async def _serve(
    delay: float, listeners: Sequence[tuple[str, socket.socket, Address]], control: socket.socket | None
) -> None:
    loop = asyncio.get_running_loop()
    with PreciseTimer(loop) as timer:
        routes = {name: Route(target, delay, timer) for name, _, target in listeners}
        servers = [await serve_route(sock, routes[name]) for name, sock, _ in listeners]
        if control is not None:

            async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                command = (await reader.readline()).split()
                if command[:1] == [b"delay"] and len(command) == 2:
                    for route in routes.values():
                        route.delay = max(0.0, float(command[1]))
                counters = {name: asdict(route.counters) for name, route in routes.items()}
                writer.write(json.dumps(counters).encode() + b"\n")
                writer.close()

            servers.append(await asyncio.start_server(answer, sock=control))
        await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, required=True, help="seconds each chunk is held, each way")
    parser.add_argument(
        "--route",
        nargs=3,
        action="append",
        required=True,
        metavar=("NAME", "LISTEN", "TARGET"),
        help="forward LISTEN (HOST:PORT or fd:N) to TARGET (HOST:PORT), both on loopback; repeatable",
    )
    parser.add_argument(
        "--control",
        metavar="LISTEN",
        help="on LISTEN, answer a line 'stats' (or 'delay SECONDS', which sets the delay) with the counters as JSON",
    )
    args = parser.parse_args(argv)
    if args.delay < 0:
        parser.error("--delay must be >= 0")
    try:
        targets = [_address(target) for _, _, target in args.route]
        routes = [
            (name, _listening(listen), target) for (name, listen, _), target in zip(args.route, targets, strict=True)
        ]
        control = None if args.control is None else _listening(args.control)
    except (argparse.ArgumentTypeError, ValueError, OSError) as exc:
        parser.error(str(exc))
    from .harness import run_async

    run_async(_serve(args.delay, routes, control))


if __name__ == "__main__":
    main()
