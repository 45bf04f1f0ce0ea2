"""The demo's "forgot password" and "verify your e-mail" links: purpose-bound tokens in an application (P6, P13)."""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker

from examples.demo import Settings
from examples.demo.links import INVALID_LINK, LINK_SENT
from examples.demo.models import User
from examples.demo.settings import SHOW_LINKS_ENV
from tests.helpers import ClientFactory

from .flows import NEW_PASSWORD, PASSWORD, USER, api_sign_up, csrf_from, form_login, html_sign_up, running

_DEV_LINK = re.compile(r'id="dev-link">[^<]*<a href="([^"]+)"')
_CSRF_VALUE = re.compile(r'name="csrf_token" value="[^"]+"')


@pytest.fixture
def dev_settings(demo_settings: Settings) -> Settings:
    """The test settings with links shown, as in development (no mail server)."""
    return replace(demo_settings, show_links=True)


def dev_link(page: httpx.Response) -> str | None:
    """The link a page shows in development, if any."""
    match = _DEV_LINK.search(page.text)
    return match.group(1) if match else None


async def ask_reset(browser: httpx.AsyncClient, email: str) -> httpx.Response:
    """Submit the "forgot password" form and follow its redirect: the page that answers."""
    token = await csrf_from(browser, "/forgot")
    response = await browser.post("/forgot", data={"csrf_token": token, "email": email})
    assert (response.status_code, response.headers["location"]) == (303, "/forgot")
    return await browser.get("/forgot")


async def set_password(browser: httpx.AsyncClient, link: str, new_password: str) -> httpx.Response:
    """Open a reset link and submit its form."""
    token = await csrf_from(browser, link)
    page = await browser.get(link)
    (hidden,) = re.findall(r'name="token" value="([^"]+)"', page.text)
    return await browser.post("/reset", data={"csrf_token": token, "token": hidden, "new_password": new_password})


@pytest.mark.case("P6", "P13")
async def test_forgot_password_resets_once_and_logs_out_everywhere(
    dev_settings: Settings, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The reset link (logged and shown in development) sets a new password once, and every device is logged out."""
    caplog.set_level(logging.INFO, logger="examples.demo")
    async with running(dev_settings) as app, client_factory(app) as phone, client_factory(app) as browser:
        await html_sign_up(phone, USER)
        page = await ask_reset(browser, USER)
        assert LINK_SENT in page.text
        link = dev_link(page)
        assert link is not None and link.startswith("/reset?token=")
        assert any(link in r.getMessage() for r in caplog.records if r.name == "examples.demo")

        response = await set_password(browser, link, NEW_PASSWORD)
        assert (response.status_code, response.headers["location"]) == (303, "/login")
        assert "Every device was logged out" in (await browser.get("/login")).text
        assert (await phone.get("/api/me")).status_code == 401  # the reset ended every session
        assert (await form_login(browser, USER, PASSWORD)).status_code == 400
        assert (await form_login(browser, USER, NEW_PASSWORD)).headers["location"] == "/profile"

        used = await browser.get(link)  # the password changed: the link is dead
        assert used.status_code == 400
        assert INVALID_LINK in used.text


@pytest.mark.case("P13")
async def test_forgot_password_answers_the_same_for_every_address(
    demo_settings: Settings, client_factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Behind HTTPS (links not shown), a known and an unknown address get the same page, and no link is logged."""
    caplog.set_level(logging.INFO)
    async with running(demo_settings) as app, client_factory(app) as browser:
        await api_sign_up(browser, USER)
        known = await ask_reset(browser, USER)
        unknown = await ask_reset(browser, "nobody@example.com")
        malformed = await ask_reset(browser, "not an address")
        for page in (known, unknown, malformed):
            assert page.status_code == 200
            assert LINK_SENT in page.text
            assert dev_link(page) is None
        assert len({_CSRF_VALUE.sub("", page.text) for page in (known, unknown, malformed)}) == 1  # masks differ
        logged = " ".join(r.getMessage() for r in caplog.records)
        assert "password_reset link made for user" in logged
        assert "token=" not in logged


async def test_a_reset_link_refuses_a_bad_password_and_stays_usable(
    dev_settings: Settings, client_factory: ClientFactory
) -> None:
    """A too-short new password is refused with the form again; the link still works afterwards."""
    async with running(dev_settings) as app, client_factory(app) as browser:
        await api_sign_up(browser, USER)
        link = dev_link(await ask_reset(browser, USER))
        assert link is not None
        refused = await set_password(browser, link, "short")
        assert refused.status_code == 400
        assert "at least 8 characters" in refused.text
        assert (await set_password(browser, link, NEW_PASSWORD)).status_code == 303


async def test_a_mangled_reset_link_is_refused(dev_settings: Settings, client_factory: ClientFactory) -> None:
    """A cut or altered link shows the one "invalid link" page, and its form cannot be posted to anyway."""
    async with running(dev_settings) as app, client_factory(app) as browser:
        await api_sign_up(browser, USER)
        link = dev_link(await ask_reset(browser, USER))
        assert link is not None
        for bad in (link[:-10], link[:-1] + ("A" if link[-1] != "A" else "B"), "/reset", "/reset?token=x"):
            page = await browser.get(bad)
            assert (page.status_code, INVALID_LINK in page.text) == (400, True), bad
        token = await csrf_from(browser, "/forgot")
        posted = await browser.post("/reset", data={"csrf_token": token, "token": "x", "new_password": NEW_PASSWORD})
        assert posted.status_code == 400


@pytest.mark.case("P13")
async def test_reset_forms_need_the_csrf_token(dev_settings: Settings, client_factory: ClientFactory) -> None:
    """The "forgot password", reset and verification forms are refused (403) without the session's CSRF token."""
    async with running(dev_settings) as app, client_factory(app) as browser:
        await browser.get("/forgot")
        for path, data in [
            ("/forgot", {"email": USER}),
            ("/reset", {"token": "x", "new_password": NEW_PASSWORD}),
            ("/verify-email", {"token": "x"}),
        ]:
            assert (await browser.post(path, data=data)).status_code == 403, path


@pytest.mark.case("P6", "P13")
async def test_verify_your_email(dev_settings: Settings, client_factory: ClientFactory) -> None:
    """The profile sends a verification link; confirming it verifies the address once, and the button goes away."""
    async with running(dev_settings) as app, client_factory(app) as browser:
        await html_sign_up(browser, USER)
        profile = await browser.get("/profile")
        assert 'id="email-verified">no<' in profile.text
        token = await csrf_from(browser, "/profile")
        response = await browser.post("/verify-email/send", data={"csrf_token": token})
        assert response.headers["location"] == "/profile"
        link = dev_link(await browser.get("/profile"))
        assert link is not None and link.startswith("/verify-email?token=")

        confirm = await browser.get(link)  # a GET only shows a button: a mail scanner verifies nothing
        assert confirm.status_code == 200
        assert (await browser.get("/api/me")).json()["email_verified"] is False
        (hidden,) = re.findall(r'name="token" value="([^"]+)"', confirm.text)
        token = await csrf_from(browser, link)
        response = await browser.post("/verify-email", data={"csrf_token": token, "token": hidden})
        assert response.headers["location"] == "/profile"
        profile = await browser.get("/profile")
        assert "Your e-mail address is verified." in profile.text
        assert 'id="email-verified">yes<' in profile.text
        assert 'id="verify-send"' not in profile.text
        assert (await browser.get("/api/me")).json()["email_verified"] is True

        assert (await browser.get(link)).status_code == 400  # verified: the link is dead
        response = await browser.post("/verify-email", data={"csrf_token": token, "token": hidden})
        assert response.status_code == 400


@pytest.mark.case("P6")
async def test_a_verification_link_dies_when_the_address_changes(
    dev_settings: Settings, client_factory: ClientFactory
) -> None:
    """A link sent to the old address cannot verify the new one."""
    async with running(dev_settings) as app, client_factory(app) as client:
        await api_sign_up(client, USER)
        sent = await client.post("/api/verify-email/send", json={})
        assert sent.status_code == 202
        link = sent.json()["link"]
        maker: async_sessionmaker = app.state.sessionmaker  # type: ignore[type-arg]
        async with maker() as db:
            await db.execute(update(User).values(email="new@example.com"))
            await db.commit()
        response = await client.post("/api/verify-email", json={"token": link.split("token=", 1)[1]})
        assert (response.status_code, response.json()["detail"]) == (400, INVALID_LINK)
        assert (await client.get("/api/me")).json()["email_verified"] is False


async def test_the_api_flow(dev_settings: Settings, client_factory: ClientFactory) -> None:
    """Through the JSON API: the same 202 for every address, a reset that works once, a verification."""
    async with running(dev_settings) as app, client_factory(app) as client, client_factory(app) as other:
        await api_sign_up(client, USER)
        unknown = await other.post("/api/forgot-password", json={"email": "nobody@example.com"})
        known = await other.post("/api/forgot-password", json={"email": USER})
        assert unknown.status_code == known.status_code == 202
        assert unknown.json() == {"message": LINK_SENT, "link": None}
        token = known.json()["link"].split("token=", 1)[1]
        body = {"token": token, "new_password": NEW_PASSWORD}
        assert (await other.post("/api/reset-password", json=body)).status_code == 204
        assert (await client.get("/api/me")).status_code == 401
        again = await other.post("/api/reset-password", json={"token": token, "new_password": "another password"})
        assert (again.status_code, again.json()["detail"]) == (400, INVALID_LINK)

        response = await client.post("/api/login", json={"email": USER, "password": NEW_PASSWORD})
        assert response.status_code == 200
        link = (await client.post("/api/verify-email/send", json={})).json()["link"]
        verify = {"token": link.split("token=", 1)[1]}
        assert (await client.post("/api/verify-email", json=verify)).status_code == 204
        assert (await client.post("/api/verify-email", json=verify)).status_code == 400
        assert (await client.post("/api/verify-email/send", json={})).json()["link"] is None


def test_links_are_shown_in_development_only() -> None:
    """``DEMO_SHOW_LINKS`` defaults to on over plain HTTP and off behind HTTPS; set, it wins."""
    assert Settings.from_env({}).links_shown is True
    assert Settings.from_env({"DEMO_HTTPS_ONLY": "true"}).links_shown is False
    assert Settings.from_env({"DEMO_HTTPS_ONLY": "true", SHOW_LINKS_ENV: "true"}).links_shown is True
    assert Settings.from_env({SHOW_LINKS_ENV: "false"}).links_shown is False
    with pytest.raises(ValueError, match=SHOW_LINKS_ENV):
        Settings.from_env({SHOW_LINKS_ENV: "maybe"})
