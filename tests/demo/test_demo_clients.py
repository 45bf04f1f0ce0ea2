"""The demo's API: clients without cookies (bearer tokens), key usage, fresh login and a per-route condition."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import update

from examples.demo.auth import FRESH_LOGIN
from examples.demo.models import User
from examples.demo.settings import Settings
from tests.demo.flows import PASSWORD, api_sign_up, csrf_from, html_sign_up, profile_form, running
from tests.helpers import ClientFactory, FakeClock

JSON = {"content-type": "application/json"}


@pytest.mark.case("W1")
async def test_a_cli_logs_in_for_a_bearer_token_uses_it_and_ends_it(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """POST /api/token gives a bearer token; it authenticates without a cookie, and /api/token/revoke ends it."""
    async with running(demo_settings) as app, client_factory(app) as browser, client_factory(app) as cli:
        await api_sign_up(browser, "cli@example.com")
        response = await cli.post("/api/token", json={"email": "cli@example.com", "password": PASSWORD})
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
        body = response.json()
        assert body["token_type"] == "bearer" and body["expires_in"] > 0
        auth = {"Authorization": f"Bearer {body['token']}"}
        me = await cli.get("/api/me", headers=auth)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "cli@example.com"
        assert me.json()["logged_in_at"] is not None  # the token's login time, not the (absent) cookie's
        confirm = await cli.post("/api/confirm", headers=auth, json={"password": PASSWORD})
        assert confirm.status_code == 400  # a bearer client logs in again instead
        devices = (await cli.get("/api/devices", headers=auth)).json()
        assert len(devices) == 2  # the browser's login and the CLI's token
        assert (await cli.post("/api/token/revoke", headers={**auth, **JSON}, json={})).status_code == 204
        refused = await cli.get("/api/me", headers=auth)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert (await browser.get("/api/me")).status_code == 200  # the browser's session lives on


async def test_key_usage_endpoint_counts_cookies_per_key(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """GET /api/keys shows the cookies each key of the ring opened, and no secret."""
    async with running(demo_settings) as app, client_factory(app) as browser:
        await api_sign_up(browser, "keys@example.com")
        await browser.get("/api/me")
        usage = (await browser.get("/api/keys")).json()
        assert usage["opened"][usage["current"]] >= 1
        assert set(usage) >= {"cookie", "current", "opened", "since"}


@pytest.mark.case("Q1")
async def test_password_change_and_account_deletion_need_a_recent_login(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """After 10 minutes the API asks to re-authenticate (a 401 of its own); /api/confirm makes the login fresh again."""
    clock = FakeClock(time.time())
    async with running(demo_settings, clock=clock) as app, client_factory(app) as client:
        await api_sign_up(client, "fresh@example.com")
        clock.advance(FRESH_LOGIN + 1)
        change = {"current_password": PASSWORD, "new_password": "another good password"}
        stale = await client.post("/api/password", json=change)
        assert stale.status_code == 401
        assert 'error="insufficient_user_authentication"' in stale.headers["www-authenticate"]
        assert (await client.get("/api/me")).status_code == 200  # still logged in
        assert (await client.delete("/api/account", headers=JSON)).status_code == 401
        assert (await client.post("/api/confirm", json={"password": "wrong password!"})).status_code == 400
        assert (await client.post("/api/confirm", json={"password": PASSWORD})).status_code == 204
        assert (await client.post("/api/password", json=change)).status_code == 204
        deleted = await client.delete("/api/account", headers=JSON)
        assert deleted.status_code == 204
        assert (await client.get("/api/me")).status_code == 401
        login = {"email": "fresh@example.com", "password": "another good password"}
        assert (await client.post("/api/login", json=login)).status_code == 401  # the account is gone


@pytest.mark.case("Q4")
async def test_a_route_for_verified_addresses_answers_403_until_verified(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """/api/verified-only is a per-route condition: 403 (session kept) until the address is verified."""
    async with running(demo_settings) as app, client_factory(app) as client:
        user_id = await api_sign_up(client, "unverified@example.com")
        refused = await client.get("/api/verified-only")
        assert (refused.status_code, refused.json()) == (403, {"detail": "Forbidden"})
        assert (await client.get("/api/me")).status_code == 200
        maker = app.state.sessionmaker
        async with maker() as db:
            await db.execute(update(User).where(User.id == user_id).values(email_verified=True))
            await db.commit()
        assert (await client.get("/api/verified-only")).status_code == 200


@pytest.mark.case("Q1")
async def test_the_profile_asks_a_stale_login_to_confirm_before_deleting_the_account(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """After 10 minutes the profile offers a password re-check instead of the delete form; confirmed, deletion works."""
    clock = FakeClock(time.time())
    async with running(demo_settings, clock=clock) as app, client_factory(app) as client:
        await html_sign_up(client, "html-fresh@example.com")
        assert 'id="delete-account"' in (await client.get("/profile")).text
        clock.advance(FRESH_LOGIN + 1)
        page = (await client.get("/profile")).text
        assert 'id="confirm"' in page and 'id="delete-account"' not in page
        assert (await profile_form(client, "/account/delete")).status_code == 401
        assert (await profile_form(client, "/confirm", password=PASSWORD)).headers["location"] == "/profile"
        assert "Password confirmed" in (await client.get("/profile")).text
        deleted = await profile_form(client, "/account/delete")
        assert (deleted.status_code, deleted.headers["location"]) == (303, "/login")
        assert "Your account is deleted" in (await client.get("/login")).text
        assert (await client.get("/profile")).headers["location"] == "/login"


@pytest.mark.case("N7")
async def test_a_stolen_bearer_token_cannot_drive_the_html_pages(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """The HTML pages authenticate by the cookie only: a victim's bearer token next to an attacker's fresh
    cookie deletes the attacker's own account at most, never the victim's."""
    async with running(demo_settings) as app, client_factory(app) as victim, client_factory(app) as attacker:
        await api_sign_up(victim, "victim@example.com")
        token = (await victim.post("/api/token", json={"email": "victim@example.com", "password": PASSWORD})).json()
        await html_sign_up(attacker, "attacker@example.com")
        csrf = await csrf_from(attacker, "/profile")
        bearer = {"Authorization": f"Bearer {token['token']}"}
        response = await attacker.post("/account/delete", data={"csrf_token": csrf}, headers=bearer)
        assert response.status_code == 303
        login = {"email": "victim@example.com", "password": PASSWORD}
        assert (await victim.post("/api/login", json=login)).status_code == 200  # the victim's account lives
        login = {"email": "attacker@example.com", "password": PASSWORD}
        assert (await victim.post("/api/login", json=login)).status_code == 401  # the attacker's own is gone


@pytest.mark.case("N8")
async def test_link_tokens_are_redacted_from_the_access_log(demo_settings: Settings) -> None:
    """Once the demo is built, uvicorn's access records show /reset?token=[redacted], never the token."""
    async with running(demo_settings):
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "GET", "/reset?token=SECRET.TOKEN-value&x=1", "1.1", 200),
            None,
        )
        for log_filter in logging.getLogger("uvicorn.access").filters:
            assert not isinstance(log_filter, logging.Filter) or log_filter.filter(record)
    message = record.getMessage()
    assert "SECRET" not in message
    assert "/reset?token=[redacted]&x=1" in message
