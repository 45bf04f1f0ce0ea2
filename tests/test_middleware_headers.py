"""Which responses carry Set-Cookie (and Vary) for what the app did: server errors, a replaced session, stacking.

A 5xx or an exception never reseals nor deletes (H8); an app that replaces ``scope["session"]``
with a plain dict gets that dict sealed (or the cookie deleted); two stacked instances keep their
own cookie, key and scope key. The attributes of the cookie itself are tested in test_cookie.py.
"""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sealed_sessions import SessionMiddleware
from sealed_sessions.testing import seal, unseal
from tests.helpers import COOKIE, KEY_A, KEY_B, ClientFactory, call, cookie, session_app


@pytest.mark.case("H8")
@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("action", ["write", "clear", "old-key"])
async def test_server_error_neither_reseals_nor_deletes(status: int, action: str) -> None:
    """A 5xx response carries no Set-Cookie, whatever the app did to the session."""

    async def endpoint(request: Request) -> Response:
        if action == "write":
            request.session["n"] = 99
        elif action == "clear":
            request.session.clear()
        return PlainTextResponse("failed", status_code=status)

    app = Starlette(
        routes=[Route("/", endpoint)],
        middleware=[Middleware(SessionMiddleware, secret_key=[KEY_A, KEY_B])],
    )
    value = seal(KEY_B if action == "old-key" else KEY_A, {"n": 1})
    result = await call(app, cookie(value))
    assert result.status == status
    assert result.set_cookie == []
    ok = await call(session_app(secret_key=[KEY_A, KEY_B]), cookie(value), path="/clear")
    assert ok.set_cookie  # the same change on a 200 would have sent a cookie


@pytest.mark.case("H8")
async def test_app_exception_ends_in_a_500_without_set_cookie() -> None:
    """An exception after writing the session ends in a 500 without Set-Cookie."""

    async def endpoint(request: Request) -> Response:
        request.session["n"] = 1
        raise RuntimeError("boom")

    app = Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    result = await call(app, raise_app_exceptions=False)
    assert result.status == 500
    assert result.set_cookie == []


def stacked_app() -> Starlette:
    async def endpoint(request: Request) -> Response:
        admin = request.scope["admin_session"]
        if request.method == "POST":
            request.session["who"] = "user"
            admin["who"] = "admin"
        return JSONResponse({"user": dict(request.session), "admin": dict(admin)})

    return Starlette(
        routes=[Route("/", endpoint, methods=["GET", "POST"])],
        middleware=[
            Middleware(SessionMiddleware, secret_key=KEY_A),  # the default name, COOKIE
            Middleware(SessionMiddleware, secret_key=KEY_B, session_cookie="admin", scope_key="admin_session"),
        ],
    )


async def test_stacked_middlewares_keep_separate_sessions(client_factory: ClientFactory) -> None:
    """Two stacked instances with their own name, key and scope key both round-trip their session."""
    async with client_factory(stacked_app()) as client:
        response = await client.post("/")
        assert sorted(c.split("=", 1)[0] for c in response.headers.get_list("set-cookie")) == [COOKIE, "admin"]
        assert response.headers.get_list("vary") == ["Cookie"]
        assert (await client.get("/")).json() == {"user": {"who": "user"}, "admin": {"who": "admin"}}
        user, admin = client.cookies[COOKIE], client.cookies["admin"]
    assert unseal(KEY_A, user).data == {"who": "user"}
    assert unseal(KEY_B, admin, session_cookie="admin").data == {"who": "admin"}
    swapped = await call(stacked_app(), f"{cookie(admin)}; {cookie(user, 'admin')}")
    assert swapped.body == b'{"user":{},"admin":{}}'


async def test_stacked_instances_sharing_a_scope_key_never_copy_data_between_cookies() -> None:
    """Two instances misconfigured with one scope_key: the outer cookie never receives the inner session's data."""

    async def write(request: Request) -> Response:
        request.session["inner_only"] = 1
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/write", write)])
    app.add_middleware(SessionMiddleware, secret_key=KEY_A, session_cookie="inner")
    app.add_middleware(SessionMiddleware, secret_key=KEY_B, session_cookie="outer")
    result = await call(app, path="/write")
    names = [header.split("=", 1)[0] for header in result.set_cookie]
    assert names == ["inner"]


async def test_replacing_the_scope_session_with_an_empty_dict_logs_out() -> None:
    """An app that logs out with ``scope["session"] = {}`` (as Starlette allows) gets a deletion cookie."""

    async def logout(request: Request) -> Response:
        request.scope["session"] = {}
        return PlainTextResponse("bye")

    app = Starlette(routes=[Route("/logout", logout)])
    app.add_middleware(SessionMiddleware, secret_key=KEY_A)
    result = await call(app, cookie(seal(KEY_A, {"user": 7})), path="/logout")
    (header,) = result.set_cookie
    assert header.startswith(f"{COOKIE}=; path=/; expires=Thu, 01 Jan 1970")


async def test_replacing_the_scope_session_with_data_seals_that_data() -> None:
    """A replacement dict's contents become the session, checked as JSON like any write."""

    async def swap(request: Request) -> Response:
        request.scope["session"] = {"user": 8, "role": "admin"}
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/swap", swap)])
    app.add_middleware(SessionMiddleware, secret_key=KEY_A)
    result = await call(app, path="/swap")
    assert unseal(KEY_A, result.cookie_value()).data == {"user": 8, "role": "admin"}


@pytest.mark.case("F7")
async def test_a_response_object_shared_between_requests_never_carries_another_users_cookie() -> None:
    """One module-level Response returned to everyone: the cookie set for one request is not sent to the next."""
    shared = PlainTextResponse("ok")

    async def login(request: Request) -> Response:
        request.session["user"] = request.path_params["u"]
        return shared

    async def anonymous(request: Request) -> Response:
        return shared

    app = Starlette(
        routes=[Route("/login/{u}", login), Route("/", anonymous)],
        middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)],
    )
    alice = await call(app, path="/login/alice")
    assert len(alice.set_cookie) == 1
    bob = await call(app)
    assert bob.set_cookie == []
    assert shared.raw_headers == [(b"content-length", b"2"), (b"content-type", b"text/plain; charset=utf-8")]
