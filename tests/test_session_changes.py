"""Change detection without encoding: which uses of the session hand out a dict or list, and that
no nested write is ever missed while a request that hands none out encodes nothing."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sealed_sessions import Session, SessionMiddleware
from sealed_sessions import _middleware as middleware_module
from sealed_sessions._payload import dump_data
from sealed_sessions.testing import seal, unseal
from tests.helpers import KEY_A, call, cookie

Use = Callable[[Session], Any]
Read = Callable[[Session, str], Any]

# Every way the dict API hands the application the value of a key (or a copy sharing the values).
HANDING_OUT: dict[str, Read] = {
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
}


def opened_session(data: dict[str, Any]) -> Session:
    """A session as the middleware builds it from a cookie holding ``data``."""
    return Session(opened=unseal(KEY_A, seal(KEY_A, data)))


@pytest.mark.case("B10")
@pytest.mark.parametrize("read", HANDING_OUT.values(), ids=HANDING_OUT.keys())
def test_every_way_of_reading_a_list_marks_the_session_exposed(read: Read) -> None:
    """Any dict-API read that gives the application the cart list (or a copy sharing it) sets ``exposed``."""
    session = opened_session({"cart": [1], "user": 7})
    assert not session.exposed
    read(session, "cart")
    assert session.exposed


@pytest.mark.parametrize(
    "use",
    [
        lambda s: s["user"],
        lambda s: s.get("user"),
        lambda s: s.get("missing"),
        lambda s: "cart" in s,
        lambda s: list(s),
        lambda s: list(s.keys()),
        lambda s: len(s),
        lambda s: s.pop("user"),
        lambda s: s.__setitem__("user", 8),
        lambda s: s.update(user=9),
    ],
    ids=["getitem plain", "get plain", "get missing", "in", "iter", "keys", "len", "pop", "set plain", "update plain"],
)
def test_plain_uses_leave_the_session_unexposed(use: Use) -> None:
    """Reading or writing plain values, keys and lengths hands out no container: ``exposed`` stays false."""
    session = opened_session({"cart": [1], "user": 7})
    use(session)
    assert not session.exposed


@pytest.mark.parametrize(
    "use",
    [
        lambda s: s.__setitem__("cart", []),
        lambda s: s.update(cart=[]),
        lambda s: s.setdefault("new", {}),
        lambda s: s.__ior__({"cart": []}),
    ],
    ids=["set", "update", "setdefault new", "ior"],
)
def test_storing_a_container_marks_the_session_exposed(use: Use) -> None:
    """A list or dict stored in the session may still be changed in place by the application: ``exposed``."""
    session = opened_session({"user": 7})
    use(session)
    assert session.exposed


def test_data_given_to_the_constructor_counts_as_exposed() -> None:
    """``Session(data)`` values were never checked or handed over through the API: they count as exposed."""
    assert Session({"a": 1}).exposed
    assert not Session().exposed


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


async def test_a_request_reading_plain_values_of_a_nested_session_encodes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A session holding a cart, read only for its user id: no JSON encoding, no Set-Cookie, Vary still sent."""
    calls = counting_dumps(monkeypatch)
    result = await call(app_doing(lambda r: r.session.get("user")), cookie(seal(KEY_A, {"user": 1, "cart": [1]})))
    assert calls == []
    assert result.set_cookie == []
    assert result.header(b"vary") == [b"Cookie"]


async def test_a_request_handed_the_cart_compares_once_and_sends_nothing_if_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading the cart without changing it costs one encoding, compared with the cookie's: no Set-Cookie."""
    calls = counting_dumps(monkeypatch)
    result = await call(app_doing(lambda r: r.session["cart"]), cookie(seal(KEY_A, {"user": 1, "cart": [1]})))
    assert len(calls) == 1
    assert result.set_cookie == []


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
READS = [*sorted(HANDING_OUT), "nothing"]


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
    """Whatever the app reads and changes in place through the dict API, a changed session is resealed with
    exactly the new data, and an unchanged one is not."""
    final: dict[str, Any] = {}

    def action(request: Request) -> None:
        session: Session = request.session  # type: ignore[assignment]
        for _ in range(choices.draw(st.integers(1, 3), label="steps")):
            how = choices.draw(st.sampled_from(READS), label="read")
            if how == "nothing" or not session:
                continue
            key = choices.draw(st.sampled_from(sorted(dict.keys(session))), label="key")
            got = HANDING_OUT[how](session, key)
            candidates = containers_in(got)
            if candidates:
                mutate(choices.draw(st.sampled_from(candidates), label="container"), choices.draw)
        final.update(json.loads(json.dumps(dict(dict.items(session)))))  # around the dict API: flags nothing

    result = asyncio.run(call(app_doing(action), cookie(seal(KEY_A, data))))
    if json.dumps(final) == json.dumps(data):  # as JSON: True and 1 are equal in Python, not in the cookie
        assert result.set_cookie == []
    elif not final:
        assert result.cookie_value() == ""  # emptied: the deletion cookie
    else:
        assert json.dumps(unseal(KEY_A, result.cookie_value()).data) == json.dumps(final)
