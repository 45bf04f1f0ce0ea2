"""ASGI shapes the middleware must pass through: streaming bodies, raw start messages, lifespan, WebSocket, mounts.

Catalogue F10 (the cookie only in the start message), F11 (lifespan and the WebSocket handshake),
F12 (a sub-app mounted under a narrowed Path) and F14, F15 (a raw app's cache headers in any
letter case).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from sealed_sessions import SessionMiddleware
from sealed_sessions.testing import seal, unseal
from tests.helpers import KEY_A, ClientFactory, call, cookie, session_app

CACHE_HEADERS = ("cache-control", "cdn-cache-control", "surrogate-control")


@pytest.mark.case("F10")
async def test_streaming_response_gets_its_cookie_in_the_start_message() -> None:
    """A streaming response gets Set-Cookie in its start message, and its body chunks pass unchanged."""

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"one ", b"two ", b"three"):
            yield part

    async def endpoint(request: Request) -> Response:
        request.session["streamed"] = True
        return StreamingResponse(chunks())

    app = Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    result = await call(app)
    assert result.body == b"one two three"
    assert unseal(KEY_A, result.cookie_value()).data == {"streamed": True}
    start, *rest = result.messages
    assert any(k == b"set-cookie" for k, _ in start["headers"])
    assert len(rest) >= 3
    assert all(m["type"] == "http.response.body" and set(m) <= {"type", "body", "more_body"} for m in rest)


async def test_raw_asgi_start_message_without_headers() -> None:
    """A raw ASGI app whose start message has no ``headers`` key still gets its cookie and Vary."""

    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["raw"] = 1
        scope["session"].mark_accessed()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"ok"})

    result = await call(SessionMiddleware(raw_app, secret_key=KEY_A))
    assert unseal(KEY_A, result.cookie_value()).data == {"raw": 1}
    assert result.header(b"vary") == [b"Cookie"]


@pytest.mark.case("F14", "F15")
@pytest.mark.parametrize("spelling", [str.lower, str.title, str.upper], ids=["lower", "title", "upper"])
async def test_raw_asgi_cache_headers_in_any_case_keep_the_cookie_out_of_shared_caches(
    spelling: Callable[[str], str],
) -> None:
    """A raw app's ``Cache-Control: public`` and CDN cache headers, however spelled, end private and no-store."""

    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["raw"] = 1
        headers = [(spelling(name).encode(), b"public, max-age=600") for name in CACHE_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    result = await call(SessionMiddleware(raw_app, secret_key=KEY_A))
    assert unseal(KEY_A, result.cookie_value()).data == {"raw": 1}
    assert result.header(b"cache-control") == [b"max-age=600, private"]
    assert result.header(b"cdn-cache-control") == result.header(b"surrogate-control") == [b"no-store"]


@pytest.mark.case("F11")
async def test_lifespan_events_pass_through() -> None:
    """Lifespan startup and shutdown events reach the app through the middleware."""
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(lifespan=lifespan, middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    async with LifespanManager(app):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


async def websocket_session(app: ASGIApp, header: bytes | None) -> list[Message]:
    """Open a WebSocket through ``app`` with ``header`` as its Cookie and collect what it sends."""
    headers = [(b"host", b"testserver")] + ([(b"cookie", header)] if header is not None else [])
    scope: Scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "wss",
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
        "subprotocols": [],
    }
    incoming: list[Message] = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def websocket_app() -> Starlette:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(dict(websocket.session))
        await websocket.close()

    return Starlette(
        routes=[WebSocketRoute("/ws", endpoint)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)]
    )


@pytest.mark.case("F11")
async def test_websocket_handshake_sees_the_session() -> None:
    """A WebSocket endpoint reads the session from the handshake's cookie; a bad cookie reads as empty."""
    sent = await websocket_session(websocket_app(), cookie(seal(KEY_A, {"user": 1})).encode())
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == '{"user":1}'
    assert all("set-cookie" not in dict(m.get("headers", [])) for m in sent)
    bad = await websocket_session(websocket_app(), cookie("invalid").encode())
    assert bad[1]["text"] == "{}"


@pytest.mark.case("F12")
async def test_mounted_sub_app_scopes_its_cookie_to_its_path(client_factory: ClientFactory) -> None:
    """A sub-app under /sub with path='/sub' sets a cookie the client returns only below /sub."""

    async def peek(request: Request) -> Response:
        return PlainTextResponse(request.headers.get("cookie", ""))

    sub = session_app(path="/sub")
    app = Starlette(routes=[Mount("/sub", app=sub), Route("/peek", peek)])
    async with client_factory(app) as client:
        response = await client.get("/sub/write")
        assert "path=/sub;" in response.headers["set-cookie"]
        assert (await client.get("/sub/")).json() == {"n": 1}
        assert (await client.get("/peek")).text == ""
