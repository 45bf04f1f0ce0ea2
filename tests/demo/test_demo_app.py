"""The demo application driven in-process: HTML forms with CSRF, the JSON API, two devices, revocation."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from examples.demo import Settings, create_app
from examples.demo.app import SESSION_CONTEXT
from examples.demo.models import Device, User
from examples.demo.passwords import PasswordHasher
from examples.demo.settings import KEYS_ENV
from sealed_sessions import _cli as cli
from tests.helpers import ClientFactory

from .flows import (
    COOKIE,
    NEW_PASSWORD,
    PASSWORD,
    USER,
    api_devices,
    api_sign_up,
    csrf_from,
    current_device,
    form_login,
    form_register,
    html_sign_up,
    is_deletion,
    profile_form,
    running,
    set_cookies,
)

# -- HTML ---------------------------------------------------------------------------------------


@pytest.mark.case("G1")
async def test_html_journey_register_profile_logout_login(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """Register, log in, see the profile with login time and expiry, log out, be sent to login, log in again."""
    async with running(demo_settings) as app, client_factory(app) as browser:
        response = await browser.get("/register")
        anonymous_cookie = browser.cookies.get(COOKIE)
        assert anonymous_cookie is not None  # the CSRF token lives in the session

        response = await form_register(browser, "ada@example.com")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?done=registered"
        page = await browser.get(response.headers["location"])
        assert "Thank you. Log in" in page.text
        assert (await browser.get("/profile")).headers["location"] == "/login"  # registering is not logging in

        response = await form_login(browser, "ada@example.com")
        assert response.status_code == 303
        assert response.headers["location"] == "/profile"
        assert browser.cookies.get(COOKIE) != anonymous_cookie  # login starts a new session

        response = await browser.get("/profile")
        assert response.status_code == 200
        assert 'id="email">ada@example.com<' in response.text
        assert re.search(r'id="login-time">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<', response.text)
        assert re.search(r'id="expires-at">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<', response.text)
        assert "test-instance" in response.text
        assert response.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]

        response = await profile_form(browser, "/logout")
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        assert any(is_deletion(h) for h in set_cookies(response))

        response = await browser.get("/profile")
        assert response.status_code == 303
        assert response.headers["location"] == "/login"

        response = await form_login(browser, "ADA@example.com ")
        assert response.status_code == 303
        assert (await browser.get("/profile")).status_code == 200


async def test_html_root_redirects_by_login_state(demo_settings: Settings, client_factory: ClientFactory) -> None:
    """`/` sends a visitor to the login page and a logged-in user to the profile; login pages skip ahead."""
    async with running(demo_settings) as app, client_factory(app) as browser:
        assert (await browser.get("/")).headers["location"] == "/login"
        await html_sign_up(browser, "root@example.com")
        assert (await browser.get("/")).headers["location"] == "/profile"
        assert (await browser.get("/login")).headers["location"] == "/profile"
        assert (await browser.get("/register")).headers["location"] == "/profile"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("forged-token", id="wrong"),
        pytest.param("OTHER", id="other-session"),
    ],
)
async def test_csrf_form_without_the_session_token_is_rejected(
    demo_settings: Settings, client_factory: ClientFactory, token: str | None
) -> None:
    """A form POST without this session's CSRF token gets 403 and changes nothing (logout, revoke, register)."""
    async with running(demo_settings) as app, client_factory(app) as victim, client_factory(app) as attacker:
        await html_sign_up(victim, "victim@example.com")
        if token == "OTHER":  # a valid token, but from the attacker's own session
            token = await csrf_from(attacker, "/login")
        data = {} if token is None else {"csrf_token": token}

        for action in ("/logout", "/logout-others"):
            response = await victim.post(action, data=data)
            assert response.status_code == 403
            assert "expired or was sent from another site" in response.text
            assert not set_cookies(response)
        password_change = {**data, "current_password": PASSWORD, "new_password": "x" * 12}
        assert (await victim.post("/password", data=password_change)).status_code == 403
        assert (await victim.get("/profile")).status_code == 200  # still logged in, same token

        async with client_factory(app) as stranger:
            await csrf_from(stranger, "/register")  # a session with a token of its own
            response = await stranger.post("/register", data={**data, "email": "new@example.com", "password": PASSWORD})
            assert response.status_code == 403
            assert (await form_login(stranger, "new@example.com")).status_code == 400  # never created


@pytest.mark.case("T5")
async def test_a_cross_site_form_post_with_a_valid_token_is_refused(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """A post the browser marks cross-site is refused even with this session's token; from the page it passes."""
    async with running(demo_settings) as app, client_factory(app) as victim:
        await html_sign_up(victim, "cross@example.com")
        token = await csrf_from(victim, "/profile")
        cross_site = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
        response = await victim.post("/logout-others", data={"csrf_token": token}, headers=cross_site)
        assert response.status_code == 403
        assert "expired or was sent from another site" in response.text
        same_origin = {"Sec-Fetch-Site": "same-origin"}
        response = await victim.post("/logout-others", data={"csrf_token": token}, headers=same_origin)
        assert response.status_code == 303


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        pytest.param("not-an-email", PASSWORD, "valid e-mail", id="bad-email"),
        pytest.param("short@example.com", "short", "at least 8", id="short-password"),
    ],
)
async def test_html_register_errors_rerender_the_form(
    demo_settings: Settings, client_factory: ClientFactory, email: str, password: str, message: str
) -> None:
    """Registrations a person can fix answer 400 with the form and a message, and log nobody in."""
    async with running(demo_settings) as app, client_factory(app) as browser:
        response = await form_register(browser, email, password)
        assert response.status_code == 400
        assert message in response.text
        assert 'id="register"' in response.text
        assert (await browser.get("/profile")).status_code == 303


async def test_html_wrong_password_is_400_and_unknown_user_looks_the_same(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """A wrong password and an unknown e-mail give the same 400 page and no session."""
    async with running(demo_settings) as app, client_factory(app) as browser:
        await html_sign_up(browser, "bob@example.com")
        await profile_form(browser, "/logout")
        wrong = await form_login(browser, "bob@example.com", "wrong password!")
        unknown = await form_login(browser, "nobody@example.com", "wrong password!")
        for response in (wrong, unknown):
            assert response.status_code == 400
            assert "Wrong e-mail or password." in response.text
        assert (await browser.get("/profile")).status_code == 303


async def test_html_escapes_what_users_typed(demo_settings: Settings, client_factory: ClientFactory) -> None:
    """An e-mail address holding markup is shown escaped on the profile page, never as HTML."""
    async with running(demo_settings) as app, client_factory(app) as browser:
        await html_sign_up(browser, "<b>x</b>@example.com")
        page = (await browser.get("/profile")).text
        assert "&lt;b&gt;x&lt;/b&gt;@example.com" in page
        assert "<b>x</b>" not in page


@pytest.mark.case("G3", "G5")
async def test_html_logout_others_keeps_this_device_and_ends_the_other(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """ "Log out all other devices" on the laptop keeps the laptop and sends the phone to the login page."""
    async with running(demo_settings) as app, client_factory(app) as laptop, client_factory(app) as phone:
        await html_sign_up(laptop, "cy@example.com")
        await form_login(phone, "cy@example.com")
        assert (await phone.get("/profile")).status_code == 200

        response = await profile_form(laptop, "/logout-others")
        assert response.status_code == 303
        assert response.headers["location"] == "/profile"
        page = await laptop.get(response.headers["location"])
        assert page.status_code == 200
        assert "All your other devices are logged out" in page.text  # a flash message, shown once
        assert "All your other devices are logged out" not in (await laptop.get("/profile")).text

        response = await phone.get("/profile")
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        assert any(is_deletion(h) for h in set_cookies(response))


@pytest.mark.case("G4", "G5")
async def test_html_password_change_keeps_this_device_and_ends_the_other(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """A password change keeps this device, ends the other one, and only the new password logs in."""
    async with running(demo_settings) as app, client_factory(app) as laptop, client_factory(app) as phone:
        await html_sign_up(laptop, "dee@example.com")
        await form_login(phone, "dee@example.com")

        response = await profile_form(laptop, "/password", current_password="wrong one!", new_password=NEW_PASSWORD)
        assert response.status_code == 400
        assert "current password is wrong" in response.text
        assert (await phone.get("/profile")).status_code == 200  # a failed change revokes nothing

        response = await profile_form(laptop, "/password", current_password=PASSWORD, new_password=NEW_PASSWORD)
        assert response.status_code == 303
        assert response.headers["location"] == "/profile"
        assert "Password changed" in (await laptop.get("/profile")).text
        assert "Password changed" not in (await laptop.get("/profile")).text
        assert (await phone.get("/profile")).headers["location"] == "/login"

        assert (await form_login(phone, "dee@example.com", PASSWORD)).status_code == 400
        assert (await form_login(phone, "dee@example.com", NEW_PASSWORD)).status_code == 303


@pytest.mark.case("G6", "G16")
async def test_deleted_user_is_refused_and_its_devices_go_with_it(
    demo_app: FastAPI, demo_user: httpx.AsyncClient, client_factory: ClientFactory
) -> None:
    """Deleting a user's row deletes its device rows (SQLite foreign keys on); its sessions are refused."""
    async with client_factory(demo_app) as browser, client_factory(demo_app) as bystander:
        await form_login(browser, USER)
        stays = await api_sign_up(bystander, "stays@example.com")
        maker: async_sessionmaker[AsyncSession] = demo_app.state.sessionmaker
        async with maker() as db:
            assert len((await db.scalars(select(Device))).all()) == 3
            await db.execute(delete(User).where(User.email == USER))
            await db.commit()
            assert [d.user_id for d in (await db.scalars(select(Device))).all()] == [stays]
        assert (await browser.get("/profile")).headers["location"] == "/login"
        assert (await demo_user.get("/api/me")).status_code == 401
        assert (await bystander.get("/api/me")).status_code == 200


# -- JSON API -----------------------------------------------------------------------------------


@pytest.mark.case("G1")
async def test_api_journey_register_me_logout_login(demo_settings: Settings, client_factory: ClientFactory) -> None:
    """Register (202, no session), login (200), me (200 with times and server), logout (204), me (401), login."""
    async with running(demo_settings) as app, client_factory(app) as client:
        response = await client.post("/api/register", json={"email": "fay@example.com", "password": PASSWORD})
        assert response.status_code == 202
        assert not set_cookies(response)
        assert (await client.get("/api/me")).status_code == 401
        login = await client.post("/api/login", json={"email": "fay@example.com", "password": PASSWORD})
        assert login.status_code == 200
        assert login.json()["email"] == "fay@example.com"

        me = await client.get("/api/me")
        assert me.status_code == 200
        body = me.json()
        assert body["email"] == "fay@example.com"
        assert body["served_by"] == "test-instance"
        assert body["logged_in_at"] is not None
        assert body["session_expires_at"] > body["logged_in_at"]

        assert (await client.post("/api/logout", json={})).status_code == 204
        response = await client.get("/api/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == f'Cookie name="{COOKIE}", Bearer'  # the demo takes both

        bad = await client.post("/api/login", json={"email": "fay@example.com", "password": "not it at all"})
        assert bad.status_code == 401
        good = await client.post("/api/login", json={"email": "fay@example.com", "password": PASSWORD})
        assert good.status_code == 200
        assert good.json() == {"id": body["id"], "email": "fay@example.com"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"email": "x@example.com", "password": "short"}, 400, id="short-password"),
        pytest.param({"email": "nope", "password": PASSWORD}, 400, id="bad-email"),
        pytest.param({"email": "x@example.com"}, 422, id="missing-field"),
    ],
)
async def test_api_register_errors(
    demo_settings: Settings, client_factory: ClientFactory, body: dict[str, str], status: int
) -> None:
    """API registrations a person can fix answer 400 or 422 and set no session."""
    async with running(demo_settings) as app, client_factory(app) as client:
        response = await client.post("/api/register", json=body)
        assert response.status_code == status
        assert not set_cookies(response)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/logout"),
        ("POST", "/api/logout-others"),
        ("POST", "/api/login"),
        ("POST", "/api/password"),
        ("DELETE", "/api/devices/{own}"),
    ],
)
async def test_api_write_without_json_content_type_is_415(
    demo_settings: Settings, client_factory: ClientFactory, method: str, path: str
) -> None:
    """An API POST or DELETE that is not application/json (as a cross-site form sends) gets 415 and changes nothing."""
    async with running(demo_settings) as app, client_factory(app) as client:
        await api_sign_up(client, "gil@example.com")
        url = path.format(own=await current_device(client))
        form = {"email": "gil@example.com", "password": PASSWORD}
        response = await client.request(method, url, data=form if method == "POST" else None)
        assert response.status_code == 415
        assert not set_cookies(response)
        assert (await client.get("/api/me")).status_code == 200
        assert len(await api_devices(client)) == 1


@pytest.mark.case("G3", "G5")
async def test_api_logout_others_from_one_of_two_devices(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """The API's logout-others keeps the calling device; the other gets 401 and a deletion cookie."""
    async with running(demo_settings) as app, client_factory(app) as laptop, client_factory(app) as phone:
        await api_sign_up(laptop, "hal@example.com")
        await phone.post("/api/login", json={"email": "hal@example.com", "password": PASSWORD})
        assert (await phone.get("/api/me")).status_code == 200

        response = await laptop.post("/api/logout-others", json={})
        assert response.status_code == 204
        assert set_cookies(response)  # this device's cookie carries the new token

        refused = await phone.get("/api/me")
        assert refused.status_code == 401
        assert any(is_deletion(h) for h in set_cookies(refused))
        assert (await laptop.get("/api/me")).status_code == 200


@pytest.mark.case("G4")
async def test_api_password_change_ends_the_other_sessions(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """The API's password change checks the current password, keeps this device and ends the other."""
    async with running(demo_settings) as app, client_factory(app) as laptop, client_factory(app) as phone:
        await api_sign_up(laptop, "ivy@example.com")
        await phone.post("/api/login", json={"email": "ivy@example.com", "password": PASSWORD})

        wrong = await laptop.post("/api/password", json={"current_password": "nope nope", "new_password": NEW_PASSWORD})
        assert wrong.status_code == 400
        assert (await phone.get("/api/me")).status_code == 200

        changed = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        assert (await laptop.post("/api/password", json=changed)).status_code == 204
        assert (await laptop.get("/api/me")).status_code == 200
        assert (await phone.get("/api/me")).status_code == 401
        relogin = await phone.post("/api/login", json={"email": "ivy@example.com", "password": NEW_PASSWORD})
        assert relogin.status_code == 200


@pytest.mark.case("H1")
async def test_database_down_gives_503_and_keeps_the_cookie(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """With the database unreachable, the API answers 503 with Retry-After and leaves the cookie alone."""
    async with running(demo_settings) as app, client_factory(app) as client:
        await api_sign_up(client, "jo@example.com")
        down = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none", connect_args={"timeout": 2})
        working = app.state.sessionmaker
        app.state.sessionmaker = async_sessionmaker(down)
        try:
            response = await client.get("/api/me")
            page = await client.get("/profile")
        finally:
            app.state.sessionmaker = working
            await down.dispose()
        assert response.status_code == 503
        assert "retry-after" in response.headers
        assert not set_cookies(response)
        assert page.status_code == 503
        assert not set_cookies(page)
        assert (await client.get("/api/me")).status_code == 200  # nobody was logged out by the outage


# -- settings, keys and transport ----------------------------------------------------------------


def test_settings_from_env_reads_keys_database_and_https() -> None:
    """Settings.from_env splits the comma-separated keys (newest first) and parses the other variables."""
    settings = Settings.from_env(
        {
            KEYS_ENV: " new-key , old-key ,",
            "DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1/db",
            "DEMO_HTTPS_ONLY": "true",
            "DEMO_INSTANCE_NAME": "app7",
            "DEMO_DOCS": "yes",
        }
    )
    assert settings.keys == ("new-key", "old-key")
    assert settings.database_url == "postgresql+asyncpg://u@127.0.0.1/db"
    assert settings.https_only is True
    assert settings.instance_name == "app7"
    assert settings.docs is True
    defaults = Settings.from_env({})
    assert defaults.keys == ()
    assert defaults.database_url == "sqlite+aiosqlite:///demo.db"
    assert defaults.https_only is False
    assert defaults.docs is False
    for name in ("DEMO_HTTPS_ONLY", "DEMO_DOCS"):
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: "maybe"})


@pytest.mark.case("D7")
def test_missing_keys_give_a_loud_dev_key_that_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Without SEALED_SESSIONS_KEYS the demo makes a random key, warns that it is insecure, and never logs it."""
    with caplog.at_level(logging.WARNING, logger="examples.demo"):
        first = Settings(keys=()).session_keys()
        second = Settings(keys=()).session_keys()
    assert first != second
    assert "INSECURE" in caplog.text
    assert KEYS_ENV in caplog.text
    assert first[0] not in caplog.text
    assert second[0] not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="examples.demo"):
        assert Settings(keys=("k1", "k2")).session_keys() == ["k1", "k2"]
    assert caplog.text == ""


def test_bad_key_in_the_environment_fails_at_startup() -> None:
    """A weak SEALED_SESSIONS_KEYS value stops create_app with the library's message on how to make a key."""
    from sealed_sessions import ConfigurationError

    with pytest.raises(ConfigurationError, match="keygen"):
        create_app(Settings(database_url="sqlite+aiosqlite://", keys=("too-short",)))


@pytest.mark.case("F13", "F17")
@pytest.mark.parametrize(
    ("https_only", "name"), [(True, "__Host-session"), (False, "session")], ids=["https", "plain-http"]
)
async def test_https_only_setting_controls_the_cookie_and_plain_http_warns(
    demo_settings: Settings,
    client_factory: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    https_only: bool,
    name: str,
) -> None:
    """DEMO_HTTPS_ONLY decides Secure and the name (`__Host-session` or `session`); plain HTTP is announced loudly."""
    settings = replace(demo_settings, https_only=https_only)
    with caplog.at_level(logging.WARNING, logger="examples.demo"):
        async with running(settings) as app, client_factory(app) as client:
            response = await client.get("/login")
            refused = await client.get("/api/me")
    (cookie,) = set_cookies(response)
    assert settings.cookie_name == name
    assert cookie.startswith(f"{name}=")
    assert ("; secure" in cookie.lower()) is https_only
    assert "; path=/;" in cookie.lower()
    assert "domain" not in cookie.lower()
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    assert refused.headers["www-authenticate"] == f'Cookie name="{name}", Bearer'  # the 401 names the real cookie
    assert ("DEMO_HTTPS_ONLY=false" in caplog.text) is (not https_only)


async def test_passwords_are_scrypt_hashed_and_checked() -> None:
    """A stored hash is salted scrypt, verifies only the right password, and a malformed hash never matches."""
    hasher = PasswordHasher(2**10)
    stored = await hasher.hash("secret password")
    again = await hasher.hash("secret password")
    assert stored.startswith("scrypt$1024$8$1$")
    assert stored != again  # a fresh salt each time
    assert "secret password" not in stored
    assert await hasher.verify("secret password", stored)
    assert not await hasher.verify("secret passwork", stored)
    for malformed in ("scrypt$garbage", "bcrypt$1$2$3$4$5", "scrypt$1024$8$1$!!$!!", "scrypt$1024$8$1$a$b$c"):
        assert not await hasher.verify("secret password", malformed)
    assert not await hasher.verify("secret password", stored.replace("$1024$", "$1048576$"))  # over 128 MiB


async def test_demo_cookie_opens_with_the_cli_and_the_same_variable(
    demo_settings: Settings,
    client_factory: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m sealed_sessions inspect` reads the demo's key variable and opens a demo cookie with its context."""
    assert KEYS_ENV == cli.KEYS_ENV
    async with running(demo_settings) as app, client_factory(app) as client:
        await api_sign_up(client, "kim@example.com")
        cookie = client.cookies[COOKIE]
    monkeypatch.setenv(KEYS_ENV, ",".join(demo_settings.keys))
    assert cli.main(["inspect", "--cookie-name", COOKIE, cookie]) == 1  # sealed for the demo's context only
    assert cli.main(["inspect", "--cookie-name", COOKIE, "--context", SESSION_CONTEXT, cookie]) == 0
    out = capsys.readouterr().out
    assert '"_auth_uid": 1' in out
    assert "key:         current" in out
