"""A FastAPI app using ``SessionAuth`` in per-device mode, built fresh per test on SQLite, PostgreSQL or MariaDB.

Plain names for tests/fastapi/test_devices.py (conftest.py's ``make_device_harness`` fixture
builds on them). Each harness gets its own pair of tables (``users_<random>`` and
``devices_<random>``, the second with ``user_id`` referencing the first ``ON DELETE CASCADE``),
dropped afterwards. The same app also runs in user-token mode (``devices=None``), so a test can
show what device mode changes.

The request's database is switchable: ``get_db`` and the WebSocket re-checks open sessions on
:attr:`DeviceHarness.database` when a test sets it (an unreachable engine, for an outage), while
the harness's own ``maker`` keeps reading the real tables.
"""

# No `from __future__ import annotations`: FastAPI resolves the route signatures built in build_device_app.

import asyncio
import dataclasses
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from sqlalchemy import ForeignKey, event, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealed_sessions import SessionMiddleware
from sealed_sessions.fastapi import DatabaseUnavailable, SessionAuth
from sealed_sessions.sqlalchemy import DeviceSessionMixin, enable_sqlite_foreign_keys
from tests.helpers import KEY_A, FakeClock

from .harness import Harness, make_user_model, run_websocket, settle_aiosqlite_threads

WAIT = 30
"""Seconds before a wait on the app counts as a hang (a guard, never a timing assertion)."""


def make_device_model(base: type[DeclarativeBase], user: Any, table: str, *, ondelete: str | None = "CASCADE") -> Any:
    """A device model on ``base`` whose ``user_id`` references ``user``'s integer key, as the docs declare it."""

    class Device(DeviceSessionMixin, base):  # type: ignore[valid-type,misc]  # base is a fresh declarative class
        __tablename__ = table
        user_id: Mapped[int] = mapped_column(ForeignKey(f"{user.__tablename__}.id", ondelete=ondelete), index=True)

    return Device


class Ticker:
    """The ``sleep`` of a watched WebSocket: each call waits until the test calls :meth:`tick`."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self.asleep = asyncio.Event()
        self._wake = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self._wake.clear()
        self.asleep.set()
        await self._wake.wait()

    async def tick(self) -> None:
        """Wait until the watcher sleeps, then end its sleep: it runs one re-check."""
        await asyncio.wait_for(self.asleep.wait(), WAIT)
        self.asleep.clear()
        self._wake.set()

    async def settled(self) -> None:
        """Wait until the watcher is asleep again (its re-check finished and kept the socket open)."""
        await asyncio.wait_for(self.asleep.wait(), WAIT)


@dataclass
class DeviceHarness(Harness):
    """One app in device mode (or user-token mode when ``Device`` is None) and helpers to read its tables."""

    Device: Any = None
    database: async_sessionmaker[AsyncSession] | None = None
    """Where ``get_db`` and WebSocket re-checks open sessions; ``None``: ``maker``."""
    ticker: Ticker = field(default_factory=Ticker)
    """The sleep of the WebSocket route's watcher."""

    def open(self) -> AsyncSession:
        """A session for the app's own use: on ``database`` when set (an outage), else on ``maker``."""
        return (self.database or self.maker)()

    async def find(self, name: str) -> Any:
        """The user called ``name``, loaded through ``maker`` (so it is found even during an outage)."""
        async with self.maker() as db:
            return (await db.execute(select(self.User).where(self.User.name == name))).scalar_one()

    async def devices(self, pk: Any = None) -> list[Any]:
        """Every device row (of user ``pk`` when given), as loaded from the table."""
        statement = select(self.Device)
        if pk is not None:
            statement = statement.where(self.Device.user_id == pk)
        async with self.maker() as db:
            return list((await db.scalars(statement)).all())


DeviceHarnessFactory = Callable[..., Awaitable[DeviceHarness]]
"""The type of ``make_device_harness``: ``await make_device_harness(kind, devices=True, idle_timeout=None, **auth)``."""


def build_device_app(
    engine: AsyncEngine,
    User: Any,
    Device: Any,
    clock: FakeClock,
    *,
    idle_timeout: int | None = None,
    **auth_options: Any,
) -> DeviceHarness:
    """The test application: device login and logout, the device list, ending a device, revoking, a watched WebSocket.

    ``/login/{name}`` finds the user through the harness's ``maker`` (standing in for the app's
    password check), so only the login's own write meets an outage.
    """
    maker = async_sessionmaker(engine, expire_on_commit=False)

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with harness.open() as db:
            yield db

    auth: SessionAuth[Any] = SessionAuth(User, get_db, clock=clock, devices=Device, **auth_options)
    harness = DeviceHarness(FastAPI(), auth, User, engine, maker, clock, Device=Device)
    current_user = Annotated[Any, Depends(auth.current_user)]
    database = Annotated[AsyncSession, Depends(get_db)]
    app = harness.app
    app.add_middleware(SessionMiddleware, secret_key=KEY_A, clock=clock, idle_timeout=idle_timeout)
    app.add_exception_handler(DatabaseUnavailable, auth.database_unavailable_response)

    @app.post("/login/{name}")
    async def login(name: str, request: Request, db: database) -> dict[str, str | None]:
        user = await harness.find(name)
        if Device is None:
            auth.login(request, user)
            return {"device": None}
        return {"device": await auth.login_device(db, request, user)}

    @app.post("/logout")
    async def logout(request: Request, db: database) -> dict[str, bool]:
        if Device is None:
            auth.logout(request)
            return {"ended": False}
        return {"ended": await auth.logout_device(db, request)}

    @app.get("/me")
    async def me(user: current_user, slow: bool = False) -> dict[str, str]:
        if slow:  # past the check: wait until the test opens the gate
            harness.entered.set()
            await harness.gate.wait()
        return {"id": str(user.id), "name": user.name}

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/devices")
    async def devices(request: Request, user: current_user, db: database) -> list[dict[str, Any]]:
        return [dataclasses.asdict(info) for info in await auth.list_devices(db, user, request)]

    @app.delete("/devices/{device_id}")
    async def end_device(device_id: str, user: current_user, db: database) -> dict[str, str]:
        if not await auth.end_device(db, user, device_id):
            raise HTTPException(404, "No such device")
        return {"ended": device_id}

    @app.post("/revoke")
    async def revoke(request: Request, user: current_user, db: database, keep: bool = False) -> dict[str, bool]:
        await auth.revoke(db, user, keep=request if keep else None)  # keep: "log out my other devices"
        return {"kept": keep}

    @app.websocket("/ws")
    async def watched(websocket: WebSocket, user: Annotated[Any, Depends(auth.websocket_user)]) -> None:
        await websocket.accept()
        async with auth.watching(websocket, harness.open, every=30, sleep=harness.ticker):
            await websocket.send_text(user.name)
            async for _ in websocket.iter_text():
                pass

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        harness.statements.append(statement)

    return harness


async def open_device_harness(
    url: str,
    *,
    devices: bool = True,
    foreign_keys: bool = True,
    engine_options: dict[str, Any] | None = None,
    **app: Any,
) -> DeviceHarness:
    """Create a user and a device table on ``url`` and build the app on them (``devices=False``: user-token mode).

    ``foreign_keys`` turns SQLite's foreign keys on, as an application would; ``app`` goes to
    :func:`build_device_app`.
    """
    engine = create_async_engine(url, **(engine_options or {}))
    if foreign_keys:
        enable_sqlite_foreign_keys(engine)
    suffix = secrets.token_hex(4)
    base, user = make_user_model("int", f"users_{suffix}")
    device = make_device_model(base, user, f"devices_{suffix}")
    async with engine.begin() as conn:
        await conn.run_sync(base.metadata.create_all)
    return build_device_app(engine, user, device if devices else None, FakeClock(), **app)


async def close_device_harness(harness: DeviceHarness) -> None:
    """Drop a harness's tables and dispose of its engine."""
    async with harness.engine.begin() as conn:
        await conn.run_sync(harness.User.metadata.drop_all)
    await harness.engine.dispose()


@asynccontextmanager
async def unreachable(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on ``engine``'s kind of database where none answers: a SQLite file in a missing
    folder, or a loopback port where nothing listens."""
    target = engine.url
    if target.get_backend_name() == "sqlite":
        assert target.database is not None
        target = target.set(database=str(Path(target.database).parent / "missing" / "app.db"))
    else:
        with socket.socket() as sock:  # a free port: bound, then released
            sock.bind(("127.0.0.1", 0))
            target = target.set(host="127.0.0.1", port=sock.getsockname()[1])
    down = create_async_engine(target)
    try:
        yield async_sessionmaker(down, expire_on_commit=False)
    finally:
        await down.dispose()
        await settle_aiosqlite_threads()


class OpenSocket:
    """A WebSocket to ``/ws`` (driven by :func:`run_websocket`) that stays open until :meth:`hang_up`."""

    def __init__(self, app: ASGIApp, cookie: str) -> None:
        self.sent: asyncio.Queue[Message] = asyncio.Queue()
        self._hung_up = asyncio.Event()

        async def held(scope: Scope, receive: Receive, send: Send) -> None:
            async def receive_until_hung_up() -> Message:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    await self._hung_up.wait()
                return message

            async def record(message: Message) -> None:
                self.sent.put_nowait(message)
                await send(message)

            await app(scope, receive_until_hung_up, record)

        self._task = asyncio.ensure_future(run_websocket(held, cookie))

    async def next(self) -> Message:
        """The next message the app sent."""
        return await asyncio.wait_for(self.sent.get(), WAIT)

    async def hang_up(self) -> list[Message]:
        """Disconnect (as the client) and wait for the app to finish; what it sent that was not read yet."""
        self._hung_up.set()
        await asyncio.wait_for(self._task, WAIT)
        unread = []
        while not self.sent.empty():
            unread.append(self.sent.get_nowait())
        return unread
