"""A loopback TCP proxy that counts client round trips in the PostgreSQL and MySQL wire protocols.

PostgreSQL: every simple ``Query`` ('Q') and every ``Sync`` ('S') ends a batch the client waits
on, so each is one round trip (asyncpg sends Bind/Execute/Sync for a prepared statement in one
write). MySQL/MariaDB: every client packet with sequence id 0 after the handshake is a command
(``COM_QUERY``, ``COM_PING``...) and waits for its answer. The proxy records what it saw so a
failing test can say which round trips happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

_PG_SSL_REQUEST = 80877103
_PG_GSSENC_REQUEST = 80877104


@dataclass
class RoundTrip:
    """One client request the driver waited on: a short label and the SQL text when there is one."""

    kind: str
    sql: str = ""


@dataclass
class _PgParser:
    trips: list[RoundTrip]
    buffer: bytearray = field(default_factory=bytearray)
    startup: bool = True
    pending_sql: str = ""
    prepared: dict[bytes, str] = field(default_factory=dict)

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.startup:
                if len(self.buffer) < 8:
                    return
                (length,) = struct.unpack("!I", self.buffer[:4])
                if len(self.buffer) < length:
                    return
                (code,) = struct.unpack("!I", self.buffer[4:8])
                del self.buffer[:length]
                if code not in (_PG_SSL_REQUEST, _PG_GSSENC_REQUEST):
                    self.startup = False
                continue
            if len(self.buffer) < 5:
                return
            kind = chr(self.buffer[0])
            (length,) = struct.unpack("!I", self.buffer[1:5])
            if len(self.buffer) < length + 1:
                return
            body = bytes(self.buffer[5 : length + 1])
            del self.buffer[: length + 1]
            if kind == "Q":
                self.trips.append(RoundTrip("query", body.rstrip(b"\0").decode(errors="replace")))
            elif kind == "P":  # Parse: statement name, then the SQL text
                name_end = body.index(b"\0")
                sql = body[name_end + 1 : body.index(b"\0", name_end + 1)].decode(errors="replace")
                self.prepared[body[:name_end]] = self.pending_sql = sql
            elif kind == "B":  # Bind: portal name, then the prepared statement's name
                portal_end = body.index(b"\0")
                name = body[portal_end + 1 : body.index(b"\0", portal_end + 1)]
                self.pending_sql = self.pending_sql or self.prepared.get(name, "")
            elif kind == "S":
                self.trips.append(RoundTrip("sync", self.pending_sql))
                self.pending_sql = ""


@dataclass
class _MySqlParser:
    trips: list[RoundTrip]
    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 4:
            length = int.from_bytes(self.buffer[:3], "little")
            if len(self.buffer) < length + 4:
                return
            sequence = self.buffer[3]
            payload = bytes(self.buffer[4 : length + 4])
            del self.buffer[: length + 4]
            if sequence == 0 and payload:  # a new command; handshake packets have sequence >= 1
                command = payload[0]
                sql = payload[1:].decode(errors="replace") if command == 0x03 else ""
                self.trips.append(RoundTrip(f"command 0x{command:02x}", sql))


class WireCounter:
    """Forward loopback connections to ``target`` and record the client's round trips."""

    def __init__(self, protocol: str, host: str, port: int) -> None:
        assert protocol in ("postgres", "mysql")
        assert host in ("127.0.0.1", "localhost", "::1"), "loopback only"
        self.protocol = protocol
        self.target = (host, port)
        self.trips: list[RoundTrip] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> WireCounter:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        await self._server.wait_closed()

    def reset(self) -> None:
        self.trips.clear()

    def sever(self) -> None:
        """Cut every open connection, as a database restart does to pooled connections."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        self._writers.update((client_writer, server_writer))
        parser = _PgParser(self.trips) if self.protocol == "postgres" else _MySqlParser(self.trips)
        upstream = asyncio.ensure_future(self._pipe(client_reader, server_writer, parser.feed))
        downstream = asyncio.ensure_future(self._pipe(server_reader, client_writer, None))
        self._tasks.update((upstream, downstream))
        try:
            await asyncio.wait((upstream, downstream), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (upstream, downstream):
                task.cancel()
                self._tasks.discard(task)
            for writer in (client_writer, server_writer):
                self._writers.discard(writer)
                writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, observe: object) -> None:
        while data := await reader.read(65536):
            if callable(observe):
                observe(data)
            writer.write(data)
            await writer.drain()
