"""Bearer clients: the session sealed for ``Authorization: Bearer``, checked by the same one statement (W1-W9)."""

# No `from __future__ import annotations`: FastAPI resolves the signatures of the routes added below.

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Receive, Scope, Send

from sealed_sessions import ConfigurationError
from sealed_sessions._auth_scheme import BEARER_LABEL, DEFAULT_BEARER_MAX_AGE, SessionBearer
from sealed_sessions._bearer import check_bearer_options
from sealed_sessions._keys import KeyRing
from sealed_sessions.fastapi import SessionAuth
from sealed_sessions.testing import seal
from tests.helpers import COOKIE, KEY_A, KEY_B, b64, cookie, https_client, rejection_reasons, unb64

from .device_harness import DeviceHarness, DeviceHarnessFactory
from .harness import Harness, HarnessFactory, run_websocket

CHALLENGE = 'Bearer error="invalid_token"'
"""The 401's ``WWW-Authenticate`` for a bearer token that does not open or names no live session."""
SECRET: dict[str, Any] = {"secret_key": KEY_A}
"""The middleware's key, as the harnesses' ``SessionMiddleware`` uses it: bearer tokens need a key."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add_bearer_routes(app: FastAPI, auth: SessionAuth[Any], find: Callable[[str], Awaitable[Any]]) -> None:
    """A token login (``/token/{name}``), a bearer logout, and ``/whoami``, which says whether the cookie was read."""
    current_user = Annotated[Any, Depends(auth.current_user)]
    database = Annotated[AsyncSession, Depends(auth.get_db)]

    @app.post("/token/{name}")
    async def token(name: str, request: Request, db: database) -> dict[str, str]:
        user = await find(name)
        if auth.device_store is None:
            return {"access_token": auth.issue_bearer(user), "token_type": "bearer"}
        return {"access_token": await auth.login_device_bearer(db, request, user), "token_type": "bearer"}

    @app.get("/whoami")
    async def whoami(user: current_user, request: Request) -> dict[str, Any]:
        return {"name": user.name, "cookie_read": request.scope["session"].accessed}

    @app.post("/logout-bearer")
    async def logout_bearer(user: current_user, request: Request, db: database) -> dict[str, bool]:
        return {"ended": await auth.logout_bearer(db, request, user)}


async def bearer_harness(make_harness: HarnessFactory, kind: str, **options: Any) -> Harness:
    """A user-token harness with ``bearer=True``, users ``ada`` and ``bob``, and the bearer routes."""
    h = await make_harness(kind, bearer=True, **{**SECRET, **options})

    async def find(name: str) -> Any:
        async with h.maker() as db:
            return (await db.execute(select(h.User).where(h.User.name == name))).scalar_one()

    add_bearer_routes(h.app, h.auth, find)
    await h.create_user("ada")
    await h.create_user("bob")
    return h


async def token_for(client: httpx.AsyncClient, name: str) -> str:
    response = await client.post(f"/token/{name}")
    assert response.status_code == 200, response.text
    assert "set-cookie" not in response.headers  # the token is in the body, nothing in a cookie
    value: str = response.json()["access_token"]
    return value


@pytest.fixture
async def client_of() -> AsyncIterator[Callable[[Harness], httpx.AsyncClient]]:
    """Open https clients on harness apps; closed after the test."""
    clients: list[httpx.AsyncClient] = []

    def open_client(h: Harness) -> httpx.AsyncClient:
        clients.append(https_client(h.app))
        return clients[-1]

    yield open_client
    for client in clients:
        await client.aclose()


ClientOf = Callable[[Harness], httpx.AsyncClient]


# -- the happy path, on each database ------------------------------------------------------------


@pytest.mark.case("W1")
async def test_a_bearer_request_runs_one_statement_and_never_reads_the_cookie(
    db_kind: str, make_harness: HarnessFactory, client_of: ClientOf
) -> None:
    """A token from the login's body authenticates with exactly one SELECT; no cookie is read or set."""
    h = await bearer_harness(make_harness, db_kind)
    client = client_of(h)
    token = await token_for(client, "ada")
    assert COOKIE not in client.cookies
    for _ in range(3):
        h.statements.clear()
        response = await client.get("/whoami", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json() == {"name": "ada", "cookie_read": False}
        assert len(h.statements) == 1, h.statements
        assert h.statements[0].lstrip().lower().startswith("select ")
        assert "set-cookie" not in response.headers
        assert "cookie" not in response.headers.get("vary", "").lower()


@pytest.mark.case("W2")
async def test_revoking_the_user_refuses_the_token_at_its_next_request(
    db_kind: str, make_harness: HarnessFactory, client_of: ClientOf
) -> None:
    """A revoke (one UPDATE) made through the token refuses it next time: 401 with the Bearer challenge."""
    h = await bearer_harness(make_harness, db_kind)
    client = client_of(h)
    token = await token_for(client, "ada")
    assert (await client.post("/logout-everywhere", headers=bearer(token))).status_code == 200
    h.statements.clear()
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert len(h.statements) == 1  # still the one statement: it found no row


@pytest.mark.case("W2")
async def test_logout_bearer_revokes_in_user_token_mode(
    db_kind: str, make_harness: HarnessFactory, client_of: ClientOf
) -> None:
    """In user-token mode, logging a token out revokes the user: the token and the user's cookies end."""
    h = await bearer_harness(make_harness, db_kind)
    client = client_of(h)
    token = await token_for(client, "ada")
    async with https_client(h.app) as browser:
        assert (await browser.post("/login/ada")).status_code == 200
        assert (await client.post("/logout-bearer", headers=bearer(token))).json() == {"ended": True}
        assert (await client.get("/me", headers=bearer(token))).status_code == 401
        assert (await browser.get("/me")).status_code == 401


# -- cross-transport and bad tokens --------------------------------------------------------------


@pytest.mark.case("W3")
async def test_a_cookie_value_sent_as_a_bearer_token_is_refused(
    make_harness: HarnessFactory, client_of: ClientOf, caplog: pytest.LogCaptureFixture
) -> None:
    """A live session cookie, sent as a bearer token, does not open (another subkey): 401, no statement."""
    h = await bearer_harness(make_harness, "sqlite")
    async with https_client(h.app) as browser:
        await browser.post("/login/ada")
        value = browser.cookies[COOKIE]
        assert (await browser.get("/me")).status_code == 200
    client = client_of(h)
    h.statements.clear()
    with caplog.at_level(logging.INFO, logger="sealed_sessions"):
        response = await client.get("/me", headers=bearer(value))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert h.statements == []
    assert rejection_reasons(caplog) == ["bearer_bad_mac"]
    assert value not in caplog.text


@pytest.mark.case("W4")
async def test_a_bearer_token_sent_as_a_cookie_is_refused(make_harness: HarnessFactory, client_of: ClientOf) -> None:
    """A live bearer token, sent as the session cookie, opens as no session: 401, no statement, no user."""
    h = await bearer_harness(make_harness, "sqlite")
    client = client_of(h)
    token = await token_for(client, "ada")
    assert (await client.get("/me", headers=bearer(token))).status_code == 200
    h.statements.clear()
    response = await client.get("/me", headers={"Cookie": cookie(token)})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'Cookie name="{COOKIE}", Bearer'
    assert (await client.get("/maybe", headers={"Cookie": cookie(token)})).json() == {"name": None}
    assert h.statements == []


def _flip(token: str, index: int) -> str:
    raw = bytearray(unb64(token))
    raw[index] ^= 1
    return b64(bytes(raw))


@pytest.mark.case("W5")
async def test_forged_truncated_and_malformed_tokens_are_refused_without_a_query(
    make_harness: HarnessFactory, client_of: ClientOf, caplog: pytest.LogCaptureFixture
) -> None:
    """Tampered, truncated, padded, foreign-key, other-context and garbage tokens: 401 invalid_token, never a 500."""
    h = await bearer_harness(make_harness, "sqlite")
    client = client_of(h)
    token = await token_for(client, "ada")
    data = {"_auth_uid": 1, "_auth_token": "x" * 43}
    foreign = SessionBearer(KEY_B).seal(data)
    other_context = SessionBearer(KEY_A, context="another-app").seal(data)
    cases = {
        "bit flip in the MAC": _flip(token, -1),
        "bit flip in the body": _flip(token, len(unb64(token)) // 2),
        "truncated": token[:-4],
        "one character short": token[:-1],
        "padded": token + "=",
        "not base64url": token[:-1] + "*",
        "sealed with another key": foreign,
        "sealed for another context": other_context,
        "sealed as a cookie by the test helper": seal(KEY_A, data),
        "garbage": "hello",
        "oversized": "A" * 10_000,
    }
    h.statements.clear()
    with caplog.at_level(logging.INFO, logger="sealed_sessions"):
        for name, value in cases.items():
            response = await client.get("/me", headers=bearer(value))
            assert response.status_code == 401, name
            assert response.headers["www-authenticate"] == CHALLENGE, name
        for header in ("Bearer", "Bearer ", f"Bearer {token} {token}", "bearer   "):
            response = await client.get("/me", headers={"Authorization": header})
            assert response.status_code == 401, header
    assert h.statements == []
    reasons = rejection_reasons(caplog)
    assert reasons and all(str(r).startswith("bearer_") for r in reasons), reasons
    assert token[:-4] not in caplog.text  # no token, nor any long part of one, is ever logged
    assert (await client.get("/me", headers=bearer(token))).status_code == 200


@pytest.mark.case("W6")
async def test_an_expired_token_is_refused(
    make_harness: HarnessFactory, client_of: ClientOf, caplog: pytest.LogCaptureFixture
) -> None:
    """A token is refused from ``bearer_max_age`` seconds after issue (expiry sealed inside), however active."""
    h = await bearer_harness(make_harness, "sqlite")
    client = client_of(h)
    token = await token_for(client, "ada")
    h.clock.advance(DEFAULT_BEARER_MAX_AGE - 1)
    assert (await client.get("/me", headers=bearer(token))).status_code == 200
    h.clock.advance(1)
    h.statements.clear()
    with caplog.at_level(logging.INFO, logger="sealed_sessions"):
        response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert h.statements == []
    assert rejection_reasons(caplog) == ["bearer_expired"]


async def test_max_age_per_token(make_harness: HarnessFactory) -> None:
    """``issue_bearer(user, max_age=)`` seals a shorter (or longer) lifetime into that one token."""
    h = await bearer_harness(make_harness, "sqlite")
    async with h.maker() as db:
        user = (await db.execute(select(h.User).where(h.User.name == "ada"))).scalar_one()
    token = h.auth.issue_bearer(user, max_age=60)
    async with https_client(h.app) as client:
        assert (await client.get("/me", headers=bearer(token))).status_code == 200
        h.clock.advance(60)
        assert (await client.get("/me", headers=bearer(token))).status_code == 401
    with pytest.raises(ConfigurationError):
        h.auth.issue_bearer(user, max_age=0)


# -- a cookie and a bearer header on one request -------------------------------------------------


@pytest.mark.case("W7")
async def test_a_request_with_both_uses_only_the_bearer_and_never_reads_the_cookie(
    db_kind: str, make_harness: HarnessFactory, client_of: ClientOf
) -> None:
    """With bob's cookie and ada's token, the user is ada, the cookie is not read (no Vary: Cookie) nor cleared."""
    h = await bearer_harness(make_harness, db_kind)
    client = client_of(h)
    token = await token_for(client, "ada")
    assert (await client.post("/login/bob")).status_code == 200
    assert COOKIE in client.cookies
    h.statements.clear()
    response = await client.get("/whoami", headers=bearer(token))
    assert response.json() == {"name": "ada", "cookie_read": False}
    assert len(h.statements) == 1
    assert "cookie" not in response.headers.get("vary", "").lower()
    assert "set-cookie" not in response.headers
    assert (await client.get("/whoami")).json() == {"name": "bob", "cookie_read": True}


@pytest.mark.case("W7")
async def test_a_bad_or_dead_token_never_falls_back_to_the_cookie_nor_clears_it(
    make_harness: HarnessFactory, client_of: ClientOf
) -> None:
    """A refused token with a live cookie is a 401 (optional routes: no user); the cookie survives untouched."""
    h = await bearer_harness(make_harness, "sqlite")
    client = client_of(h)
    ada = await token_for(client, "ada")
    await client.post("/login/bob")
    bob_cookie = client.cookies[COOKIE]
    response = await client.get("/me", headers=bearer("forged"))
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    await h.set_columns(1, session_token="r" * 43)  # ada revoked behind the app's back
    for path in ("/me", "/maybe"):
        response = await client.get(path, headers=bearer(ada))
        assert response.status_code == (401 if path == "/me" else 200)
        assert "set-cookie" not in response.headers  # the dead bearer session clears no cookie
    assert (await client.get("/maybe", headers=bearer(ada))).json() == {"name": None}
    assert client.cookies[COOKIE] == bob_cookie
    assert (await client.get("/me")).json()["name"] == "bob"


async def test_another_authorization_scheme_leaves_the_cookie_in_charge(
    make_harness: HarnessFactory, client_of: ClientOf
) -> None:
    """``Authorization: Basic ...`` is not ours: the request is judged by its cookie, as without ``bearer=True``."""
    h = await bearer_harness(make_harness, "sqlite")
    client = client_of(h)
    await client.post("/login/bob")
    response = await client.get("/whoami", headers={"Authorization": "Basic Ym9iOnB3"})
    assert response.json() == {"name": "bob", "cookie_read": True}


# -- OpenAPI, challenges, configuration ----------------------------------------------------------


async def test_openapi_lists_both_schemes_as_alternatives(make_harness: HarnessFactory) -> None:
    """/openapi.json declares the cookie and the bearer scheme; protected routes accept either one."""
    h = await bearer_harness(make_harness, "sqlite")
    schema: dict[str, Any] = h.app.openapi()
    assert schema["components"]["securitySchemes"] == {
        "SessionCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": COOKIE,
            "description": "The sealed session cookie, set at login.",
        },
        "SessionBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "The sealed session as a bearer token, returned by the login for API clients.",
        },
    }
    for path, method in (("/me", "get"), ("/maybe", "get"), ("/logout-bearer", "post")):
        assert schema["paths"][path][method]["security"] == [{"SessionCookie": []}, {"SessionBearer": []}]
        assert "parameters" not in schema["paths"][path][method]  # no Authorization parameter either
    assert "security" not in schema["paths"]["/public"]["get"]
    assert "security" not in schema["paths"]["/token/{name}"]["post"]


async def test_without_bearer_nothing_changes(make_harness: HarnessFactory, client_of: ClientOf) -> None:
    """Without ``bearer=True`` a bearer header is ignored, OpenAPI lists the cookie alone, the challenge names it."""
    h = await make_harness("sqlite", **SECRET)
    assert h.auth.scheme.bearer is None
    await h.create_user("ada")
    client = client_of(h)
    await client.post("/login/ada")
    response = await client.get("/me", headers=bearer("anything"))
    assert response.status_code == 200
    assert h.app.openapi()["paths"]["/me"]["get"]["security"] == [{"SessionCookie": []}]
    assert h.auth.scheme.make_not_authenticated_error().headers == {"WWW-Authenticate": f'Cookie name="{COOKIE}"'}
    async with h.maker() as db:
        user = await db.get(h.User, 1)
    with pytest.raises(ConfigurationError, match="bearer=True"):
        h.auth.issue_bearer(user)


def test_bearer_without_a_key_is_a_configuration_error() -> None:
    """``bearer=True`` without ``secret_key`` (nothing to open tokens with) is refused at construction."""
    with pytest.raises(ConfigurationError, match="secret_key"):
        check_bearer_options(True, None)
    with pytest.raises(ConfigurationError):
        check_bearer_options("yes", KeyRing(KEY_A))  # type: ignore[arg-type]
    check_bearer_options(True, KeyRing(KEY_A))
    check_bearer_options(False, None)
    with pytest.raises(ConfigurationError, match="bearer_max_age"):
        SessionBearer(KEY_A, max_age=0)


async def test_bearer_without_a_key_fails_when_the_app_is_built(make_harness: HarnessFactory) -> None:
    """Building ``SessionAuth(bearer=True)`` with no ``secret_key`` fails before any route is declared."""
    with pytest.raises(ConfigurationError, match="secret_key"):
        await make_harness("sqlite", bearer=True)


def test_the_bearer_label_can_never_be_a_cookie_name() -> None:
    """Tokens are sealed for a label outside the cookie-name alphabet, so no cookie ever shares their subkey."""
    from sealed_sessions import SessionMiddleware

    with pytest.raises(ConfigurationError):
        SessionMiddleware(FastAPI(), secret_key=KEY_A, session_cookie=BEARER_LABEL)


# -- WebSocket -----------------------------------------------------------------------------------


def with_authorization(app: Any, value: str) -> Any:
    """``app`` with an ``Authorization`` header added to every connection's scope."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [*scope["headers"], (b"authorization", value.encode())]
        await app({**scope, "headers": headers}, receive, send)

    return wrapped


@pytest.mark.case("W8")
async def test_websocket_handshake_with_a_bearer_token(make_harness: HarnessFactory, client_of: ClientOf) -> None:
    """A CLI's WebSocket handshake with a token is accepted; a bad or revoked one closes with 1008, cookie or not."""
    h = await bearer_harness(make_harness, "sqlite")
    client = client_of(h)
    token = await token_for(client, "ada")
    await client.post("/login/bob")
    bob = client.cookies[COOKIE]
    sent = await run_websocket(with_authorization(h.app, f"Bearer {token}"), bob)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == "ada"
    sent = await run_websocket(with_authorization(h.app, "Bearer forged"), bob)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "Not authenticated"}]
    await h.set_columns(1, session_token="r" * 43)
    sent = await run_websocket(with_authorization(h.app, f"Bearer {token}"), bob)
    assert sent[0]["type"] == "websocket.close" and sent[0]["code"] == 1008


# -- device mode ---------------------------------------------------------------------------------


async def bearer_device_harness(make_device_harness: DeviceHarnessFactory, kind: str, **options: Any) -> DeviceHarness:
    h = await make_device_harness(kind, bearer=True, **{**SECRET, **options})
    add_bearer_routes(h.app, h.auth, h.find)
    await h.create_user("ada")
    return h


@pytest.mark.case("W9")
async def test_device_mode_token_is_a_device_ended_by_logout_bearer(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_of: ClientOf
) -> None:
    """A device login for a token adds a row; its requests run one statement; its logout ends that device only."""
    h = await bearer_device_harness(make_device_harness, db_kind)
    client = client_of(h)
    token = await token_for(client, "ada")
    rows = await h.devices()
    assert len(rows) == 1
    assert rows[0].expires_at == int(h.clock.now) + DEFAULT_BEARER_MAX_AGE
    async with https_client(h.app) as browser:
        await browser.post("/login/ada")
        h.statements.clear()
        response = await client.get("/whoami", headers=bearer(token))
        assert response.json() == {"name": "ada", "cookie_read": False}
        assert len(h.statements) == 1, h.statements
        assert (await client.post("/logout-bearer", headers=bearer(token))).json() == {"ended": True}
        assert len(await h.devices()) == 1  # the browser's device
        response = await client.get("/me", headers=bearer(token))
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == CHALLENGE
        assert (await browser.get("/me")).status_code == 200


@pytest.mark.case("W9")
async def test_device_mode_last_seen_is_written_once_per_interval(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_of: ClientOf
) -> None:
    """A token cannot record its last write, the process does: one UPDATE per seen_interval, not per request."""
    h = await bearer_device_harness(make_device_harness, db_kind, seen_interval=900)
    client = client_of(h)
    token = await token_for(client, "ada")
    counts = []
    for step in (0, 899, 1, 0, 899, 1, 1):
        h.clock.advance(step)
        h.statements.clear()
        assert (await client.get("/me", headers=bearer(token))).status_code == 200
        counts.append(len(h.statements))
    assert counts == [1, 1, 2, 1, 1, 2, 1]
    assert (await h.devices())[0].last_seen_at == int(h.clock.now) - 1


async def test_device_mode_refuses_the_user_token_variant(make_device_harness: DeviceHarnessFactory) -> None:
    """``issue_bearer`` in device mode would skip the device table: a ConfigurationError naming the right call."""
    h = await bearer_device_harness(make_device_harness, "sqlite")
    with pytest.raises(ConfigurationError, match="login_device_bearer"):
        h.auth.issue_bearer(await h.find("ada"))
