"""The WebSocket form of the check: accepted with a valid session, closed with 1008 without (F11, G3)."""

from typing import Any

from starlette.types import ASGIApp, Message

from .conftest import HarnessFactory


async def run_websocket(app: ASGIApp, cookie: str | None) -> list[Message]:
    """Drive one WebSocket connection through the ASGI app directly; return what the app sent."""
    headers = [(b"host", b"testserver")]
    if cookie is not None:
        headers.append((b"cookie", f"session={cookie}".encode()))
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "wss",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
        "subprotocols": [],
        "state": {},
    }
    incoming: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_websocket_accepts_a_valid_session(
    db_kind: str, make_harness: HarnessFactory, client_factory: Any
) -> None:
    """A handshake carrying a live session is accepted and sees the user."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        cookie = client.cookies["session"]
    h.statements.clear()
    sent = await run_websocket(h.app, cookie)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == "ada"
    assert len(h.statements) == 1


async def test_websocket_without_session_closes_1008(db_kind: str, make_harness: HarnessFactory) -> None:
    """A handshake with no session is closed with 1008 before acceptance, without a query."""
    h = await make_harness(db_kind)
    sent = await run_websocket(h.app, None)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "Not authenticated"}]
    assert h.statements == []


async def test_g3_websocket_with_revoked_session_closes_1008(
    db_kind: str, make_harness: HarnessFactory, client_factory: Any
) -> None:
    """A handshake whose session was revoked is closed with 1008."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        cookie = client.cookies["session"]
        await client.post("/logout-everywhere")
    sent = await run_websocket(h.app, cookie)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "Not authenticated"}]
