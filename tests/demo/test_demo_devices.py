"""The demo's devices: each login is a device the user can list and log out, as JSON and on a page.

Two browsers of one user (a laptop and, a minute later, a phone) on the in-process demo with a
hand-moved clock. Also here: the hourly purge of expired device rows, and the 503 that device
login, listing and logout answer when the database fails.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from html import escape

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from examples.demo import Settings
from examples.demo.app import SESSION_CONTEXT, SESSION_MAX_AGE
from examples.demo.models import Device, User
from examples.demo.purge import PURGE_INTERVAL, purge_expired_devices, purging
from sealed_sessions.fastapi import DatabaseUnavailable
from sealed_sessions.testing import unseal
from tests.helpers import START, FakeClock, https_client

from .flows import (
    COOKIE,
    PASSWORD,
    USER,
    api_devices,
    api_login,
    api_sign_up,
    csrf_from,
    current_device,
    is_deletion,
    running,
    set_cookies,
)

LAPTOP_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1"
)
HOSTILE_UA = "<img src=x onerror=\"alert('owned')\">&amp;"
"""No browser or system the summary knows, so the page shows it (sanitised, not escaped) as the device."""
JSON = {"content-type": "application/json"}
"""What every API DELETE must say, like every POST."""
DEVICE_FIELDS = {"id", "current", "user_agent", "created_at", "last_seen_at", "expires_at"}
UNAVAILABLE = {"detail": "Service temporarily unavailable"}


@pytest.fixture
async def laptop(demo_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Firefox on Linux: registers :data:`USER` and logs in at START."""
    async with https_client(demo_app, headers={"user-agent": LAPTOP_UA}) as client:
        await api_sign_up(client, USER)
        yield client


@pytest.fixture
async def phone(demo_app: FastAPI, laptop: httpx.AsyncClient, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """Chrome on iOS: logs in as :data:`USER` a minute after the laptop."""
    clock.advance(60)
    async with https_client(demo_app, headers={"user-agent": PHONE_UA}) as client:
        await api_login(client, USER)
        yield client


async def device_rows(app: FastAPI) -> list[Device]:
    """Every row of the device table, read directly."""
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    async with maker() as db:
        return list((await db.scalars(select(Device).order_by(Device.created_at))).all())


def utc_seconds(value: str) -> float:
    """Seconds since the epoch of an ISO 8601 string, which must say UTC."""
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() == timedelta(0), value
    return moment.timestamp()


# -- JSON -------------------------------------------------------------------------------------------


async def test_api_lists_both_devices_newest_first_without_secrets(
    demo_app: FastAPI, demo_settings: Settings, laptop: httpx.AsyncClient, phone: httpx.AsyncClient
) -> None:
    """GET /api/devices lists both devices newest first, flags the caller's, in UTC ISO 8601, and holds no secret."""
    response = await phone.get("/api/devices")
    assert response.status_code == 200
    listed = response.json()
    assert [d["user_agent"] for d in listed] == ["Chrome on iOS", "Firefox on Linux"]
    assert [d["current"] for d in listed] == [True, False]
    from_laptop = await api_devices(laptop)
    assert [d["current"] for d in from_laptop] == [False, True]
    assert [d["id"] for d in from_laptop] == [d["id"] for d in listed]
    for device, logged_in in zip(listed, (START + 60, START), strict=True):
        assert set(device) == DEVICE_FIELDS
        assert utc_seconds(device["created_at"]) == logged_in
        assert utc_seconds(device["last_seen_at"]) == logged_in
        assert utc_seconds(device["expires_at"]) == logged_in + SESSION_MAX_AGE

    ids = {d["id"] for d in listed}
    secrets = []
    keys = list(demo_settings.keys)
    for client in (laptop, phone):  # what each cookie holds: the revocation token, the device secret, ...
        opened = unseal(keys, client.cookies[COOKIE], session_cookie=COOKIE, context=SESSION_CONTEXT)
        secrets += [v for v in opened.data.values() if isinstance(v, str) and v not in ids]
    maker: async_sessionmaker[AsyncSession] = demo_app.state.sessionmaker
    async with maker() as db:
        secrets += [(await db.scalars(select(User.session_token))).one()]
    secrets += [row.secret_hash for row in await device_rows(demo_app)]  # ...and what the table stores
    assert len(secrets) >= 5
    for secret in secrets:
        assert secret not in response.text
    assert "secret" not in response.text
    assert "hash" not in response.text


@pytest.mark.case("G13")
async def test_api_ending_another_users_device_is_404_and_it_keeps_working(
    demo_app: FastAPI, laptop: httpx.AsyncClient, phone: httpx.AsyncClient
) -> None:
    """DELETE of another user's real device id, an unknown id or an absurd one is 404 and ends nothing."""
    async with https_client(demo_app) as stranger:
        await api_sign_up(stranger, "stranger@example.com")
        theirs = await current_device(stranger)
        for device_id in (theirs, "unknown", "x" * 200):
            response = await laptop.delete(f"/api/devices/{device_id}", headers=JSON)
            assert response.status_code == 404, device_id
            assert response.json() == {"detail": "No such device"}
        assert (await stranger.get("/api/me")).status_code == 200
        assert [d["id"] for d in await api_devices(stranger)] == [theirs]
    assert (await phone.get("/api/me")).status_code == 200
    assert len(await api_devices(laptop)) == 2


@pytest.mark.case("G13")
@pytest.mark.parametrize("next_request", ["api", "html"])
async def test_api_ending_own_other_device_refuses_it_at_its_next_request(
    laptop: httpx.AsyncClient, phone: httpx.AsyncClient, next_request: str
) -> None:
    """DELETE of the user's other device is 204; that device's next request is a 401 (a page: the login page)."""
    phone_id = await current_device(phone)
    response = await laptop.delete(f"/api/devices/{phone_id}", headers=JSON)
    assert response.status_code == 204
    if next_request == "api":
        refused = await phone.get("/api/me")
        assert refused.status_code == 401
    else:
        refused = await phone.get("/profile")
        assert (refused.status_code, refused.headers["location"]) == (303, "/login")
        assert 'id="login"' in (await phone.get("/login")).text
    assert any(is_deletion(h) for h in set_cookies(refused))
    assert [d["id"] for d in await api_devices(laptop)] == [await current_device(laptop)]
    assert (await laptop.delete(f"/api/devices/{phone_id}", headers=JSON)).status_code == 404  # gone already


# -- the HTML page --------------------------------------------------------------------------------


async def test_html_devices_page_lists_devices_and_escapes_the_user_agent(
    demo_app: FastAPI, laptop: httpx.AsyncClient, clock: FakeClock
) -> None:
    """The devices page, linked from the profile, lists each device with its times in UTC and escapes its name."""
    clock.advance(60)
    async with https_client(demo_app, headers={"user-agent": HOSTILE_UA}) as intruder:
        await api_login(intruder, USER)
    assert 'href="/devices"' in (await laptop.get("/profile")).text

    page = await laptop.get("/devices")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    rows = re.findall(r'<tr class="device( current)?" id="device-([\w-]+)">(.*?)</tr>', page.text)
    assert [(current, device_id) for current, device_id, _ in rows] == [
        ("", d["id"]) if not d["current"] else (" current", d["id"]) for d in await api_devices(laptop)
    ]
    (intruder_row, laptop_row) = (row for _, _, row in rows)
    assert escape(HOSTILE_UA) in intruder_row
    assert HOSTILE_UA not in page.text
    assert "<img" not in page.text
    assert 'name="device_id"' in intruder_row and "This device" not in intruder_row
    assert "Firefox on Linux" in laptop_row and "This device" in laptop_row and "<form" not in laptop_row
    at = "{:%Y-%m-%d %H:%M:%S} UTC".format
    assert re.findall(r"<td>([^<]* UTC)</td>", intruder_row) == [at(datetime.fromtimestamp(START + 60, UTC))] * 2
    assert re.findall(r"<td>([^<]* UTC)</td>", laptop_row) == [at(datetime.fromtimestamp(START, UTC))] * 2


@pytest.mark.case("G13")
async def test_html_logging_out_another_device_needs_the_csrf_token(
    laptop: httpx.AsyncClient, phone: httpx.AsyncClient
) -> None:
    """The per-device form logs that device out with the session's CSRF token, and is refused (403) without it."""
    phone_id, laptop_id = await current_device(phone), await current_device(laptop)
    page = (await laptop.get("/devices")).text
    assert f'id="end-{phone_id}"' in page
    assert f'id="end-{laptop_id}"' not in page  # this device logs out with the profile's "Log out"
    for forged in ({}, {"csrf_token": "forged"}, {"csrf_token": await csrf_from(phone, "/profile")}):
        refused = await laptop.post("/devices/logout", data={**forged, "device_id": phone_id})
        assert refused.status_code == 403
        assert (await phone.get("/api/me")).status_code == 200

    token = await csrf_from(laptop, "/devices")
    response = await laptop.post("/devices/logout", data={"csrf_token": token, "device_id": phone_id})
    assert (response.status_code, response.headers["location"]) == (303, "/devices")
    done = (await laptop.get(response.headers["location"])).text
    assert "That device is logged out." in done
    assert f'id="device-{phone_id}"' not in done
    assert (await phone.get("/profile")).headers["location"] == "/login"

    again = await laptop.post("/devices/logout", data={"csrf_token": token, "device_id": phone_id})
    assert again.status_code == 404
    assert "not logged in (any more)" in again.text
    assert (await laptop.get("/profile")).status_code == 200


# -- purging expired devices ------------------------------------------------------------------------


@pytest.mark.case("G15")
async def test_purge_deletes_expired_device_rows_only(demo_app: FastAPI, clock: FakeClock) -> None:
    """An expired device is no longer listed, and the purge step deletes its row and keeps the live one."""
    auth, maker = demo_app.state.auth, demo_app.state.sessionmaker
    async with https_client(demo_app) as old:
        await api_sign_up(old, USER)
    assert await purge_expired_devices(auth, maker) == 0
    clock.advance(SESSION_MAX_AGE - 1)
    assert await purge_expired_devices(auth, maker) == 0
    clock.advance(1)
    async with https_client(demo_app) as new:
        await api_login(new, USER)
        assert [d["current"] for d in await api_devices(new)] == [True]  # the expired row never matches
        assert len(await device_rows(demo_app)) == 2
        assert await purge_expired_devices(auth, maker) == 1
        assert [row.created_at for row in await device_rows(demo_app)] == [START + SESSION_MAX_AGE]
        assert (await new.get("/api/me")).status_code == 200


async def test_purge_runs_every_interval_and_survives_failures(caplog: pytest.LogCaptureFixture) -> None:
    """The background loop sleeps an interval before each purge, and a failed purge does not stop the next."""
    outcomes: list[int | Exception] = [1, DatabaseUnavailable("OperationalError", connectivity=True), ValueError(), 0]
    purged: list[int] = []
    slept: list[float] = []
    parked = asyncio.Event()

    async def purge() -> int:
        outcome = outcomes[len(purged)]
        purged.append(len(purged))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) > len(outcomes):
            parked.set()
            await asyncio.Event().wait()  # asleep until cancelled

    with caplog.at_level(logging.ERROR, logger="examples.demo"):
        async with purging(purge, every=PURGE_INTERVAL, sleep=sleep) as task:
            await asyncio.wait_for(parked.wait(), 10)
            assert not task.done()
    assert task.cancelled()
    assert slept == [PURGE_INTERVAL] * (len(outcomes) + 1)
    assert len(purged) == len(outcomes)
    assert [r.getMessage() for r in caplog.records] == ["purging expired device sessions failed"]


@pytest.mark.case("G15")
async def test_the_app_purges_in_the_background_until_shutdown(demo_settings: Settings, clock: FakeClock) -> None:
    """The lifespan starts the purge task on the app's device table and cancels it at shutdown."""
    async with running(demo_settings, clock, purge_every=0.01) as app, https_client(app) as client:
        await api_sign_up(client, USER)
        task = app.state.purge_task
        clock.advance(SESSION_MAX_AGE)
        async with asyncio.timeout(10):
            while await device_rows(app):
                await asyncio.sleep(0.01)
        assert not task.done()
    assert task.cancelled()


# -- the database fails -----------------------------------------------------------------------------


@asynccontextmanager
async def outage(app: FastAPI, kind: str) -> AsyncIterator[None]:
    """The whole database unreachable, or only the device table missing (a failed migration)."""
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    if kind == "unreachable":
        down = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none", connect_args={"timeout": 2})
        app.state.sessionmaker = async_sessionmaker(down)
        try:
            yield
        finally:
            app.state.sessionmaker = maker
            await down.dispose()
        return

    async def rename(old: str, new: str) -> None:
        async with maker() as db:
            await db.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
            await db.commit()

    await rename("demo_devices", "demo_devices_away")
    try:
        yield
    finally:
        await rename("demo_devices_away", "demo_devices")


@pytest.mark.case("H14")
@pytest.mark.parametrize("kind", ["unreachable", "device-table-missing"])
async def test_device_login_listing_and_logout_answer_503_when_the_database_fails(
    demo_app: FastAPI, laptop: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """Device login, listing and logout answer 503 with Retry-After (never 500), and no cookie changes."""
    async with https_client(demo_app) as newcomer:
        login_token = await csrf_from(newcomer, "/login")
        logout_token = await csrf_from(laptop, "/profile")
        before = (newcomer.cookies[COOKIE], laptop.cookies[COOKIE])
        credentials = {"email": USER, "password": PASSWORD}
        with caplog.at_level(logging.WARNING):
            async with outage(demo_app, kind):
                responses = {
                    "api login": await newcomer.post("/api/login", json=credentials),
                    "form login": await newcomer.post("/login", data={**credentials, "csrf_token": login_token}),
                    "api list": await laptop.get("/api/devices"),
                    "page list": await laptop.get("/devices"),
                    "api logout": await laptop.post("/api/logout", json={}),
                    "form logout": await laptop.post("/logout", data={"csrf_token": logout_token}),
                }
        for name, response in responses.items():
            assert response.status_code == 503, (name, response.text)
            assert response.headers["retry-after"] == "5", name
            assert response.json() == UNAVAILABLE, name
            assert not set_cookies(response), name
        assert (newcomer.cookies[COOKIE], laptop.cookies[COOKIE]) == before
        assert USER not in caplog.text
        assert (await laptop.get("/api/me")).status_code == 200  # nobody was logged out by the outage
        assert len(await api_devices(laptop)) == 1  # and no device was added or ended
