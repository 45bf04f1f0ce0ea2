"""Deep change detection: no nested write is ever missed, whatever reaches the nested value and
however, while a request whose session holds only plain values encodes nothing."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sealed_sessions import Session, SessionDataError, SessionMiddleware
from sealed_sessions import _middleware as middleware_module
from sealed_sessions._payload import dump_data
from sealed_sessions.testing import seal, unseal
from tests.helpers import KEY_A, call, cookie

Read = Callable[[Session, str], Any]

# Ways to reach the value of a key (or a copy sharing the values), through the dict API and around it.
READS_BY_NAME: dict[str, Read] = {
    "getitem": lambda s, k: s[k],
    "get": lambda s, k: s.get(k),
    "setdefault existing": lambda s, k: s.setdefault(k, []),
    "values": lambda s, k: list(s.values()),
    "items": lambda s, k: list(s.items()),
    "copy": lambda s, k: s.copy(),
    "dict()": lambda s, k: dict(s),
    "unpacking": lambda s, k: {**s},
    "or": lambda s, k: s | {},
    "ror": lambda s, k: {} | s,
    "copy.copy": lambda s, k: copy.copy(s),
    "dict.get, around the API": lambda s, k: dict.get(s, k),
    "dict.values, around the API": lambda s, k: list(dict.values(s)),
}


def counting_dumps(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Count the middleware's JSON encodings."""
    calls: list[object] = []

    def counting(data: Any) -> bytes:
        calls.append(data)
        return dump_data(data)

    monkeypatch.setattr(middleware_module, "dump_data", counting)
    return calls


def app_doing(action: Callable[[Request], object]) -> Starlette:
    async def endpoint(request: Request) -> PlainTextResponse:
        action(request)
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])


async def test_a_plain_session_read_encodes_nothing_and_a_nested_one_is_compared_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plain values only: no JSON encoding; a session holding a list, even unread: one encoding, no Set-Cookie."""
    calls = counting_dumps(monkeypatch)
    result = await call(app_doing(lambda r: r.session.get("user")), cookie(seal(KEY_A, {"user": 1, "theme": "x"})))
    assert (calls, result.set_cookie, result.header(b"vary")) == ([], [], [b"Cookie"])
    result = await call(app_doing(lambda r: r.session.get("user")), cookie(seal(KEY_A, {"user": 1, "cart": [1]})))
    assert (len(calls), result.set_cookie) == (1, [])


@pytest.mark.case("B10")
async def test_a_change_through_a_c_extension_view_is_saved() -> None:
    """pydantic validating the session into a dataclass with ``Any`` fields reads the dict's storage directly
    (no method of ours runs); a logout done by clearing what it returned is still sealed."""

    @dataclasses.dataclass
    class View:
        auth: Any = None
        cart: Any = None

    def logout(request: Request) -> None:
        view = TypeAdapter(View).validate_python(request.session)
        view.auth.clear()
        view.cart.append("apple")

    result = await call(app_doing(logout), cookie(seal(KEY_A, {"auth": {"uid": 1, "token": "t"}, "cart": []})))
    assert unseal(KEY_A, result.cookie_value()).data == {"auth": {}, "cart": ["apple"]}


async def test_a_cycle_is_a_session_data_error_even_with_a_raised_recursion_limit() -> None:
    """A session made to hold itself fails that request with SessionDataError, never a crash of the process."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:

        def cycle(request: Request) -> None:
            cart = request.session.setdefault("cart", [])
            cart.append(cart)

        with pytest.raises(SessionDataError):
            await call(app_doing(cycle), cookie(seal(KEY_A, {"user": 1})))
    finally:
        sys.setrecursionlimit(previous)


async def test_a_container_stored_then_changed_in_place_is_saved() -> None:
    """``cart = []; session["cart"] = cart; cart.append(x)`` saves the appended item."""

    def store_then_change(request: Request) -> None:
        cart: list[int] = []
        request.session["cart"] = cart
        cart.append(5)

    result = await call(app_doing(store_then_change), cookie(seal(KEY_A, {"user": 1})))
    assert unseal(KEY_A, result.cookie_value()).data == {"user": 1, "cart": [5]}


# -- the property: no nested write is ever missed ----------------------------------------------------------

json_leaf = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=4)
json_tree = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)
session_data = st.fixed_dictionaries(
    {"cart": st.lists(json_tree, max_size=3), "prefs": st.dictionaries(st.text(max_size=3), json_tree, max_size=3)},
    optional={"a": json_tree, "b": json_leaf},
)
READS = [*sorted(READS_BY_NAME), "nothing"]


def containers_in(value: object) -> list[list[Any] | dict[str, Any]]:
    """Every list and dict inside ``value``, ``value`` included."""
    found: list[list[Any] | dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):  # items() pairs
            stack.extend(item)
        elif isinstance(item, list):
            found.append(item)
            stack.extend(item)
        elif isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
    return found


def mutate(container: list[Any] | dict[str, Any], draw: Callable[..., Any]) -> None:
    """One in-place change that may or may not alter the data (appending, overwriting with the same, clearing)."""
    value = draw(json_leaf)
    if isinstance(container, list):
        action = draw(st.sampled_from(["append", "set", "clear"]))
        if action == "append":
            container.append(value)
        elif action == "set" and container:
            container[draw(st.integers(0, len(container) - 1))] = value
        else:
            container.clear()
    else:
        action = draw(st.sampled_from(["set", "pop", "clear"]))
        if action == "set":
            container[draw(st.sampled_from(["x", "y"]))] = value
        elif action == "pop" and container:
            container.pop(next(iter(container)))
        else:
            container.clear()


@pytest.mark.case("B10")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=session_data, choices=st.data())
def test_no_nested_write_is_ever_missed(data: dict[str, Any], choices: st.DataObject) -> None:
    """Whatever the app reads and changes in place, through the dict API or around it, a changed session is
    resealed with exactly the new data, and an unchanged one is not."""
    final: dict[str, Any] = {}

    def action(request: Request) -> None:
        session: Session = request.session  # type: ignore[assignment]
        for _ in range(choices.draw(st.integers(1, 3), label="steps")):
            how = choices.draw(st.sampled_from(READS), label="read")
            if how == "nothing" or not session:
                continue
            key = choices.draw(st.sampled_from(sorted(dict.keys(session))), label="key")
            got = READS_BY_NAME[how](session, key)
            candidates = containers_in(got)
            if candidates:
                mutate(choices.draw(st.sampled_from(candidates), label="container"), choices.draw)
        final.update(json.loads(json.dumps(dict(dict.items(session)))))

    result = asyncio.run(call(app_doing(action), cookie(seal(KEY_A, data))))
    if json.dumps(final) == json.dumps(data):  # as JSON: True and 1 are equal in Python, not in the cookie
        assert result.set_cookie == []
    elif not final:
        assert result.cookie_value() == ""  # emptied: the deletion cookie
    else:
        assert json.dumps(unseal(KEY_A, result.cookie_value()).data) == json.dumps(final)
