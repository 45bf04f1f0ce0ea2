"""The WebSocket form of the check: accepted with a valid session, closed with 1008 without (F11, G3)."""

import pytest

from tests.helpers import COOKIE, ClientFactory

from .harness import HarnessFactory, run_websocket


@pytest.mark.case("F11")
async def test_websocket_accepts_a_valid_session(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A handshake carrying a live session is accepted and sees the user."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        cookie = client.cookies[COOKIE]
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


@pytest.mark.case("G3")
async def test_websocket_with_revoked_session_closes_1008(
    db_kind: str, make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """A handshake whose session was revoked is closed with 1008."""
    h = await make_harness(db_kind)
    await h.create_user("ada")
    async with client_factory(h.app) as client:
        await client.post("/login/ada")
        cookie = client.cookies[COOKIE]
        assert (await run_websocket(h.app, cookie))[0]["type"] == "websocket.accept"  # live until the revoke
        await client.post("/logout-everywhere")
    sent = await run_websocket(h.app, cookie)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "Not authenticated"}]
