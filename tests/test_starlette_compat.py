"""Each behaviour Starlette's own tests/middleware/test_session.py checks, against our middleware.

Three differences are mapped, as the README states: ``https_only`` defaults to True (so the
"insecure" client here is an explicit ``https_only=False`` app, or plain http against the
default), the default cookie name is ``__Host-session`` where its rules hold (``session`` with a
domain or a path, as Starlette), and the secret must be strong (``KEY_A`` instead of ``"example"``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from sealed_sessions import ConfigurationError, Session, SessionMiddleware
from tests.helpers import COOKIE, KEY_A, ClientFactory

MAX_AGE_RE = re.compile(r"; Max-Age=([0-9]+);")
PATH_RE = re.compile(r"; path=(\S+);")
VALUE_RE = re.compile(r"session=([^;]*);")


async def view_session(request: StarletteRequest) -> JSONResponse:
    return JSONResponse({"session": request.session})


async def update_session(request: StarletteRequest) -> JSONResponse:
    request.session.update(await request.json())
    return JSONResponse({"session": request.session})


async def clear_session(request: StarletteRequest) -> JSONResponse:
    request.session.clear()
    return JSONResponse({"session": request.session})


def make_app(**options: Any) -> Starlette:
    options.setdefault("secret_key", KEY_A)
    return Starlette(
        routes=[
            Route("/view_session", view_session),
            Route("/update_session", update_session, methods=["POST"]),
            Route("/clear_session", clear_session, methods=["POST"]),
        ],
        middleware=[Middleware(SessionMiddleware, **options)],
    )


async def test_session_round_trip(client_factory: ClientFactory) -> None:
    """A session written in one request is read back in the next, and clearing it empties it."""
    async with client_factory(make_app()) as client:
        assert (await client.get("/view_session")).json() == {"session": {}}
        response = await client.post("/update_session", json={"some": "data"})
        assert response.json() == {"session": {"some": "data"}}
        assert (await client.get("/view_session")).json() == {"session": {"some": "data"}}
        assert (await client.post("/clear_session")).json() == {"session": {}}
        assert (await client.get("/view_session")).json() == {"session": {}}


async def test_max_age_attribute_in_starlette_format(client_factory: ClientFactory) -> None:
    """The default cookie carries ``; Max-Age=1209600;`` exactly where Starlette's regex finds it."""
    async with client_factory(make_app()) as client:
        response = await client.post("/update_session", json={"some": "data"})
    match = MAX_AGE_RE.search(response.headers["set-cookie"])
    assert match is not None
    assert int(match[1]) == 14 * 24 * 3600


async def test_negative_max_age_expires_at_once(client_factory: ClientFactory) -> None:
    """With ``max_age=-1`` a cookie replayed by hand is already expired: the session is empty."""
    app = make_app(max_age=-1)
    async with client_factory(app) as client:
        response = await client.post("/update_session", json={"some": "data"})
        assert response.json() == {"session": {"some": "data"}}
    match = VALUE_RE.search(response.headers["set-cookie"])
    assert match is not None
    async with client_factory(app, cookies={COOKIE: match[1]}) as client:
        assert (await client.get("/view_session")).json() == {"session": {}}


async def test_https_only_cookie_not_returned_over_http(client_factory: ClientFactory) -> None:
    """A Secure cookie works over https and is never sent back by a client over plain http."""
    app = make_app(https_only=True)
    async with client_factory(app, base_url="http://testserver") as insecure:
        assert (await insecure.get("/view_session")).json() == {"session": {}}
        response = await insecure.post("/update_session", json={"some": "data"})
        assert response.json() == {"session": {"some": "data"}}
        assert "secure" in response.headers["set-cookie"].lower()
        assert (await insecure.get("/view_session")).json() == {"session": {}}
    async with client_factory(app) as secure:
        assert (await secure.get("/view_session")).json() == {"session": {}}
        await secure.post("/update_session", json={"some": "data"})
        assert (await secure.get("/view_session")).json() == {"session": {"some": "data"}}
        assert (await secure.post("/clear_session")).json() == {"session": {}}
        assert (await secure.get("/view_session")).json() == {"session": {}}


async def test_https_only_is_the_default(client_factory: ClientFactory) -> None:
    """Mapped difference: without ``https_only`` our cookie is Secure, where Starlette's is not."""
    async with client_factory(make_app()) as client:
        response = await client.post("/update_session", json={"some": "data"})
    attributes = [a.strip().lower() for a in response.headers["set-cookie"].split(";")]
    assert "secure" in attributes


def test_weak_secret_refused() -> None:
    """Mapped difference: Starlette's test secret ``"example"`` is refused at construction."""
    with pytest.raises(ConfigurationError, match="secret"):
        SessionMiddleware(make_app(), secret_key="example")


async def test_cookie_path_for_mounted_sub_app(client_factory: ClientFactory) -> None:
    """A sub-app mounted at ``/second_app`` with ``path="/second_app"`` scopes the cookie there."""
    second_app = make_app(path="/second_app")
    app = Starlette(routes=[Mount("/second_app", app=second_app)])
    async with client_factory(app) as client:
        response = await client.post("/second_app/update_session", json={"some": "data"})
    assert response.status_code == 200
    match = PATH_RE.search(response.headers["set-cookie"])
    assert match is not None
    assert match[1] == "/second_app"


async def test_invalid_cookie_gives_empty_session(client_factory: ClientFactory) -> None:
    """A bogus cookie value neither raises nor 500s: the session is simply empty."""
    app = make_app()
    async with client_factory(app) as client:
        assert (await client.post("/update_session", json={"some": "data"})).status_code == 200
    async with client_factory(app, cookies={COOKIE: "invalid"}) as client:
        response = await client.get("/view_session")
    assert response.status_code == 200
    assert response.json() == {"session": {}}


async def test_max_age_none_is_a_browser_session_cookie(client_factory: ClientFactory) -> None:
    """``max_age=None`` sends no Max-Age, and deleting the cookie client-side ends the session."""
    async with client_factory(make_app(max_age=None)) as client:
        response = await client.post("/update_session", json={"some": "data"})
        assert response.json() == {"session": {"some": "data"}}
        assert "max-age" not in response.headers["set-cookie"].lower()
        assert (await client.get("/view_session")).json() == {"session": {"some": "data"}}
        client.cookies.delete(COOKIE)
        assert (await client.get("/view_session")).json() == {"session": {}}


async def test_domain_attribute(client_factory: ClientFactory) -> None:
    """``domain=".example.com"`` appears as Starlette spells it; testserver then never returns it."""
    async with client_factory(make_app(domain=".example.com")) as client:
        response = await client.post("/update_session", json={"some": "data"})
        assert "domain=.example.com" in response.headers["set-cookie"]
        client.cookies.delete("session")
        assert (await client.get("/view_session")).json() == {"session": {}}


async def test_set_cookie_layout_matches_starlette(client_factory: ClientFactory) -> None:
    """Our Set-Cookie lists the same attributes in the same order as Starlette's, value aside."""
    options: dict[str, Any] = {"https_only": True, "domain": "example.com", "same_site": "strict"}
    starlette_app = Starlette(
        routes=[Route("/update_session", update_session, methods=["POST"])],
        middleware=[Middleware(StarletteSessionMiddleware, secret_key="x" * 40, **options)],
    )
    async with client_factory(starlette_app) as client:
        theirs = (await client.post("/update_session", json={"a": 1})).headers["set-cookie"]
    async with client_factory(make_app(**options)) as client:
        ours = (await client.post("/update_session", json={"a": 1})).headers["set-cookie"]
    assert VALUE_RE.sub("session=X;", ours) == VALUE_RE.sub("session=X;", theirs)


async def test_accessed_and_modified_flags(client_factory: ClientFactory) -> None:
    """Starlette 1.x protocol: ``request.session`` marks accessed; only writes mark modified."""
    seen: dict[str, tuple[bool, bool]] = {}

    async def endpoint(request: StarletteRequest) -> Response:
        session = request.scope["session"]
        assert isinstance(session, Session)
        before = (session.accessed, session.modified)
        _ = request.session.get("n")
        after_read = (session.accessed, session.modified)
        request.session["n"] = 1
        seen.update(before=before, after_read=after_read, after_write=(session.accessed, session.modified))
        return Response("ok")

    app = Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    async with client_factory(app) as client:
        await client.get("/")
    assert seen == {"before": (False, False), "after_read": (True, False), "after_write": (True, True)}


def test_mark_accessed_and_mark_modified() -> None:
    """``mark_accessed()`` sets only accessed; ``mark_modified()`` sets both, as in Starlette."""
    session = Session()
    session.mark_accessed()
    assert (session.accessed, session.modified) == (True, False)
    other = Session()
    other.mark_modified()
    assert (other.accessed, other.modified) == (True, True)


async def test_fastapi_request_session(client_factory: ClientFactory) -> None:
    """In a FastAPI app ``request.session`` is our Session and survives between requests."""
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=KEY_A)

    @app.post("/count")
    async def count(request: Request) -> dict[str, Any]:
        request.session["n"] = request.session.get("n", 0) + 1
        return {"n": request.session["n"], "type": type(request.session).__name__}

    async with client_factory(app) as client:
        assert (await client.post("/count")).json() == {"n": 1, "type": "Session"}
        assert (await client.post("/count")).json() == {"n": 2, "type": "Session"}
