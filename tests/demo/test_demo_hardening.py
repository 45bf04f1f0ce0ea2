"""What an outside review asked of the demo: no account enumeration at registration, OWASP-strength
password hashes (with old ones upgraded at login), no caching of personal data, no public API docs,
and a cookie bound to the demo's name and context."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from examples.demo import Settings
from examples.demo.app import SESSION_CONTEXT
from examples.demo.models import User
from examples.demo.passwords import DEFAULT_SCRYPT_N, PasswordHasher
from sealed_sessions import InvalidCookie
from sealed_sessions.testing import unseal
from tests.helpers import ClientFactory

from .flows import COOKIE, PASSWORD, USER, api_sign_up, form_login, form_register, running, set_cookies

ATTACKER_PASSWORD = "the attacker's own choice"
_VARYING_HEADERS = {"date", "set-cookie"}


_CSRF_VALUE = re.compile(rb'name="csrf_token" value="[A-Za-z0-9_-]+"')


def response_shape(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """What an observer sees of a response, minus the date, the (anonymous) session cookie and the
    CSRF token's random mask (it differs on every page by design)."""
    headers = sorted((k, v) for k, v in response.headers.items() if k not in _VARYING_HEADERS)
    body = _CSRF_VALUE.sub(b'name="csrf_token" value="masked"', response.content)
    return response.status_code, body, headers


async def stored_hash(app: FastAPI, email: str) -> str:
    """The password hash the database holds for ``email``."""
    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    async with maker() as db:
        user = (await db.execute(select(User).where(User.email == email))).scalar_one()
        return str(user.password_hash)


# -- registration does not tell whether an address has an account ----------------------------------


@pytest.mark.case("N3")
async def test_api_registration_of_a_taken_address_looks_like_a_new_one(
    demo_app: FastAPI, demo_user: httpx.AsyncClient, demo_client: httpx.AsyncClient
) -> None:
    """Registering a taken address gives the same 202 and body as a new one, logs nobody in, and changes nothing."""
    before = await stored_hash(demo_app, USER)
    taken = await demo_client.post("/api/register", json={"email": USER.upper(), "password": ATTACKER_PASSWORD})
    new = await demo_client.post("/api/register", json={"email": "fresh@example.com", "password": ATTACKER_PASSWORD})
    assert response_shape(taken) == response_shape(new)
    assert taken.status_code == 202
    assert set(taken.json()) == {"message"}
    assert not set_cookies(taken)
    assert (await demo_client.get("/api/me")).status_code == 401  # registering never logs in

    assert await stored_hash(demo_app, USER) == before
    attacker = await demo_client.post("/api/login", json={"email": USER, "password": ATTACKER_PASSWORD})
    assert attacker.status_code == 401
    assert (await demo_user.get("/api/me")).status_code == 200  # the owner's session is untouched
    assert (await demo_client.post("/api/login", json={"email": USER, "password": PASSWORD})).status_code == 200


@pytest.mark.case("N3")
async def test_html_registration_of_a_taken_address_looks_like_a_new_one(
    demo_app: FastAPI, demo_user: httpx.AsyncClient, demo_client: httpx.AsyncClient
) -> None:
    """The form answers a taken address with the same redirect and page as a new one, and logs nobody in."""
    before = await stored_hash(demo_app, USER)
    taken = await form_register(demo_client, USER, ATTACKER_PASSWORD)
    taken_page = await demo_client.get(taken.headers["location"])
    new = await form_register(demo_client, "unowned@example.com", ATTACKER_PASSWORD)
    new_page = await demo_client.get(new.headers["location"])
    assert response_shape(taken) == response_shape(new)
    assert (taken.status_code, taken.headers["location"]) == (303, "/login?done=registered")
    assert response_shape(taken_page) == response_shape(new_page)
    assert (await demo_client.get("/profile")).headers["location"] == "/login"

    assert await stored_hash(demo_app, USER) == before
    assert (await form_login(demo_client, USER, ATTACKER_PASSWORD)).status_code == 400


# -- password hashing cost -------------------------------------------------------------------------


@pytest.mark.case("N6")
def test_production_settings_hash_at_scrypt_n_2_17_and_no_variable_lowers_it() -> None:
    """New hashes cost N=2**17 by default; the environment cannot lower it (only code, as the tests do)."""
    assert DEFAULT_SCRYPT_N == 2**17
    assert Settings().scrypt_n == 2**17
    assert Settings.from_env({"DEMO_SCRYPT_N": "1024", "SCRYPT_N": "1024"}).scrypt_n == 2**17
    for bad in (0, 1000, 2**18):
        with pytest.raises(ValueError, match="power of two"):
            PasswordHasher(bad)


async def test_a_real_cost_hash_fits_in_the_memory_limit() -> None:
    """A hash at N=2**17, r=8, p=1 (128 MiB) is made and checked: the scrypt memory limit allows it."""
    hasher = PasswordHasher()
    stored = await hasher.hash(PASSWORD)
    assert stored.startswith("scrypt$131072$8$1$")
    assert await hasher.verify(PASSWORD, stored)
    assert not hasher.needs_rehash(stored)


@pytest.mark.case("N6")
async def test_a_cheaper_old_hash_verifies_and_is_upgraded_at_the_next_login(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """A hash made at a lower N still logs in, is replaced by one at today's N, and a wrong password changes nothing."""
    old = replace(demo_settings, scrypt_n=2**10)
    async with running(old) as app, client_factory(app) as client:
        await api_sign_up(client, "old@example.com")
        assert (await stored_hash(app, "old@example.com")).startswith("scrypt$1024$8$1$")

    async with running(replace(demo_settings, scrypt_n=2**11)) as app, client_factory(app) as client:
        wrong = await client.post("/api/login", json={"email": "old@example.com", "password": "not it at all"})
        assert wrong.status_code == 401
        assert (await stored_hash(app, "old@example.com")).startswith("scrypt$1024$")
        right = await client.post("/api/login", json={"email": "old@example.com", "password": PASSWORD})
        assert right.status_code == 200
        upgraded = await stored_hash(app, "old@example.com")
        assert upgraded.startswith("scrypt$2048$8$1$")
        assert (await client.get("/api/me")).status_code == 200
        client.cookies.clear()
        again = await client.post("/api/login", json={"email": "old@example.com", "password": PASSWORD})
        assert again.status_code == 200
        assert await stored_hash(app, "old@example.com") == upgraded  # rehashed once, not at every login


# -- caching, docs, cookie ---------------------------------------------------------------------------


@pytest.mark.case("N4")
async def test_every_api_response_is_no_store(demo_client: httpx.AsyncClient) -> None:
    """/api/ answers, personal data and errors alike, carry exactly `Cache-Control: no-store`."""
    client = demo_client
    responses = [
        await client.post("/api/register", json={"email": USER, "password": PASSWORD}),
        await client.get("/api/me"),  # 401
        await client.post("/api/login", json={"email": USER, "password": PASSWORD}),  # sets a cookie
        await client.get("/api/me"),  # 200, personal data
        await client.post("/api/login", data={"email": "x"}),  # 415
        await client.post("/api/logout-others", json={}),  # 204, reseals
        await client.get("/api/devices"),  # 200, personal data
        await client.delete("/api/devices/unknown", headers={"content-type": "application/json"}),  # 404
    ]
    assert [r.status_code for r in responses] == [202, 401, 200, 200, 415, 204, 200, 404]
    for response in responses:
        assert response.headers.get_list("cache-control") == ["no-store"], response.request.url
    assert responses[3].json()["email"] == USER
    assert (await client.get("/healthz")).headers.get("cache-control") is None  # only /api/ is touched


@pytest.mark.parametrize("docs", [False, True], ids=["default", "DEMO_DOCS=true"])
@pytest.mark.case("N5")
async def test_interactive_docs_are_off_unless_enabled(
    demo_settings: Settings, client_factory: ClientFactory, docs: bool
) -> None:
    """/docs, /redoc and /openapi.json are 404 by default and served only with the docs setting on."""
    assert Settings.from_env({"DEMO_DOCS": "true" if docs else "false"}).docs is docs
    async with running(replace(demo_settings, docs=docs)) as app, client_factory(app) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await client.get(path)).status_code == (200 if docs else 404), path
        if docs:
            assert "/api/me" in (await client.get("/openapi.json")).json()["paths"]


@pytest.mark.case("B9")
async def test_demo_cookie_is_bound_to_the_demo_context(demo_settings: Settings, demo_user: httpx.AsyncClient) -> None:
    """The demo seals under its `context` label: the cookie opens with it, and not without it."""
    value = demo_user.cookies[COOKIE]
    opened = unseal(list(demo_settings.keys), value, session_cookie=COOKIE, context=SESSION_CONTEXT)
    assert opened.data["_auth_uid"] == 1
    with pytest.raises(InvalidCookie):
        unseal(list(demo_settings.keys), value, session_cookie=COOKIE)
    with pytest.raises(InvalidCookie):
        unseal(list(demo_settings.keys), value, session_cookie=COOKIE, context="another-app")
