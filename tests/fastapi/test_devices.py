"""Per-device sessions: one row per login, checked in the one SELECT (G11-G18, H13, H14).

Every test runs on SQLite, PostgreSQL and MariaDB (``db_kind``) unless it is about one of them or
about configuration alone. Time moves only through the harness's clock; a slow request waits on
the harness's gate; a watched WebSocket sleeps on the harness's ticker.
"""

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import ForeignKey, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import Request

from sealed_sessions import ConfigurationError
from sealed_sessions.fastapi import DatabaseUnavailable, SessionAuth, UnsupportedModel
from sealed_sessions.sqlalchemy import DeviceSessionMixin, SessionTokenMixin
from sealed_sessions.testing import seal
from tests.helpers import COOKIE, DAY, KEY_A, START, ClientFactory, unb64

from .device_harness import DeviceHarness, DeviceHarnessFactory, OpenSocket, make_device_model, unreachable
from .harness import POSTGRES_URL, make_user_model, session_of
from .wire import WireCounter

DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{22}")


def one_line(sql: str) -> str:
    """A statement on one line, lower-case, for matching."""
    return " ".join(sql.split()).lower()


async def statements_of(h: DeviceHarness, request: Any) -> tuple[httpx.Response, list[str]]:
    """Await ``request`` (a client call) and return its response and the statements it ran."""
    h.statements.clear()
    response = await request
    return response, [one_line(s) for s in h.statements]


def is_deletion(response: httpx.Response) -> bool:
    """Whether the response deletes the session cookie."""
    return "max-age=0" in response.headers.get("set-cookie", "").lower()


async def log_in(client: httpx.AsyncClient, name: str = "ada") -> str:
    """Log ``client`` in as ``name``; the new device's id."""
    response = await client.post(f"/login/{name}")
    assert response.status_code == 200, response.text
    device: str = response.json()["device"]
    return device


def device_of(client: httpx.AsyncClient) -> str:
    """The id of the device ``client``'s session names."""
    device: str = session_of(client)["_auth_dev"]
    return device


@asynccontextmanager
async def logged_in(
    h: DeviceHarness, client_factory: ClientFactory, *names: str
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client per name, each logged in as that user on a device of its own."""
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(client_factory(h.app)) for _ in names]
        for client, name in zip(clients, names, strict=True):
            await log_in(client, name)
        yield clients


# -- H13: one statement per request ------------------------------------------------------------------


@pytest.mark.case("H13")
async def test_one_statement_joining_the_device_table_per_authenticated_request(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """An authenticated request runs one SELECT that joins the device table; an anonymous one runs none."""
    h = await make_device_harness(db_kind)
    await h.create_user("ada")
    devices = h.Device.__tablename__
    async with logged_in(h, client_factory, "ada") as (client,):
        for _ in range(3):
            response, sql = await statements_of(h, client.get("/me"))
            assert response.status_code == 200
            assert "set-cookie" not in response.headers  # nothing to note: last_seen_at is not due
            assert len(sql) == 1, sql
            assert sql[0].startswith("select ")
            assert f" join {devices} on {devices}.user_id = " in sql[0]
            where = sql[0].split(" where ", 1)[1]
            for condition in [".session_token = ", f"{devices}.id = ", f"{devices}.secret_hash = ", "expires_at > "]:
                assert condition in where, where
    async with client_factory(h.app) as anonymous:
        h.statements.clear()
        assert (await anonymous.get("/me")).status_code == 401
        assert (await anonymous.get("/public")).status_code == 200
        assert h.statements == []


@pytest.mark.case("H13")
async def test_session_without_a_device_is_refused_without_a_query(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """A session with a live user and token but no well-formed device id and secret gets 401 and runs no SQL."""
    h = await make_device_harness(db_kind)
    pk = await h.create_user("ada")
    user = {"_auth_uid": pk, "_auth_token": await h.token(pk), "_auth_at": START}
    proofs: list[dict[str, Any]] = [{}, {"_auth_dev": "x" * 22}, {"_auth_dev": "a/b", "_auth_dsec": "s"}]
    for device in [*proofs, {"_auth_dev": 7, "_auth_dsec": "s"}, {"_auth_dev": "x" * 33, "_auth_dsec": "s"}]:
        async with client_factory(h.app, cookies={COOKIE: seal(KEY_A, user | device, issued_at=START)}) as client:
            response, sql = await statements_of(h, client.get("/me"))
            assert response.status_code == 401, device
            assert is_deletion(response), device
            assert sql == [], device


@pytest.mark.case("H13")
async def test_last_seen_is_written_once_per_interval(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """``last_seen_at`` is never written by an ordinary request, and once (a second statement) per seen_interval."""
    h = await make_device_harness(db_kind, seen_interval=900)
    pk = await h.create_user("ada")
    async with logged_in(h, client_factory, "ada") as (client,):
        for interval in (1, 2):
            h.clock.advance(899)
            response, sql = await statements_of(h, client.get("/me"))
            assert (len(sql), "set-cookie" in response.headers) == (1, False)
            h.clock.advance(1)  # seen_interval has passed: this request notes it
            response, sql = await statements_of(h, client.get("/me"))
            assert response.status_code == 200
            assert len(sql) == 2, sql
            assert sql[1].startswith("update ")
            assert f"{h.Device.__tablename__} set last_seen_at=" in sql[1]
            assert "set-cookie" in response.headers  # the session remembers when, so the next request skips it
            assert session_of(client)["_auth_seen"] == h.clock.now
            ((row,),) = [await h.devices(pk)]
            assert row.last_seen_at == START + 900 * interval
            response, sql = await statements_of(h, client.get("/me"))  # the same second again: one statement
            assert (len(sql), "set-cookie" in response.headers) == (1, False)


@pytest.mark.case("H13")
@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="SEALED_TEST_POSTGRES_URL is not set")
async def test_postgres_device_request_is_one_round_trip(
    make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """On asyncpg an authenticated device-mode request is one round trip; noting last_seen_at adds one UPDATE."""
    assert POSTGRES_URL is not None
    server = make_url(POSTGRES_URL)
    assert server.host is not None
    h = await make_device_harness("postgres")
    await h.create_user("ada")
    async with WireCounter("postgres", server.host, server.port or 5432) as wire:
        engine = create_async_engine(server.set(host="127.0.0.1", port=wire.port), pool_size=1, max_overflow=0)
        h.database = async_sessionmaker(engine, expire_on_commit=False)  # the app's requests go through the counter
        try:
            async with client_factory(h.app) as client:
                await log_in(client)
                assert (await client.get("/me")).status_code == 200  # warm: connect, prepare, cache
                wire.reset()
                assert (await client.get("/me")).status_code == 200
                trips = [(t.kind, one_line(t.sql)) for t in wire.trips]
                h.clock.advance(900)
                wire.reset()
                assert (await client.get("/me")).status_code == 200
                noted = [(t.kind, one_line(t.sql).split()[0]) for t in wire.trips]
            async with client_factory(h.app) as anonymous:
                wire.reset()
                assert (await anonymous.get("/me")).status_code == 401
                assert wire.trips == []
        finally:
            await engine.dispose()
    assert len(trips) == 1, trips
    assert trips[0][0] == "sync"
    assert trips[0][1].startswith("select ") and f" join {h.Device.__tablename__} " in trips[0][1]
    assert noted == [("sync", "select"), ("sync", "update")], noted


# -- G11, G12: logout ----------------------------------------------------------------------------------


@pytest.mark.case("G11")
async def test_copy_of_the_cookie_is_refused_after_logout(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """logout_device deletes this device's row, so a copy of the cookie taken before logout gets 401."""
    h = await make_device_harness(db_kind)
    pk = await h.create_user("ada")
    async with logged_in(h, client_factory, "ada", "ada") as (browser, other):
        stolen = browser.cookies[COOKIE]
        async with client_factory(h.app, cookies={COOKIE: stolen}) as thief:
            assert (await thief.get("/me")).status_code == 200  # the copy works until the logout
            response = await browser.post("/logout")
            assert response.json() == {"ended": True}
            assert is_deletion(response)
            assert [row.id for row in await h.devices(pk)] == [device_of(other)]
            refused = await thief.get("/me")
            assert refused.status_code == 401
            assert is_deletion(refused)
        assert (await other.get("/me")).status_code == 200  # the user's other device is not logged out


async def race_slow_request_with_logout(h: DeviceHarness, browser: httpx.AsyncClient) -> httpx.Response:
    """Log in, let renewal fall due, start a slow read-only request, log out, then let it finish; its response."""
    await log_in(browser)
    h.clock.advance(1000)  # the cookie was sealed 1000 s ago: idle renewal (every 900 s) is due
    in_flight = asyncio.ensure_future(browser.get("/me?slow=true"))
    await asyncio.wait_for(h.entered.wait(), 30)  # it has passed its check
    response = await browser.post("/logout")
    assert response.status_code == 200
    assert is_deletion(response)
    assert COOKIE not in browser.cookies
    h.gate.set()
    late = await in_flight
    assert late.status_code == 200
    assert not is_deletion(late)
    assert "set-cookie" in late.headers  # the late response sends the session back...
    assert COOKIE in browser.cookies  # ...and the browser keeps it: the last one wins
    assert session_of(browser)["_auth_uid"] == 1  # a whole session, not an empty one
    return late


@pytest.mark.case("G12")
async def test_slow_request_finishing_after_device_logout_does_not_resurrect_the_session(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """A cookie resealed by a request that started before logout_device and finished after it gets 401."""
    h = await make_device_harness(db_kind, idle_timeout=3600, seen_interval=DAY)
    await h.create_user("ada")
    async with client_factory(h.app) as browser:
        await race_slow_request_with_logout(h, browser)
        assert (await browser.get("/me")).status_code == 401


@pytest.mark.case("G12")
async def test_slow_request_finishing_after_cookie_only_logout_resurrects_the_session(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """In user-token mode the same race undoes a cookie-only logout: why device mode (or a revoking logout) exists."""
    h = await make_device_harness(db_kind, devices=False, idle_timeout=3600)
    await h.create_user("ada")
    async with client_factory(h.app) as browser:
        await race_slow_request_with_logout(h, browser)
        assert (await browser.get("/me")).status_code == 200  # logged in again: the documented weakness


# -- G13, G14: ending devices ----------------------------------------------------------------------


@pytest.mark.case("G13")
async def test_a_user_cannot_end_another_users_device(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """Ending another user's device id is a 404 (end_device is False); the row stays and still authenticates."""
    h = await make_device_harness(db_kind)
    ada = await h.create_user("ada")
    await h.create_user("eve")
    async with logged_in(h, client_factory, "ada", "eve") as (victim, attacker):
        target = device_of(victim)
        for device_id in [target, target.lower(), "x" * 200]:
            assert (await attacker.delete(f"/devices/{device_id}")).status_code == 404, device_id
        async with h.maker() as db:
            assert await h.auth.end_device(db, await h.find("eve"), target) is False
        assert [row.id for row in await h.devices(ada)] == [target]
        assert (await victim.get("/me")).status_code == 200


@pytest.mark.case("G13")
async def test_ending_a_device_id_no_device_can_have_is_a_404(
    db_kind: str,
    make_device_harness: DeviceHarnessFactory,
    client_factory: ClientFactory,
) -> None:
    """A device id holding a NUL or other characters no id has is a 404 on every database, never a 503."""
    h = await make_device_harness(db_kind)
    await h.create_user("ada")
    async with logged_in(h, client_factory, "ada") as (client,):
        for device_id in ["%00", "a%00b", "%01", "%C3%A9", "a%20b"]:
            assert (await client.delete(f"/devices/{device_id}")).status_code == 404, device_id


@pytest.mark.case("G13")
async def test_ending_ones_own_other_device_refuses_it(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """Ending one's own other device deletes its row: its next request gets 401, this device carries on."""
    h = await make_device_harness(db_kind)
    pk = await h.create_user("ada")
    async with logged_in(h, client_factory, "ada", "ada") as (laptop, phone):
        here, there = device_of(laptop), device_of(phone)
        assert (await laptop.delete(f"/devices/{there}")).json() == {"ended": there}
        assert (await laptop.delete(f"/devices/{there}")).status_code == 404  # already gone
        assert [row.id for row in await h.devices(pk)] == [here]
        assert (await phone.get("/me")).status_code == 401
        assert (await laptop.get("/me")).status_code == 200


@pytest.mark.case("G14")
async def test_revoke_keeping_this_request_ends_every_other_device(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """revoke(keep=request) ends every other device (401) and keeps this one, the only one listed."""
    h = await make_device_harness(db_kind)
    pk = await h.create_user("ada")
    async with logged_in(h, client_factory, "ada", "ada", "ada") as (laptop, phone, tablet):
        here = device_of(laptop)
        assert len((await laptop.get("/devices")).json()) == 3
        assert (await laptop.post("/revoke?keep=true")).json() == {"kept": True}
        assert session_of(laptop)["_auth_token"] == await h.token(pk)  # this session holds the new token
        assert (await phone.get("/me")).status_code == 401
        assert (await tablet.get("/me")).status_code == 401
        assert (await laptop.get("/me")).status_code == 200
        (listed,) = (await laptop.get("/devices")).json()
        assert (listed["id"], listed["current"]) == (here, True)
        assert [row.id for row in await h.devices(pk)] == [here]


@pytest.mark.case("G14")
async def test_revoke_without_keep_ends_every_device(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """revoke() without keep rotates the token and deletes every device row: every device gets 401."""
    h = await make_device_harness(db_kind)
    pk = await h.create_user("ada")
    async with logged_in(h, client_factory, "ada", "ada") as (laptop, phone):
        token = await h.token(pk)
        assert (await laptop.post("/revoke")).json() == {"kept": False}
        assert await h.token(pk) != token
        assert await h.devices(pk) == []
        assert (await laptop.get("/me")).status_code == 401
        assert (await phone.get("/me")).status_code == 401


# -- G15: cap, expiry, purge -------------------------------------------------------------------------


@pytest.mark.case("G15")
async def test_login_beyond_max_devices_ends_the_oldest(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """With max_devices=2 the third login ends the oldest device (401); the list has the two newest."""
    h = await make_device_harness(db_kind, max_devices=2)
    pk = await h.create_user("ada")
    await h.create_user("grace")
    async with client_factory(h.app) as first, client_factory(h.app) as second, client_factory(h.app) as third:
        async with client_factory(h.app) as bystander:
            await log_in(bystander, "grace")
            ids = []
            for client in (first, second, third):
                ids.append(await log_in(client))
                h.clock.advance(1)
            assert (await first.get("/me")).status_code == 401
            assert (await second.get("/me")).status_code == 200
            listed = (await third.get("/devices")).json()
            assert [(d["id"], d["current"]) for d in listed] == [(ids[2], True), (ids[1], False)]  # newest first
            assert len(await h.devices(pk)) == 2
            assert (await bystander.get("/me")).status_code == 200  # another user's devices are not counted


@pytest.mark.case("G15")
async def test_logins_in_the_same_second_never_end_the_new_device(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """When the cap ends a device at login, it is never the one logging in, even if all were created the same second."""
    h = await make_device_harness(db_kind, max_devices=1)
    pk = await h.create_user("ada")
    for _ in range(20):  # the clock stands still: every row has the same created_at
        async with client_factory(h.app) as client:
            device = await log_in(client)
            assert [row.id for row in await h.devices(pk)] == [device]
            assert (await client.get("/me")).status_code == 200


@pytest.mark.case("G15")
async def test_expired_device_never_matches_even_before_the_purge(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """A device row past expires_at is refused (401) though the cookie itself is still valid and the row still there."""
    h = await make_device_harness(db_kind, device_max_age=3600)  # the middleware's max_age is 14 days
    pk = await h.create_user("ada")
    async with logged_in(h, client_factory, "ada") as (client,):
        ((row,),) = [await h.devices(pk)]
        assert row.expires_at == START + 3600
        h.clock.advance(3599)
        assert (await client.get("/me")).status_code == 200
        h.clock.advance(1)
        assert (await client.get("/me")).status_code == 401
        assert len(await h.devices(pk)) == 1  # refused by the check, not removed


@pytest.mark.case("G15")
async def test_purge_deletes_only_expired_rows(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """purge_devices deletes every expired row, of every user, and no live one, and returns how many."""
    h = await make_device_harness(db_kind, device_max_age=3600, max_devices=None)
    ada = await h.create_user("ada")
    grace = await h.create_user("grace")
    for name in ("ada", "grace", "ada"):  # three browsers at START: these three expire at START + 3600
        async with client_factory(h.app) as client:
            await log_in(client, name)
    h.clock.advance(1800)
    live = set()
    for name in ("ada", "grace"):
        async with client_factory(h.app) as client:
            live.add(await log_in(client, name))
    async with h.maker() as db:
        assert await h.auth.purge_devices(db) == 0  # nothing expired yet
        h.clock.advance(1800)
        assert await h.auth.purge_devices(db) == 3
        assert await h.auth.purge_devices(db) == 0
    assert {row.id for row in await h.devices()} == live
    assert len(await h.devices(ada)) == len(await h.devices(grace)) == 1


# -- G16: a deleted user's devices --------------------------------------------------------------------


@pytest.mark.case("G16")
async def test_deleting_a_user_deletes_its_devices(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """Deleting a user deletes its device rows (ON DELETE CASCADE; on SQLite with enable_sqlite_foreign_keys)."""
    h = await make_device_harness(db_kind)
    ada = await h.create_user("ada")
    grace = await h.create_user("grace")
    async with logged_in(h, client_factory, "ada", "ada", "grace") as (laptop, _, other):
        assert len(await h.devices(ada)) == 2
        await h.delete(ada)
        assert await h.devices(ada) == []
        assert len(await h.devices(grace)) == 1
        assert (await laptop.get("/me")).status_code == 401
        assert (await other.get("/me")).status_code == 200


@pytest.mark.case("G16")
async def test_sqlite_without_foreign_keys_keeps_rows_that_never_match(
    make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """Without enable_sqlite_foreign_keys, SQLite keeps a deleted user's device rows; they still never match."""
    h = await make_device_harness("sqlite", foreign_keys=False)
    ada = await h.create_user("ada")
    async with logged_in(h, client_factory, "ada") as (client,):
        await h.delete(ada)
        assert len(await h.devices(ada)) == 1  # why the app must turn foreign keys on
        assert (await client.get("/me")).status_code == 401


# -- G17: what the table holds -----------------------------------------------------------------------


@pytest.mark.case("G17")
async def test_table_holds_the_hash_of_the_secret_never_the_secret(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """No column of any row of either table holds the cookie's device secret; the row holds its SHA-256."""
    h = await make_device_harness(db_kind)
    await h.create_user("ada")
    async with logged_in(h, client_factory, "ada", "ada") as clients:
        proofs = {device_of(c): session_of(c)["_auth_dsec"] for c in clients}
    async with h.maker() as db:
        devices = (await db.execute(select(h.Device.__table__))).all()
        users = (await db.execute(select(h.User.__table__))).all()
    assert len(devices) == 2
    for secret in proofs.values():
        assert len(secret) == 43  # 256 bits, unpadded base64url
        for row in [*devices, *users]:
            for value in row:
                assert secret not in str(value)
    for row in devices:
        assert row.secret_hash == hashlib.sha256(proofs[row.id].encode()).hexdigest()


@pytest.mark.case("G17")
async def test_device_ids_are_random_128_bit_values(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """Device ids are 22 characters of base64url (16 random bytes), distinct over many logins, never counters."""
    h = await make_device_harness(db_kind, max_devices=None)
    await h.create_user("ada")
    ids = []
    for _ in range(40):  # forty browsers: one logging in again replaces its own device
        async with client_factory(h.app) as client:
            ids.append(await log_in(client))
    assert len(set(ids)) == 40
    assert {row.id for row in await h.devices()} == set(ids)
    for device_id in ids:
        assert DEVICE_ID.fullmatch(device_id), device_id
        assert len(unb64(device_id)) == 16
    assert len({device_id[:4] for device_id in ids}) > 30  # not a counter or a timestamp prefix


@pytest.mark.case("G17")
async def test_device_list_never_carries_the_secret_or_its_hash(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """list_devices (DeviceInfo, and its JSON) names each device without its secret or the secret's hash."""
    h = await make_device_harness(db_kind)
    pk = await h.create_user("ada")
    async with client_factory(h.app, headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0"}) as c:
        await log_in(c)
        secret = session_of(c)["_auth_dsec"]
        response = await c.get("/devices")
    ((row,),) = [await h.devices(pk)]
    (listed,) = response.json()
    assert set(listed) == {"id", "created_at", "last_seen_at", "expires_at", "user_agent", "ip_address", "current"}
    assert listed["user_agent"] == "Firefox on Linux"
    assert listed["ip_address"] is None  # no address unless the app asks for it
    assert secret not in response.text
    assert row.secret_hash not in response.text
    async with h.maker() as db:
        (info,) = await h.auth.list_devices(db, await h.find("ada"))
    assert info.current is False  # no request given: none is current
    assert secret not in repr(info) and row.secret_hash not in repr(info)


@pytest.mark.case("G17")
async def test_address_is_stored_only_when_asked(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """record_ip=True stores the client's address at login; the default stores none."""
    h = await make_device_harness(db_kind, record_ip=True)
    pk = await h.create_user("ada")
    async with logged_in(h, client_factory, "ada") as (client,):
        (listed,) = (await client.get("/devices")).json()
    assert listed["ip_address"] == "127.0.0.1"
    assert [row.ip_address for row in await h.devices(pk)] == ["127.0.0.1"]


@pytest.mark.case("G17")
async def test_a_leaked_table_forges_no_session(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """With the key, the whole table and the user's token but no device secret, a forged cookie gets 401."""
    h = await make_device_harness(db_kind)
    pk = await h.create_user("ada")
    async with logged_in(h, client_factory, "ada", "ada") as (_, phone):
        phone_id, phone_secret = device_of(phone), session_of(phone)["_auth_dsec"]
    rows = await h.devices(pk)
    user = {"_auth_uid": pk, "_auth_token": await h.token(pk), "_auth_at": START}

    async def status(device_id: str, secret: str) -> int:
        forged = seal(KEY_A, user | {"_auth_dev": device_id, "_auth_dsec": secret}, issued_at=START)
        async with client_factory(h.app, cookies={COOKIE: forged}) as attacker:
            return (await attacker.get("/me")).status_code

    assert await status(phone_id, phone_secret) == 200  # the forging itself works when the secret is known
    for row in rows:
        assert await status(row.id, row.secret_hash) == 401  # the stored hash is not the secret
    (laptop_row,) = [row for row in rows if row.id != phone_id]
    assert await status(laptop_row.id, phone_secret) == 401  # one device's secret opens no other device


# -- G18: a watched WebSocket --------------------------------------------------------------------------


async def open_watched_socket(h: DeviceHarness, client: httpx.AsyncClient) -> OpenSocket:
    """Open ``/ws`` with ``client``'s cookie; checks that it was accepted and greeted."""
    socket = OpenSocket(h.app, client.cookies[COOKIE])
    assert (await socket.next())["type"] == "websocket.accept"
    assert (await socket.next())["text"] == "ada"
    return socket


@pytest.mark.case("G18")
async def test_watched_websocket_stays_open_while_valid_and_through_an_outage(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """Each re-check (every 30 s) is one statement that keeps a valid socket open; a failed re-check keeps it too."""
    h = await make_device_harness(db_kind)
    await h.create_user("ada")
    async with logged_in(h, client_factory, "ada") as (client,):
        socket = await open_watched_socket(h, client)
        for _ in range(3):
            h.statements.clear()
            await h.ticker.tick()
            await h.ticker.settled()
            assert len(h.statements) == 1, h.statements
        async with unreachable(h.engine) as down:
            h.database = down
            await h.ticker.tick()
            await h.ticker.settled()  # the outage kept it open: the next re-check decides
            h.database = None
        await h.ticker.tick()
        await h.ticker.settled()
        assert await socket.hang_up() == []  # never closed by the server
    assert h.ticker.slept == [30] * 6


@pytest.mark.case("G18")
@pytest.mark.parametrize("how", ["revoke", "end_device", "logout_device"])
async def test_watched_websocket_is_closed_1008_once_revoked(
    how: str, db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """The first re-check after the user is revoked, or the socket's device ended or logged out, closes it with 1008."""
    h = await make_device_harness(db_kind)
    await h.create_user("ada")
    async with logged_in(h, client_factory, "ada", "ada") as (laptop, phone):
        socket = await open_watched_socket(h, phone)
        await h.ticker.tick()
        await h.ticker.settled()
        if how == "revoke":
            assert (await laptop.post("/revoke?keep=true")).status_code == 200
        elif how == "end_device":
            assert (await laptop.delete(f"/devices/{device_of(phone)}")).status_code == 200
        else:
            assert (await phone.post("/logout")).json() == {"ended": True}
        await h.ticker.tick()
        assert await socket.next() == {"type": "websocket.close", "code": 1008, "reason": "Session revoked"}
        assert await socket.hang_up() == []
        assert (await laptop.get("/me")).status_code == 200


# -- H14: database down ------------------------------------------------------------------------------


def assert_unavailable(response: httpx.Response) -> None:
    """503 with Retry-After and the generic body, and no Set-Cookie."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"detail": "Service temporarily unavailable"}
    assert "set-cookie" not in response.headers


@pytest.mark.case("H14")
async def test_check_during_an_outage_answers_503_with_the_cookie_untouched(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """With the database down the check answers 503 and leaves the cookie, which works once the database is back."""
    h = await make_device_harness(db_kind)
    await h.create_user("ada")
    async with logged_in(h, client_factory, "ada") as (client,):
        cookie = client.cookies[COOKIE]
        h.clock.advance(DAY)  # last_seen_at is due too: the cookie is still not touched
        async with unreachable(h.engine) as down:
            h.database = down
            for path in ["/me", "/devices"]:
                assert_unavailable(await client.get(path))
            h.database = None
        assert client.cookies[COOKIE] == cookie
        assert (await client.get("/me")).status_code == 200


@pytest.mark.case("H14")
async def test_login_logout_and_listing_during_an_outage_answer_503(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """login_device, logout_device and list_devices failing on the database answer 503 through the handler."""
    h = await make_device_harness(db_kind)
    pk = await h.create_user("ada")
    async with logged_in(h, client_factory, "ada") as (client,), client_factory(h.app) as newcomer:
        device, cookie = device_of(client), client.cookies[COOKIE]
        async with unreachable(h.engine) as down:
            h.database = down
            assert_unavailable(await newcomer.post("/login/ada"))
            assert_unavailable(await client.post("/logout"))  # the session is kept, so the user can try again
            ada = await h.find("ada")
            h.app.dependency_overrides[h.auth.current_user] = lambda: ada  # past the check, the listing fails
            assert_unavailable(await client.get("/devices"))
            h.app.dependency_overrides.clear()
            h.database = None
        assert COOKIE not in newcomer.cookies
        assert client.cookies[COOKIE] == cookie
        assert [row.id for row in await h.devices(pk)] == [device]
        assert (await client.post("/logout")).json() == {"ended": True}


# -- configuration ---------------------------------------------------------------------------------


async def get_db() -> AsyncSession:  # pragma: no cover - never called: construction fails first
    raise AssertionError("unreachable")


def device_models(variant: str) -> tuple[Any, Any]:
    """A user model and a device model with its owner column declared one way or another."""
    base, user = make_user_model("int", "config_users")

    class Other(base):  # type: ignore[valid-type,misc]  # base is a fresh declarative class
        __tablename__ = "config_others"
        id: Mapped[int] = mapped_column(primary_key=True)

    if variant == "no_cascade":
        return user, make_device_model(base, user, "config_devices", ondelete=None)
    if variant == "set_null":
        return user, make_device_model(base, user, "config_devices", ondelete="SET NULL")
    if variant == "other_table":

        class Elsewhere(DeviceSessionMixin, base):  # type: ignore[valid-type,misc]
            __tablename__ = "config_devices"
            user_id: Mapped[int] = mapped_column(ForeignKey("config_others.id", ondelete="CASCADE"), index=True)

        return user, Elsewhere
    if variant == "no_user_id":

        class Ownerless(DeviceSessionMixin, base):  # type: ignore[valid-type,misc]
            __tablename__ = "config_devices"

        return user, Ownerless
    return user, Other  # a mapped model without DeviceSessionMixin


@pytest.mark.case("G16")
@pytest.mark.parametrize(
    ("variant", "message"),
    [
        pytest.param("no_cascade", "ondelete='CASCADE'", id="no_cascade"),
        pytest.param("set_null", "ondelete='CASCADE'", id="set_null"),
        pytest.param("other_table", "must reference", id="other_table"),
        pytest.param("no_user_id", "has no user_id column", id="no_user_id"),
        pytest.param("no_mixin", "DeviceSessionMixin", id="no_mixin"),
    ],
)
def test_unusable_device_model_is_refused_at_construction(variant: str, message: str) -> None:
    """A device model without ON DELETE CASCADE, without user_id, or owned by another table is an UnsupportedModel."""
    user, device = device_models(variant)
    with pytest.raises(UnsupportedModel, match=re.escape(message)):
        SessionAuth(user, get_db, devices=device)


@pytest.mark.case("G16")
def test_device_model_as_documented_is_accepted() -> None:
    """The device model the docs declare (user_id referencing users.id, ON DELETE CASCADE) is accepted."""
    base, user = make_user_model("int", "config_users")
    auth = SessionAuth(user, get_db, devices=make_device_model(base, user, "config_devices"))
    assert auth.device_store is not None


@pytest.mark.case("G11")
def test_user_token_calls_in_device_mode_name_the_device_calls() -> None:
    """In device mode login() and logout() raise ConfigurationError naming login_device and logout_device."""
    base, user = make_user_model("int", "config_users")
    auth = SessionAuth(user, get_db, devices=make_device_model(base, user, "config_devices"))
    request = Request({"type": "http", "headers": []})
    with pytest.raises(ConfigurationError, match=re.escape("await auth.login_device(db, request, user)")):
        auth.login(request, user(name="ada"))
    with pytest.raises(ConfigurationError, match=re.escape("await auth.logout_device(db, request)")):
        auth.logout(request)


@pytest.mark.case("G11")
async def test_device_calls_in_user_token_mode_name_the_devices_option() -> None:
    """In user-token mode every device method raises ConfigurationError naming itself and the devices= option."""
    _, user = make_user_model("int", "config_users")
    auth = SessionAuth(user, get_db)
    request = Request({"type": "http", "headers": []})
    db, someone = AsyncSession(), user(name="ada")
    calls = {
        "login_device": auth.login_device(db, request, someone),
        "logout_device": auth.logout_device(db, request),
        "list_devices": auth.list_devices(db, someone, request),
        "end_device": auth.end_device(db, someone, "x"),
        "purge_devices": auth.purge_devices(db),
    }
    for name, call in calls.items():
        with pytest.raises(ConfigurationError) as raised:
            await call
        assert f"auth.{name}() needs device mode: SessionAuth(..., devices=YourDeviceModel)" in str(raised.value)


@pytest.mark.case("G15")
async def test_logging_in_again_replaces_this_browsers_device(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """A browser that logs in again (as the same user or another) ends its previous device row: no ghost devices."""
    h = await make_device_harness(db_kind, max_devices=None)
    ada = await h.create_user("ada")
    grace = await h.create_user("grace")
    async with client_factory(h.app) as client:
        first = await log_in(client, "ada")
        second = await log_in(client, "ada")
        assert [row.id for row in await h.devices(ada)] == [second]
        await log_in(client, "grace")
        assert await h.devices(ada) == []
        assert len(await h.devices(grace)) == 1
    assert first != second


@pytest.mark.case("G15")
async def test_device_idle_past_its_window_is_dead_unlisted_and_purged(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """A device unseen for device_idle_timeout plus seen_interval is refused, off the list and purged."""
    h = await make_device_harness(db_kind, device_idle_timeout=3600, seen_interval=900, max_devices=None)
    pk = await h.create_user("ada")
    async with logged_in(h, client_factory, "ada", "ada") as (idle, active):
        idle_device = device_of(idle)
        for _ in range(5):  # the active device keeps being seen; the idle one is not
            h.clock.advance(900)
            assert (await active.get("/me")).status_code == 200
        h.clock.advance(1)  # idle device: last seen 4501 s ago, past 3600 + 900
        listed = (await active.get("/devices")).json()
        assert [d["id"] for d in listed] == [device_of(active)]
        assert (await idle.get("/me")).status_code == 401  # its cookie is still valid: the row is what died
        async with h.maker() as db:
            assert await h.auth.purge_devices(db) == 1
        assert idle_device not in {row.id for row in await h.devices(pk)}


@pytest.mark.case("G13")
async def test_current_device_id_names_this_requests_device(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """auth.current_device_id(request) is the id of the device the request's session belongs to, None without one."""
    h = await make_device_harness(db_kind)
    await h.create_user("ada")
    seen: list[str | None] = []

    @h.app.get("/which")
    async def which(request: Request) -> None:
        seen.append(h.auth.current_device_id(request))

    async with logged_in(h, client_factory, "ada") as (client,), client_factory(h.app) as anonymous:
        await client.get("/which")
        await anonymous.get("/which")
        assert seen == [device_of(client), None]


def test_database_unavailable_names_the_operation() -> None:
    """DatabaseUnavailable says which operation failed (a purge is not a session check), and only class names."""
    error = DatabaseUnavailable("OperationalError", connectivity=True, operation="device purge")
    assert str(error) == "device purge failed: database unavailable (OperationalError)"
    assert str(DatabaseUnavailable("X", connectivity=False)).startswith("session check failed: database error")


@pytest.mark.case("G18")
async def test_watched_websocket_is_closed_1011_when_its_recheck_breaks(
    make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """A re-check failing for another reason than an outage closes the socket with 1011: never left unwatched."""
    h = await make_device_harness("sqlite")
    await h.create_user("ada")
    async with logged_in(h, client_factory, "ada") as (client,):
        socket = await open_watched_socket(h, client)

        h.database = lambda: object()  # type: ignore[assignment]  # not an async context manager
        await h.ticker.tick()
        assert await socket.next() == {"type": "websocket.close", "code": 1011, "reason": "Session check failed"}
        await socket.hang_up()


async def test_watching_needs_a_positive_interval() -> None:
    """auth.watching(every=0) is a ConfigurationError, not a busy loop against the database."""
    _, user = make_user_model("int", "watch_users")
    auth: SessionAuth[Any] = SessionAuth(user, get_db)
    with pytest.raises(ConfigurationError, match="every"):
        async with auth.watching(None, None, every=0):  # type: ignore[arg-type]
            pass


def test_device_options_without_device_mode_are_refused() -> None:
    """device_idle_timeout, max_devices or record_ip without devices= is a ConfigurationError, never ignored."""
    _, user = make_user_model("int", "opt_users")
    for option in ({"device_idle_timeout": 900}, {"max_devices": 3}, {"record_ip": True}):
        with pytest.raises(ConfigurationError, match="only apply in device mode"):
            SessionAuth(user, get_db, **option)


def test_a_composite_key_user_with_devices_is_an_unsupported_model() -> None:
    """A user model with two primary-key columns and devices= is an UnsupportedModel, not a ValueError from inside."""
    base, _ = make_user_model("int", "pk2_users")

    class TwoKeys(SessionTokenMixin, base):  # type: ignore[valid-type,misc]
        __tablename__ = "pk2_two_keys"
        a: Mapped[int] = mapped_column(primary_key=True)
        b: Mapped[int] = mapped_column(primary_key=True)

    device = make_device_model(base, TwoKeys, "pk2_devices")  # references pk2_two_keys.id, which does not exist
    with pytest.raises(UnsupportedModel):
        SessionAuth(TwoKeys, get_db, devices=device)
