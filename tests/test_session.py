"""The session object: change tracking, deep changes, reset, per-session lifetime and write-time checks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sealed_sessions import ConfigurationError, Opened, Session, SessionDataError, SessionMiddleware
from sealed_sessions import _middleware as middleware_module
from sealed_sessions._payload import dump_data
from sealed_sessions.testing import seal, unseal
from tests.helpers import COOKIE, DAY, KEY_A, START, FakeClock, call, cookie, https_client, set_cookie_value

Action = Callable[[Request], None]


def app_running(action: Action, *, echo: bool = True, **options: Any) -> Starlette:
    """An app whose only route applies ``action`` to ``request.session`` and returns the session (or "ok")."""

    async def endpoint(request: Request) -> Response:
        action(request)
        return JSONResponse(dict(request.session)) if echo else PlainTextResponse("ok")

    options.setdefault("secret_key", KEY_A)
    return Starlette(routes=[Route("/", endpoint)], middleware=[Middleware(SessionMiddleware, **options)])


# -- deep change detection -------------------------------------------------------------------------------


async def test_nested_append_is_saved() -> None:
    """``request.session["cart"].append(x)`` changes nothing through the dict API and is still saved."""
    app = app_running(lambda r: r.session["cart"].append("apple"))
    result = await call(app, cookie(seal(KEY_A, {"cart": []})))
    assert unseal(KEY_A, result.cookie_value()).data == {"cart": ["apple"]}


async def test_nested_dict_change_is_saved() -> None:
    """A change two levels down in a nested dict is saved."""
    app = app_running(lambda r: r.session["prefs"]["ui"].update(theme="dark"))
    result = await call(app, cookie(seal(KEY_A, {"prefs": {"ui": {"theme": "light"}}})))
    assert unseal(KEY_A, result.cookie_value()).data == {"prefs": {"ui": {"theme": "dark"}}}


async def test_nested_change_through_the_scope_is_saved() -> None:
    """A nested change made through ``scope["session"]`` (no ``request.session``) is still saved."""
    app = app_running(lambda r: r.scope["session"]["cart"].append(1), echo=False)
    result = await call(app, cookie(seal(KEY_A, {"cart": []})))
    assert unseal(KEY_A, result.cookie_value()).data == {"cart": [1]}


@pytest.mark.parametrize(
    "data",
    [{"user": 1, "token": "abc"}, {"cart": [1, 2], "prefs": {"a": None}}, {"unicode": "é✓😀"}],
    ids=["scalars", "nested", "unicode"],
)
async def test_reading_never_writes(data: dict[str, Any]) -> None:
    """Reading every value, nested ones included, sends no Set-Cookie."""

    def read_all(r: Request) -> None:
        for key in r.session:
            _ = r.session[key], r.session.get(key)

    result = await call(app_running(read_all), cookie(seal(KEY_A, data)))
    assert result.json() == data
    assert result.set_cookie == []
    assert result.header(b"vary") == [b"Cookie"]


async def test_writing_an_identical_value_sends_no_cookie() -> None:
    """Setting a key to the value it already holds marks modified but sends no Set-Cookie."""

    def rewrite(r: Request) -> None:
        r.session["user"] = 1
        r.session.update(cart=[1, 2])
        assert Session.of(r).modified

    result = await call(app_running(rewrite), cookie(seal(KEY_A, {"user": 1, "cart": [1, 2]})))
    assert result.set_cookie == []


async def test_read_only_request_with_plain_values_skips_serialisation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hot path: reading a session of plain values never re-serialises it; one whose list is handed out is compared."""
    calls: list[object] = []
    original = dump_data

    def counting(data: Any) -> bytes:
        calls.append(data)
        return original(data)

    monkeypatch.setattr(middleware_module, "dump_data", counting)
    app = app_running(lambda r: None)
    assert (await call(app, cookie(seal(KEY_A, {"user": 1, "token": "t"})))).set_cookie == []
    assert calls == []
    assert (await call(app, cookie(seal(KEY_A, {"cart": [1]})))).set_cookie == []
    assert len(calls) == 1


# -- reset -----------------------------------------------------------------------------------------------


async def test_reset_keeps_named_keys_and_starts_a_new_lifetime() -> None:
    """``reset(keep=...)`` keeps only the named keys and seals a new issued_at and expiry."""
    clock = FakeClock(START + 5 * DAY)
    old = seal(KEY_A, {"csrf": "c", "cart": [1], "user": 1}, issued_at=START, max_age=7 * DAY)

    def login(r: Request) -> None:
        Session.of(r).reset(keep=("cart", "missing"))
        r.session["user"] = 2

    result = await call(app_running(login, clock=clock, max_age=7 * DAY), cookie(old))
    assert result.json() == {"cart": [1], "user": 2}
    opened = unseal(KEY_A, result.cookie_value())
    assert opened.issued_at == START + 5 * DAY
    assert opened.expires_at == START + 12 * DAY
    assert result.max_age() == 7 * DAY


def test_reset_with_a_single_string_keeps_that_key() -> None:
    """``reset(keep="cart")`` keeps the key "cart", not keys named after its letters."""
    session = Session({"cart": [1], "c": 1, "a": 2})
    session.reset(keep="cart")
    assert session == {"cart": [1]}


async def test_reset_with_unchanged_data_still_reseals() -> None:
    """A reset that keeps every key still sends a cookie, because the lifetime restarted."""
    app = app_running(lambda r: Session.of(r).reset(keep=["user"]), clock=FakeClock(START + DAY))
    result = await call(app, cookie(seal(KEY_A, {"user": 1}, issued_at=START)))
    assert unseal(KEY_A, result.cookie_value()).issued_at == START + DAY


async def test_reset_to_empty_deletes_the_cookie() -> None:
    """A reset that keeps nothing, with nothing written after, deletes the cookie."""
    result = await call(app_running(lambda r: Session.of(r).reset()), cookie(seal(KEY_A, {"user": 1})))
    assert result.cookie_value() == ""
    assert result.max_age() == 0


# -- set_max_age (remember me) ------------------------------------------------------------------------


async def test_set_max_age_on_a_new_session() -> None:
    """``set_max_age`` on a new session gives expiry = now + seconds and the matching Max-Age."""

    def remember(r: Request) -> None:
        r.session["user"] = 1
        Session.of(r).set_max_age(30 * DAY)

    result = await call(app_running(remember, clock=FakeClock(), max_age=DAY))
    assert unseal(KEY_A, result.cookie_value()).expires_at == START + 30 * DAY
    assert result.max_age() == 30 * DAY


async def test_set_max_age_counts_from_the_session_start() -> None:
    """Calling ``set_max_age`` later in a session cannot push expiry past issued_at + seconds."""
    clock = FakeClock(START + 20 * DAY)
    old = seal(KEY_A, {"user": 1}, issued_at=START, max_age=25 * DAY)
    result = await call(app_running(lambda r: Session.of(r).set_max_age(30 * DAY), clock=clock), cookie(old))
    assert unseal(KEY_A, result.cookie_value()).expires_at == START + 30 * DAY
    assert result.max_age() == 10 * DAY


async def test_set_max_age_persists_without_being_called_again() -> None:
    """A session given its own lifetime keeps it on later writes that do not mention it."""
    clock = FakeClock(START + DAY)
    old = seal(KEY_A, {"n": 1}, issued_at=START, max_age=30 * DAY)  # as set by an earlier remember-me
    result = await call(app_running(lambda r: r.session.update(n=2), clock=clock, max_age=2 * DAY), cookie(old))
    assert unseal(KEY_A, result.cookie_value()).expires_at == START + 30 * DAY


async def test_set_max_age_repeated_with_same_value_sends_no_cookie() -> None:
    """Calling ``set_max_age`` with the lifetime the cookie already has does not reseal it."""
    old = seal(KEY_A, {"user": 1}, issued_at=START, max_age=30 * DAY)
    app = app_running(lambda r: Session.of(r).set_max_age(30 * DAY), clock=FakeClock(START + DAY))
    assert (await call(app, cookie(old))).set_cookie == []
    longer = app_running(lambda r: Session.of(r).set_max_age(31 * DAY), clock=FakeClock(START + DAY))
    assert len((await call(longer, cookie(old))).set_cookie) == 1


async def test_set_max_age_shorter_than_elapsed_expires_at_once() -> None:
    """Shortening the lifetime below the session's age makes the next cookie already expired."""
    clock = FakeClock(START + 2 * DAY)
    old = seal(KEY_A, {"user": 1}, issued_at=START)
    app = app_running(lambda r: Session.of(r).set_max_age(DAY), clock=clock)
    value = (await call(app, cookie(old))).cookie_value()
    assert unseal(KEY_A, value).expires_at == START + DAY
    result = await call(app_running(lambda r: None, clock=clock), cookie(value))
    assert result.json() == {}


async def test_set_max_age_none_makes_a_browser_session_cookie() -> None:
    """``set_max_age(None)`` removes the absolute cap: no sealed expiry and no Max-Age."""

    def browser_session(r: Request) -> None:
        r.session["user"] = 1
        Session.of(r).set_max_age(None)

    result = await call(app_running(browser_session, clock=FakeClock()))
    assert unseal(KEY_A, result.cookie_value()).expires_at is None
    assert result.max_age() is None


def test_session_of_requires_the_middleware() -> None:
    """``Session.of`` on a connection without our session in its scope raises ConfigurationError."""
    scope: dict[str, Any] = {"type": "http", "headers": [], "session": {"plain": "dict"}}
    with pytest.raises(ConfigurationError, match="scope_key='session'"):
        Session.of(HTTPConnection(scope))
    scope["admin"] = Session({"a": 1})
    admin = Session.of(HTTPConnection(scope), "admin")
    assert admin == {"a": 1}
    assert admin.accessed


@pytest.mark.parametrize("seconds", [0, -5, 1.5, True, "3600"])
def test_set_max_age_rejects_bad_values(seconds: Any) -> None:
    """``set_max_age`` accepts only a positive int or None."""
    with pytest.raises(ConfigurationError):
        Session().set_max_age(seconds)


# -- invalid values fail at write time ---------------------------------------------------------------------


BAD_VALUES = [
    pytest.param({1, 2}, id="set"),
    pytest.param((1, 2), id="tuple"),
    pytest.param(b"bytes", id="bytes"),
    pytest.param(object(), id="object"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="inf"),
    pytest.param({1: "int key"}, id="int-key"),
    pytest.param(["ok", {"deep": (1,)}], id="nested-tuple"),
    pytest.param("\ud800", id="lone-surrogate"),
]


@pytest.mark.case("B8")
@pytest.mark.parametrize("value", BAD_VALUES)
@pytest.mark.parametrize("how", ["setitem", "update", "update-kwargs", "setdefault", "ior"])
def test_bad_value_fails_at_write_time_naming_the_key(value: Any, how: str) -> None:
    """Every write path refuses a non-JSON value with SessionDataError naming the key, storing nothing."""
    session = Session({"keep": 1})
    with pytest.raises(SessionDataError, match="badkey"):
        if how == "setitem":
            session["badkey"] = value
        elif how == "update":
            session.update({"badkey": value})
        elif how == "update-kwargs":
            session.update(badkey=value)
        elif how == "setdefault":
            session.setdefault("badkey", value)
        else:
            session |= {"badkey": value}
    assert session == {"keep": 1}


@pytest.mark.case("B8")
@pytest.mark.parametrize("key", [1, None, ("a",)], ids=["int", "none", "tuple"])
def test_non_string_keys_refused_at_write_time(key: Any) -> None:
    """A non-string session key fails at write time."""
    session = Session()
    with pytest.raises(SessionDataError):
        session[key] = 1
    with pytest.raises(SessionDataError):
        session.update({key: 1})
    assert session == {}


@pytest.mark.case("B8")
@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        pytest.param(lambda s: s["cart"].append((1, 2)), "cart", id="nested-tuple"),
        pytest.param(lambda s: s["cart"].append({1, 2}), "cart", id="nested-set"),
        pytest.param(lambda s: s["prefs"].update({1: "x"}), "prefs", id="nested-int-key"),
        pytest.param(lambda s: s["prefs"].update(x=float("nan")), "prefs", id="nested-nan"),
    ],
)
async def test_nested_non_json_written_behind_our_back_fails_loudly_at_response_time(
    mutate: Callable[[Any], None], key: str
) -> None:
    """A nested non-JSON value written behind our back is a SessionDataError and a 500, never coerced."""
    app = app_running(lambda r: mutate(r.session), echo=False)
    old = cookie(seal(KEY_A, {"cart": [], "prefs": {}}))
    with pytest.raises(SessionDataError, match=key):
        await call(app, old)
    result = await call(app, old, raise_app_exceptions=False)
    assert result.status == 500
    assert result.set_cookie == []


@pytest.mark.case("B8")
async def test_nested_non_json_in_a_new_session_fails_loudly() -> None:
    """A tuple tucked into a new session's nested list fails at response time too."""

    def build(r: Request) -> None:
        r.session["cart"] = []
        r.session["cart"].append((1, 2))

    with pytest.raises(SessionDataError, match="cart"):
        await call(app_running(build, echo=False))


# -- the object on its own ---------------------------------------------------------------------------------


def test_flags_follow_starlette_for_each_write_method() -> None:
    """Each mutating dict method sets modified and accessed; a failed pop only reads (accessed, not modified)."""
    session = Session({"a": 1, "b": 2, "c": 3})
    assert (session.accessed, session.modified) == (False, False)
    session.pop("missing", None)
    assert (session.accessed, session.modified) == (True, False)
    mutations: list[Callable[[Session], object]] = [
        lambda s: s.pop("a"),
        lambda s: s.popitem(),
        lambda s: s.__delitem__("c") if "c" in s else s.clear(),
        lambda s: s.clear(),
        lambda s: s.setdefault("new", 1),
    ]
    for mutate in mutations:
        session.modified = session.accessed = False
        mutate(session)
        assert session.modified and session.accessed


@pytest.mark.case("F16")
@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda s: s["a"], id="getitem"),
        pytest.param(lambda s: s.get("missing"), id="get"),
        pytest.param(lambda s: "a" in s, id="contains"),
        pytest.param(lambda s: list(iter(s)), id="iter"),
        pytest.param(len, id="len"),
        pytest.param(lambda s: s.keys(), id="keys"),
        pytest.param(lambda s: s.values(), id="values"),
        pytest.param(lambda s: s.items(), id="items"),
    ],
)
def test_every_read_through_the_dict_api_marks_accessed(read: Callable[[Session], object]) -> None:
    """Any read through the dict API marks the session accessed (so the response varies on Cookie), never modified."""
    session = Session({"a": 1})
    read(session)
    assert (session.accessed, session.modified) == (True, False)


def test_session_is_its_cookies_data_and_reads_lifetime_facts_from_it() -> None:
    """A Session opened from a cookie equals the cookie's data and reports the cookie's issued_at and expires_at."""
    session = Session(
        opened=Opened({"a": 1}, issued_at=10, expires_at=20, last_active=15, sealed_with_current_key=True)
    )
    assert session == {"a": 1}
    assert (session.issued_at, session.expires_at) == (10, 20)
    assert (Session().issued_at, Session().expires_at) == (None, None)
    assert Session({"b": 2}) == {"b": 2}


async def test_arriving_session_exposes_its_timestamps() -> None:
    """``request.session.issued_at`` / ``expires_at`` reflect the cookie the request arrived with."""
    seen: list[tuple[int | None, int | None]] = []

    def look(r: Request) -> None:
        session = Session.of(r)
        seen.append((session.issued_at, session.expires_at))

    value = seal(KEY_A, {"u": 1}, issued_at=START, max_age=100)
    await call(app_running(look, clock=FakeClock(START + 10)), cookie(value))
    assert seen == [(START, START + 100)]


@pytest.mark.case("I2")
async def test_concurrent_writes_last_response_wins() -> None:
    """Two concurrent writes from one cookie: each response seals only its own change; the client keeps the last."""
    old = seal(KEY_A, {"cart": []})

    both_in_flight = asyncio.Barrier(2)

    async def add(r: Request) -> Response:
        r.session["cart"].append(r.headers["x-item"])
        r.session["by"] = r.headers["x-item"]
        await both_in_flight.wait()  # neither responds before both have read the same cookie
        return JSONResponse(dict(r.session))

    app = Starlette(routes=[Route("/", add)], middleware=[Middleware(SessionMiddleware, secret_key=KEY_A)])
    async with https_client(app) as client:
        client.cookies.set(COOKIE, old, domain="testserver.local")  # how the jar names a dotless host
        first, second = await asyncio.gather(
            client.get("/", headers={"x-item": "a"}),
            client.get("/", headers={"x-item": "b"}),
        )
        kept = client.cookies[COOKIE]
    assert first.json() == {"cart": ["a"], "by": "a"}  # no request sees the other's nested write
    assert second.json() == {"cart": ["b"], "by": "b"}
    sealed = {set_cookie_value(r.headers["set-cookie"]) for r in (first, second)}
    assert {tuple(unseal(KEY_A, v).data["cart"]) for v in sealed} == {("a",), ("b",)}  # nothing merged or corrupted
    assert kept in sealed  # last wins: the jar holds one whole response's session
