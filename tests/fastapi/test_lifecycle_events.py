"""Lifecycle events from ``SessionAuth``: login, logout, revoke (with counts), refusals of the check, in both modes."""

import asyncio
import logging
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from sealed_sessions import SessionMiddleware
from sealed_sessions._events import AuthEvent, AuthEvents, EventKind
from sealed_sessions.fastapi import SessionAuth
from tests.helpers import COOKIE, DAY, KEY_A, KEY_B, START, FakeClock, https_client

from .device_harness import DeviceHarnessFactory
from .harness import HarnessFactory, make_user_model, session_of


def recorder(events: AuthEvents) -> list[AuthEvent]:
    """Every event ``events`` emits from now on, in order."""
    seen: list[AuthEvent] = []
    events.on(None, seen.append)
    return seen


def summary(seen: list[AuthEvent], *kinds: EventKind) -> list[tuple[str, str | None, int | None, str | None]]:
    """(kind, user_id, ended, reason) of the events of ``kinds`` (every kind but refusals by default)."""
    wanted = kinds or (EventKind.LOGIN, EventKind.LOGOUT, EventKind.REVOKE)
    return [(str(e.kind), e.user_id, e.ended, e.reason) for e in seen if e.kind in wanted]


# -- user-token mode --------------------------------------------------------------------------------------


@pytest.mark.case("M5")
async def test_user_token_mode_emits_login_logout_revoke_and_refusal(
    make_harness: HarnessFactory, db_kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """login, logout, revoke (every session: ended None) and the check's session_revoked refusal, with the user id."""
    caplog.set_level(logging.INFO, "sealed_sessions")
    h = await make_harness(db_kind)
    seen = recorder(h.auth.events)
    uid = await h.create_user("alice")
    async with https_client(h.app) as client, https_client(h.app) as other:
        await client.post("/login/alice")
        await other.post("/login/alice")
        stale = dict(client.cookies)
        await client.post("/logout-others")
        await other.post("/logout-everywhere")  # its token is stale now: refused
        await client.post("/logout-everywhere")
        await client.post("/logout")
        client.cookies.clear()
        client.cookies.update(stale)
        assert (await client.get("/me")).status_code == 401
    alice = str(uid)
    assert summary(seen) == [
        ("login", alice, None, None),
        ("login", alice, None, None),
        ("revoke", alice, None, "revoke_others"),
        ("revoke", alice, None, "revoke"),
        ("logout", alice, None, None),
    ]
    refusals = [(e.reason, e.user_id) for e in seen if e.kind == EventKind.REFUSAL]
    assert refusals == [("session_revoked", None), ("session_revoked", None)]
    assert all(e.at == START for e in seen)
    logged = [(getattr(r, "event", None), getattr(r, "user_id", None)) for r in caplog.records if hasattr(r, "event")]
    assert logged == [("login", alice), ("login", alice), ("revoke", alice), ("revoke", alice), ("logout", alice)]


async def test_logout_of_an_anonymous_session_emits_nothing(make_harness: HarnessFactory) -> None:
    """A logout that had no user to log out is not an event."""
    h = await make_harness("sqlite")
    seen = recorder(h.auth.events)
    async with https_client(h.app) as client:
        await client.post("/cart")
        await client.post("/logout")
    assert seen == []


@pytest.mark.case("M6")
async def test_failing_callbacks_never_break_login(
    make_harness: HarnessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Sync and async callbacks that raise are logged by class; login still works; a good async callback runs."""
    h = await make_harness("sqlite")
    got: list[AuthEvent] = []

    def broken(event: AuthEvent) -> None:
        raise RuntimeError("boom")

    async def broken_later(event: AuthEvent) -> None:
        raise RuntimeError("boom later")

    async def fine(event: AuthEvent) -> None:
        await asyncio.sleep(0)
        got.append(event)

    h.auth.events.on(EventKind.LOGIN, broken)
    h.auth.events.on(EventKind.LOGIN, broken_later)
    h.auth.events.on(None, fine)
    await h.create_user("alice")
    async with https_client(h.app) as client:
        assert (await client.post("/login/alice")).status_code == 200
        assert (await client.get("/me")).json()["name"] == "alice"
    await h.auth.events.drain()
    assert [e.kind for e in got] == [EventKind.LOGIN]
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert [m.split(" (")[0].rsplit(".", 1)[-1] for m in failures] == [
        "broken raised RuntimeError",
        "broken_later raised RuntimeError",
    ]
    assert "boom" not in caplog.text


async def test_one_hub_for_the_middleware_and_auth(tmp_path: Any) -> None:
    """``events=`` on both: the middleware's old_key and refusals and SessionAuth's login arrive in one place."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    base, User = make_user_model("int", "users_hub")
    async with engine.begin() as conn:
        await conn.run_sync(base.metadata.create_all)
    maker = async_sessionmaker(engine, expire_on_commit=False)

    async def get_db() -> Any:
        async with maker() as db:
            yield db

    clock = FakeClock()
    events = AuthEvents()
    seen = recorder(events)
    auth: SessionAuth[Any] = SessionAuth(User, get_db, clock=clock, events=events)
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=[KEY_B, KEY_A], clock=clock, events=events)

    @app.post("/login/{name}")
    async def login(name: str, request: Request, db: Annotated[AsyncSession, Depends(get_db)]) -> None:
        user = User(name=name)
        db.add(user)
        await db.commit()
        auth.login(request, user)

    from sealed_sessions.testing import seal

    old = seal(KEY_A, {"n": 1}, issued_at=START, last_active=START)
    async with https_client(app, cookies={COOKIE: old}) as client:
        await client.post("/login/bob")
    async with https_client(app, cookies={COOKIE: "garbage!"}) as client:
        await client.post("/login/eve")
    assert [str(e.kind) for e in seen] == ["old_key", "login", "refusal", "login"]
    assert auth.events is events and events.counts["login"] == 2
    await engine.dispose()


# -- device mode ------------------------------------------------------------------------------------------


@pytest.mark.case("M5")
async def test_device_mode_events_carry_devices_and_counts(
    make_device_harness: DeviceHarnessFactory, db_kind: str
) -> None:
    """login_device, revoke (ended = device rows deleted), end_device, logout_device and purge, with device ids."""
    h = await make_device_harness(db_kind)
    seen = recorder(h.auth.events)
    bob = await h.create_user("bob")
    clients = [https_client(h.app) for _ in range(4)]
    async with clients[0] as a, clients[1] as b, clients[2] as c, clients[3] as d:
        devices = [(await x.post("/login/bob")).json()["device"] for x in (a, b, c, d)]
        await a.post("/revoke", params={"keep": True})  # ends b, c and d
        for x in (b, c):
            await x.post("/login/bob")
        await a.delete(f"/devices/{session_of(b)['_auth_dev']}")
        await a.post("/logout")
        await c.post("/revoke")  # the last device: c's own
    user = str(bob)
    assert summary(seen) == [
        *[("login", user, None, None)] * 4,
        ("revoke", user, 3, "revoke_others"),
        *[("login", user, None, None)] * 2,
        ("revoke", user, 1, "device_ended"),
        ("logout", user, 1, None),
        ("revoke", user, 1, "revoke"),
    ]
    assert [e.device_id for e in seen if e.kind == EventKind.LOGIN][:4] == devices
    assert [e.device_id for e in seen if e.kind == EventKind.LOGOUT] == [devices[0]]

    await h.create_user("carol")
    async with https_client(h.app) as e:
        await e.post("/login/carol")
    h.clock.advance(15 * DAY)
    async with h.maker() as db:
        assert await h.auth.purge_devices(db) == 1
    assert summary(seen)[-1] == ("revoke", None, 1, "expired")


@pytest.mark.case("M8")
async def test_no_token_device_secret_or_cookie_in_events_or_logs(
    make_device_harness: DeviceHarnessFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Scanning every event and log record of a device session's life: no session token, device secret or cookie."""
    caplog.set_level(logging.DEBUG, "sealed_sessions")
    h = await make_device_harness("sqlite")
    seen = recorder(h.auth.events)
    await h.create_user("dave")
    secrets: list[str] = []
    async with https_client(h.app) as client, https_client(h.app) as other:
        await client.post("/login/dave")
        await other.post("/login/dave")
        for x in (client, other):
            data = session_of(x)
            secrets += [data["_auth_token"], data["_auth_dsec"], x.cookies[COOKIE]]
        await client.post("/revoke", params={"keep": True})
        assert (await other.get("/me")).status_code == 401
        secrets.append(session_of(client)["_auth_token"])
        await client.post("/logout")
    records = [r for r in caplog.records if r.name == "sealed_sessions"]
    dumped = repr(seen) + "".join(r.getMessage() + repr(vars(r)) for r in records)
    assert len(seen) >= 5 and len(records) >= 5
    for secret in secrets:
        assert secret[:16] not in dumped
