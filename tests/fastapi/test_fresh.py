"""Fresh login (``auth.fresh_user(max_age=...)``, ``auth.confirm``): one statement, then the sealed login time (Q)."""

# No `from __future__ import annotations`: FastAPI resolves the route signatures built here.

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from sealed_sessions import ConfigurationError
from sealed_sessions.fastapi import SessionAuth, UnusableUser
from sealed_sessions.sqlalchemy import new_session_token
from sealed_sessions.testing import seal
from tests.helpers import COOKIE, KEY_A, START, ClientFactory

from .device_harness import DeviceHarnessFactory
from .harness import HarnessFactory, make_user_model, session_of

MAX_AGE = 300
STALE_ERROR = 'error="insufficient_user_authentication"'


def add_fresh_routes(app: FastAPI, auth: SessionAuth[Any]) -> None:
    """``GET /account`` needs a login at most MAX_AGE seconds old; ``POST /confirm/{password}`` re-stamps it."""
    fresh = Annotated[Any, Depends(auth.fresh_user(max_age=MAX_AGE))]
    current = Annotated[Any, Depends(auth.current_user)]

    @app.get("/account")
    async def account(user: fresh) -> dict[str, str]:
        return {"name": user.name}

    @app.post("/confirm/{password}")
    async def confirm(password: str, request: Request, user: current) -> dict[str, bool]:
        if password != user.password:  # the application's own password check
            raise HTTPException(403, "Wrong password")
        auth.confirm(request, user)
        return {"confirmed": True}


def assert_stale(response: Any) -> None:
    """The fresh-login 401: its own body and challenge, and the session left alone (no Set-Cookie)."""
    assert response.status_code == 401
    assert response.json() == {"detail": "Recent login required"}
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Cookie name="__Host-session"'), challenge
    assert STALE_ERROR in challenge and f'max_age="{MAX_AGE}"' in challenge, challenge
    assert "set-cookie" not in response.headers


@pytest.mark.case("Q1")
async def test_a_fresh_login_costs_the_same_one_statement_as_current_user(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """Within max_age of login, fresh_user answers the user after exactly the statement current_user sends."""
    h = await make_harness(db_kind)
    add_fresh_routes(h.app, h.auth)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        h.statements.clear()
        assert (await client.get("/me")).status_code == 200
        plain = list(h.statements)
        h.statements.clear()
        h.clock.advance(MAX_AGE)
        response = await client.get("/account")
        assert response.json() == {"name": "ada"}
        assert h.statements == plain and len(plain) == 1, h.statements


@pytest.mark.case("Q1")
async def test_a_stale_login_gets_a_distinct_401_and_keeps_the_session(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A second past max_age: 401 "Recent login required" with an RFC 9470 challenge, one statement, cookie kept."""
    h = await make_harness(db_kind)
    add_fresh_routes(h.app, h.auth)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        cookie = client.cookies[COOKIE]
        h.clock.advance(MAX_AGE + 1)
        h.statements.clear()
        assert_stale(await client.get("/account"))
        assert len(h.statements) == 1, h.statements
        assert client.cookies[COOKIE] == cookie
        me = await client.get("/me")  # the session is valid: only the sensitive route asks for more
        assert me.status_code == 200 and "set-cookie" not in me.headers


@pytest.mark.case("Q2")
async def test_confirm_restamps_the_login_time(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """After a stale 401, a password re-check and auth.confirm make the login fresh for another max_age."""
    h = await make_harness(db_kind)
    add_fresh_routes(h.app, h.auth)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        h.clock.advance(MAX_AGE + 1)
        assert_stale(await client.get("/account"))
        assert (await client.post("/confirm/wrong")).status_code == 403
        assert_stale(await client.get("/account"))
        assert (await client.post("/confirm/initial")).json() == {"confirmed": True}
        assert session_of(client)["_auth_at"] == START + MAX_AGE + 1
        h.clock.advance(MAX_AGE)
        assert (await client.get("/account")).json() == {"name": "ada"}
        h.clock.advance(1)
        assert_stale(await client.get("/account"))


@pytest.mark.case("Q3")
async def test_confirm_refuses_a_session_of_another_user_or_an_old_token(make_harness: HarnessFactory) -> None:
    """confirm() stamps only a session holding the user's id and current token; otherwise UnusableUser."""
    h = await make_harness("sqlite")
    ada_id = await h.create_user("ada")
    grace_id = await h.create_user("grace")
    async with h.maker() as db:
        ada, grace = await db.get(h.User, ada_id), await db.get(h.User, grace_id)
    session = h.auth.session_data(ada)
    request = HTTPConnection({"type": "http", "session": session})
    with pytest.raises(UnusableUser):
        h.auth.confirm(request, grace)
    assert ada is not None and grace is not None
    ada.session_token = new_session_token()  # as after a revoke: the session holds the old token
    with pytest.raises(UnusableUser):
        h.auth.confirm(request, ada)
    assert session["_auth_at"] == START


@pytest.mark.case("Q4")
@pytest.mark.parametrize("login_time", [None, "1800000000", True, [START]], ids=["missing", "text", "bool", "list"])
async def test_a_session_without_a_usable_login_time_is_never_fresh(
    login_time: Any, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A live session whose login time is missing or not a number passes current_user but never fresh_user."""
    h = await make_harness("sqlite")
    add_fresh_routes(h.app, h.auth)
    pk = await h.create_user("ada")
    data: dict[str, Any] = {"_auth_uid": pk, "_auth_token": await h.token(pk)}
    if login_time is not None:
        data["_auth_at"] = login_time
    async with client_factory(h.app, cookies={COOKIE: seal(KEY_A, data, issued_at=START)}) as client:
        assert (await client.get("/me")).status_code == 200
        assert_stale(await client.get("/account"))


@pytest.mark.case("Q5")
async def test_a_dead_session_gets_the_plain_401_not_the_fresh_one(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A revoked session on a fresh-login route: the ordinary 401 and a deletion cookie, whatever its login time."""
    h = await make_harness(db_kind)
    add_fresh_routes(h.app, h.auth)
    pk = await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        await h.set_columns(pk, session_token=new_session_token())
        h.statements.clear()
        response = await client.get("/account")
        assert response.status_code == 401
        assert response.json() == {"detail": "Not authenticated"}
        assert STALE_ERROR not in response.headers["www-authenticate"]
        assert "max-age=0" in response.headers["set-cookie"].lower()
        assert len(h.statements) == 1


@pytest.mark.case("Q1")
async def test_device_mode_fresh_login_and_confirm(
    db_kind: str, make_device_harness: DeviceHarnessFactory, client_factory: ClientFactory
) -> None:
    """In device mode, login_device stamps the login time, the joined statement is the only one, confirm re-stamps."""
    h = await make_device_harness(db_kind)
    add_fresh_routes(h.app, h.auth)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        h.statements.clear()
        assert (await client.get("/account")).json() == {"name": "ada"}
        assert len(h.statements) == 1 and h.Device.__tablename__ in h.statements[0], h.statements
        h.clock.advance(MAX_AGE + 1)
        h.statements.clear()
        assert_stale(await client.get("/account"))
        assert len(h.statements) == 1, h.statements
        assert (await client.post("/confirm/initial")).status_code == 200
        assert (await client.get("/account")).status_code == 200


@pytest.mark.parametrize("max_age", [0, -5, 1.5, True, None])
def test_max_age_must_be_positive_whole_seconds(max_age: Any) -> None:
    """fresh_user refuses a max_age that is not a positive whole number of seconds, at import time."""
    _, user = make_user_model("int", "users_config")
    auth: SessionAuth[Any] = SessionAuth(user, no_db)
    with pytest.raises(ConfigurationError):
        auth.fresh_user(max_age=max_age)


async def test_fresh_routes_show_the_security_scheme_in_openapi(make_harness: HarnessFactory) -> None:
    """A fresh-login route is documented with the session cookie scheme, as current_user's routes are."""
    h = await make_harness("sqlite")
    add_fresh_routes(h.app, h.auth)
    operation = h.app.openapi()["paths"]["/account"]["get"]
    assert operation["security"] == [{"SessionCookie": []}]


async def no_db() -> AsyncSession:  # pragma: no cover - configuration tests never reach the database
    raise AssertionError("not called")
