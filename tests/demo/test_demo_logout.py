"""The demo's logout ends this device on the server: no copy of the cookie, and no request still
running, survives it, and the user's other devices stay logged in.

A cookie-only logout is undone by any request of the same browser that started before it and
finishes after it, when that request's response sets the cookie again (idle renewal, here): the
browser keeps the last cookie it was sent. The demo's logout deletes the device row, so that
cookie is refused. The race is rebuilt deterministically: a hand-moved clock makes renewal due,
and a test-only route waits on an ``asyncio.Event`` until the logout has answered.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from examples.demo import Settings
from examples.demo.app import SESSION_IDLE_TIMEOUT
from examples.demo.auth import CurrentUser
from tests.helpers import ClientFactory, FakeClock

from .flows import (
    COOKIE,
    api_devices,
    api_sign_up,
    csrf_from,
    current_device,
    form_login,
    html_sign_up,
    is_deletion,
    profile_form,
    running,
    set_cookies,
    sets_session,
)


async def log_out(client: httpx.AsyncClient, how: str) -> httpx.Response:
    """Log out through the HTML form or the JSON API; the response must delete the cookie."""
    if how == "html":
        response = await profile_form(client, "/logout")
        assert (response.status_code, response.headers["location"]) == (303, "/login")
    else:
        response = await client.post("/api/logout", json={})
        assert response.status_code == 204
    assert any(is_deletion(h) for h in set_cookies(response))
    return response


@pytest.mark.case("G10", "G12")
@pytest.mark.parametrize("how", ["html", "api"])
async def test_a_slow_request_finishing_after_logout_does_not_resurrect_the_session(
    demo_app: FastAPI, demo_client: httpx.AsyncClient, clock: FakeClock, how: str
) -> None:
    """A slow authenticated request started before logout re-sets the cookie after it; that cookie gets 401."""
    entered, release = asyncio.Event(), asyncio.Event()

    @demo_app.get("/test/slow")
    async def slow(user: CurrentUser) -> dict[str, int]:
        """Test only: an authenticated read that waits until the test lets it answer."""
        entered.set()
        await release.wait()
        return {"id": user.id}

    browser = demo_client
    await html_sign_up(browser, "race@example.com")
    clock.advance(SESSION_IDLE_TIMEOUT // 4 + 1)  # idle renewal is now due for a request that reads
    in_flight = asyncio.create_task(browser.get("/test/slow"))
    await entered.wait()  # it has passed its revocation check

    await log_out(browser, how)
    assert browser.cookies.get(COOKIE) is None

    release.set()
    late = await in_flight
    assert late.status_code == 200
    assert sets_session(late)  # the late response sends the old session back...
    assert browser.cookies.get(COOKIE) is not None  # ...and the browser keeps it: the last one wins

    refused = await browser.get("/api/me")
    assert refused.status_code == 401  # but its device row was deleted at logout
    assert any(is_deletion(h) for h in set_cookies(refused))
    assert (await browser.get("/profile")).headers["location"] == "/login"


@pytest.mark.case("G2", "G11")
@pytest.mark.parametrize("how", ["html", "api"])
async def test_logout_refuses_a_copy_of_the_cookie_and_keeps_the_other_device(
    demo_settings: Settings, client_factory: ClientFactory, how: str
) -> None:
    """After logout, a copy of the cookie taken before it gets 401; the user's other device stays logged in."""
    async with (
        running(demo_settings) as app,
        client_factory(app) as browser,
        client_factory(app) as thief,
        client_factory(app) as phone,
    ):
        await html_sign_up(browser, "eve@example.com")
        await form_login(phone, "eve@example.com")
        thief.cookies.set(COOKIE, browser.cookies[COOKIE])
        assert (await thief.get("/api/me")).status_code == 200

        ended = await current_device(browser)

        await log_out(browser, how)
        refused = await thief.get("/api/me")
        assert refused.status_code == 401
        assert any(is_deletion(h) for h in set_cookies(refused))
        assert (await phone.get("/api/me")).status_code == 200  # logout ends this device only
        assert [d["id"] for d in await api_devices(phone)] == [await current_device(phone)]
        assert ended != await current_device(phone)
        assert (await form_login(browser, "eve@example.com")).headers["location"] == "/profile"  # logging in again
        assert len(await api_devices(phone)) == 2


async def test_logout_without_a_user_revokes_nothing(demo_settings: Settings, client_factory: ClientFactory) -> None:
    """Logging out with no logged-in user answers as usual (204, or 303 to login) and ends no device."""
    async with running(demo_settings) as app, client_factory(app) as client, client_factory(app) as other:
        await api_sign_up(other, "bystander@example.com")
        assert (await client.post("/api/logout", json={})).status_code == 204
        token = await csrf_from(client, "/login")
        response = await client.post("/logout", data={"csrf_token": token})
        assert (response.status_code, response.headers["location"]) == (303, "/login")
        assert (await other.get("/api/me")).status_code == 200
        assert len(await api_devices(other)) == 1
