"""ASGI shapes the middleware must pass through: streaming bodies, bare start messages, lifespan, WebSocket, mounts.

Catalogue F10 (the cookie only in the start message), F11 (lifespan and the WebSocket handshake)
and F12 (a sub-app mounted under a narrowed Path).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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
    bad = await websocket_session(websocket_app(), b"session=invalid")
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
