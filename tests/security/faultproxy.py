"""A fault-injecting TCP proxy on loopback, for putting a sick network between the app and its database.

Modes (switch at any time with :meth:`FaultProxy.set_mode`):

- ``"pass"``: forward bytes both ways.
- ``"refuse"``: stop listening, so new connections get ECONNREFUSED; live ones are cut.
- ``"cut"``: abort a connection as soon as it carries any byte (a query cut mid-flight, a login
  cut at its first packet); idle pooled connections stay up until they are used.
- ``"stall"``: accept and hold: nothing is forwarded until the mode changes (a hung server).
- ``"slow"``: forward every chunk after ``delay`` seconds (a slow server).

:meth:`cut_all` aborts every live connection at once (the database restarted: the pool holds only
stale connections). Loopback only: it binds 127.0.0.1 and refuses any other upstream host.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

Mode = Literal["pass", "refuse", "cut", "stall", "slow"]
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class FaultProxy:
    """Forward 127.0.0.1:<port> to ``upstream``, with faults on demand."""

    def __init__(self, upstream_host: str, upstream_port: int, *, delay: float = 0.5) -> None:
        if upstream_host not in _LOOPBACK:
            raise ValueError("the fault proxy only talks to loopback addresses")
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.mode: Mode = "pass"
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def live(self) -> int:
        """Connections currently open through the proxy."""
        return len(self._links)

    async def start(self) -> int:
        await self._listen()
        return self.port

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode == "stall":
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode == "refuse":
            self.cut_all()
            await self._unlisten()
        elif self._server is None:
            await self._listen()

    async def heal(self) -> None:
        await self.set_mode("pass")

    def cut_all(self) -> None:
        """Abort every live connection, both sides (the database went away and came back)."""
        for client, upstream in list(self._links):
            _abort(client)
            _abort(upstream)
        self._links.clear()

    async def close(self) -> None:
        await self._unlisten()
        self.cut_all()
        self._flowing.set()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "refuse":  # raced with set_mode("refuse")
            _abort(client_writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _abort(client_writer)
            return
        link = (client_writer, up_writer)
        self._links.add(link)
        pumps = [
            asyncio.create_task(self._pump(client_reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, client_writer, link)),
        ]
        for task in pumps:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.gather(*pumps, return_exceptions=True)
        self._links.discard(link)
        _abort(client_writer)
        _abort(up_writer)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                await self._flowing.wait()
                if self.mode == "cut":
                    break
                if self.mode == "slow":
                    await asyncio.sleep(self.delay)
                if link not in self._links:
                    break
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for side in link:
                _abort(side)


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()
