"""Flash messages: kept in the session for the next page, shown once, bounded."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sealed_sessions import SessionDataError, SessionMiddleware, flash, get_flashed_messages
from sealed_sessions._flash import FLASH_KEY, MAX_CATEGORY, MAX_FLASHES, MAX_MESSAGE, FlashMessage
from sealed_sessions.testing import unseal
from tests.helpers import COOKIE, KEY_A, https_client


async def _change_password(request: Request) -> Response:
    flash(request, "Password changed", "success")
    return RedirectResponse("/", status_code=303)


async def _page(request: Request) -> Response:
    return JSONResponse([list(m) for m in get_flashed_messages(request)])


def app() -> Starlette:
    return Starlette(
        routes=[Route("/", _page), Route("/password", _change_password, methods=["POST"])],
        middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)],
    )


async def test_a_message_reaches_the_next_page_once() -> None:
    """A message flashed before a redirect is shown on the next page, then gone."""
    async with https_client(app()) as client:
        response = await client.post("/password", follow_redirects=True)
        assert response.json() == [["Password changed", "success"]]
        assert (await client.get("/")).json() == []


async def test_the_message_travels_sealed() -> None:
    """The flashed message is in the sealed cookie, not readable on the wire."""
    async with https_client(app()) as client:
        response = await client.post("/password")
        value = response.cookies[COOKIE]
    assert b"Password" not in value.encode()
    assert unseal(KEY_A, value).data == {FLASH_KEY: [["success", "Password changed"]]}


async def test_reading_when_nothing_waits_sets_no_cookie() -> None:
    """A page that looks for messages when there are none does not touch the cookie."""
    async with https_client(app()) as client:
        response = await client.get("/")
    assert "set-cookie" not in response.headers


def test_order_and_categories() -> None:
    """Messages come back oldest first with their categories; a category filter leaves the rest waiting."""
    session: dict[str, Any] = {}
    flash(session, "one")
    flash(session, "two", "error")
    flash(session, "three")
    assert get_flashed_messages(session, categories=["error"]) == [FlashMessage("two", "error")]
    assert get_flashed_messages(session) == [FlashMessage("one", "info"), FlashMessage("three", "info")]
    assert session == {}


def test_at_most_max_flashes_wait_and_the_oldest_go_first() -> None:
    """Flashing more than MAX_FLASHES keeps only the newest MAX_FLASHES."""
    session: dict[str, Any] = {}
    for i in range(MAX_FLASHES + 5):
        flash(session, f"m{i}")
    messages = get_flashed_messages(session)
    assert [m.message for m in messages] == [f"m{i}" for i in range(5, MAX_FLASHES + 5)]


@pytest.mark.parametrize(
    ("message", "category"),
    [
        pytest.param("x" * (MAX_MESSAGE + 1), "info", id="long-message"),
        pytest.param("ok", "c" * (MAX_CATEGORY + 1), id="long-category"),
        pytest.param(b"bytes", "info", id="bytes-message"),
        pytest.param("ok", None, id="none-category"),
    ],
)
def test_oversized_or_non_text_messages_are_refused(message: Any, category: Any) -> None:
    """A message or category that is not short text raises SessionDataError, and nothing is stored."""
    session: dict[str, Any] = {}
    with pytest.raises(SessionDataError):
        flash(session, message, category)
    assert session == {}


@pytest.mark.parametrize(
    "stored",
    [
        "not a list",
        [["info"]],
        [[1, "x"]],
        [["info", 2]],
        [["info", "x" * (MAX_MESSAGE + 1)]],
        [{"category": "info", "message": "x"}],
    ],
)
def test_foreign_data_under_the_key_is_dropped(stored: Any) -> None:
    """Malformed entries under the flash key are dropped on read instead of raising."""
    session: dict[str, Any] = {FLASH_KEY: stored}
    assert get_flashed_messages(session) == []
    assert session == {}
    flash(session, "fine")
    assert get_flashed_messages(session) == [FlashMessage("fine", "info")]


def test_a_single_category_string_is_refused() -> None:
    """categories="error" (a str, not a list) raises instead of matching the letters e, r and o."""
    session: dict[str, Any] = {}
    flash(session, "boom", "error")
    with pytest.raises(SessionDataError, match=r"categories=\['error'\]"):
        get_flashed_messages(session, categories="error")
    assert get_flashed_messages(session, categories=["error"]) == [FlashMessage("boom", "error")]
