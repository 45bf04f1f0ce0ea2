"""Sessions split across several cookies (``max_chunks``): one envelope, parts that cannot be mixed (V1-V4)."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sealed_sessions import ConfigurationError, SessionMiddleware, SessionTooLarge
from sealed_sessions._chunks import MAX_CHUNKS
from sealed_sessions._cookie import MAX_SET_COOKIE
from tests.helpers import COOKIE, KEY_A, FakeClock, Result, call, rejection_reasons, set_cookie_value


@pytest.fixture(autouse=True)
def _log_rejections(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sealed_sessions")


def big(size: int) -> str:
    """Incompressible text of ``size`` characters."""
    return os.urandom(size // 2 + 1).hex()[:size]


async def _store(request: Request) -> Response:
    """Replace the session with the JSON body's object."""
    request.session.clear()
    request.session.update(await request.json())
    return JSONResponse({})


async def _read(request: Request) -> Response:
    return JSONResponse(dict(request.session))


def chunked_app(max_chunks: int = 4, **options: Any) -> Starlette:
    return Starlette(
        routes=[Route("/", _read), Route("/store", _store, methods=["POST"])],
        middleware=[
            Middleware(SessionMiddleware, secret_key=KEY_A, max_chunks=max_chunks, clock=FakeClock(), **options)
        ],
    )


async def store(app: Starlette, data: dict[str, Any], cookie_header: str | None = None) -> Result:
    import json

    body = json.dumps(data).encode()
    scope_headers = [(b"content-type", b"application/json")]

    # call() sends an empty body; wrap the app to feed ours.
    async def with_body(scope: Any, receive: Any, send: Any) -> None:
        sent = False

        async def receive_body() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # type: ignore[no-any-return]

        await app(scope, receive_body, send)

    return await call(with_body, cookie_header, path="/store", method="POST", headers=scope_headers)


def jar(result: Result) -> dict[str, str]:
    """The cookies a browser keeps after ``result`` (deletions remove)."""
    kept: dict[str, str] = {}
    for header in result.set_cookie:
        name = header.split("=", 1)[0]
        kept[name] = set_cookie_value(header)
    return {name: value for name, value in kept.items() if value}


def header_of(cookies: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


async def test_a_session_that_fits_stays_one_cookie_as_without_chunking() -> None:
    """With chunking on, a small session is one cookie under the usual name, with no count prefix."""
    result = await store(chunked_app(), {"user": 1})
    (header,) = result.set_cookie
    assert header.startswith(COOKIE + "=")
    assert "." not in set_cookie_value(header)


async def test_a_large_session_spans_parts_that_each_fit_and_round_trip() -> None:
    """A 6,500-character session becomes 3 cookies of at most 4096 bytes each, and opens again whole."""
    app = chunked_app()
    data = {"blob": big(6500)}
    result = await store(app, data)
    names = [h.split("=", 1)[0] for h in result.set_cookie]
    assert names == [COOKIE, f"{COOKIE}.1", f"{COOKIE}.2"]
    assert all(len(h) <= MAX_SET_COOKIE for h in result.set_cookie)
    assert set_cookie_value(result.set_cookie[0]).startswith("3.")
    read = await call(app, header_of(jar(result)))
    assert read.json() == data
    assert read.set_cookie == []


@pytest.mark.case("V1")
async def test_reordered_parts_never_open(caplog: pytest.LogCaptureFixture) -> None:
    """Swapping two parts' values gives an empty session (the MAC covers the parts in order)."""
    app = chunked_app()
    cookies = jar(await store(app, {"blob": big(6500)}))
    cookies[f"{COOKIE}.1"], cookies[f"{COOKIE}.2"] = cookies[f"{COOKIE}.2"], cookies[f"{COOKIE}.1"]
    assert (await call(app, header_of(cookies))).json() == {}
    assert rejection_reasons(caplog) in (["bad_mac"], ["malformed"])  # malformed when the joint breaks base64


@pytest.mark.case("V2")
async def test_parts_of_two_sessions_never_mix(caplog: pytest.LogCaptureFixture) -> None:
    """A part taken from another session (same key, same size) gives an empty session."""
    app = chunked_app()
    first = jar(await store(app, {"blob": big(6500)}))
    second = jar(await store(app, {"blob": big(6500)}))
    mixed = {**first, f"{COOKIE}.2": second[f"{COOKIE}.2"]}
    assert (await call(app, header_of(mixed))).json() == {}
    assert "bad_mac" in rejection_reasons(caplog)


@pytest.mark.case("V3")
@pytest.mark.parametrize("drop", [".1", ".2"])
async def test_a_missing_part_gives_an_empty_session(drop: str, caplog: pytest.LogCaptureFixture) -> None:
    """Without one of its parts the session is empty, logged as missing_chunk, and no MAC is checked."""
    app = chunked_app()
    cookies = jar(await store(app, {"blob": big(6500)}))
    del cookies[COOKIE + drop]
    assert (await call(app, header_of(cookies))).json() == {}
    assert rejection_reasons(caplog) == ["missing_chunk"]


@pytest.mark.case("V4")
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(lambda v: "2" + v[1:], "bad_mac|malformed", id="count-lowered"),
        pytest.param(lambda v: "4" + v[1:], "missing_chunk", id="count-raised"),
        pytest.param(lambda v: "5" + v[1:], "malformed", id="count-over-max"),
        pytest.param(lambda v: "9" + v[1:], "malformed", id="count-9"),
        pytest.param(lambda v: v[:100] + ("A" if v[100] != "A" else "B") + v[101:], "bad_mac", id="part-1-flipped"),
        pytest.param(lambda v: v[:-1], "bad_mac|malformed", id="part-1-truncated"),
    ],
)
async def test_a_tampered_count_or_part_never_opens(change: Any, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    """Changing the count or a part gives an empty session with the reason logged."""
    app = chunked_app()
    cookies = jar(await store(app, {"blob": big(6500)}))
    cookies[COOKIE] = change(cookies[COOKIE])
    assert (await call(app, header_of(cookies))).json() == {}
    (logged,) = rejection_reasons(caplog)
    assert logged in reason.split("|")


async def test_counted_values_are_malformed_when_chunking_is_off(caplog: pytest.LogCaptureFixture) -> None:
    """With max_chunks=1 a value with a count is not ours: empty session, malformed."""
    cookies = jar(await store(chunked_app(), {"blob": big(6500)}))
    assert (await call(chunked_app(max_chunks=1), header_of(cookies))).json() == {}
    assert rejection_reasons(caplog) == ["malformed"]


@pytest.mark.case("V8")
async def test_shrinking_deletes_the_parts_left_over() -> None:
    """A session that shrinks from 3 parts to 1 deletes parts .1 and .2 in the same response."""
    app = chunked_app()
    cookies = jar(await store(app, {"blob": big(6500)}))
    result = await store(app, {"user": 1}, header_of(cookies))
    assert [h.split("=", 1)[0] for h in result.set_cookie] == [COOKIE, f"{COOKIE}.1", f"{COOKIE}.2"]
    assert [set_cookie_value(h) == "" for h in result.set_cookie] == [False, True, True]
    assert (await call(app, header_of(jar(result)))).json() == {"user": 1}


@pytest.mark.case("V8")
async def test_emptying_deletes_every_part() -> None:
    """Clearing a chunked session deletes the session cookie and each part the browser sent."""
    app = chunked_app()
    cookies = jar(await store(app, {"blob": big(3500)}))
    assert len(cookies) == 2
    result = await store(app, {}, header_of(cookies))
    assert all(set_cookie_value(h) == "" for h in result.set_cookie)
    assert sorted(h.split("=", 1)[0] for h in result.set_cookie) == [COOKIE, f"{COOKIE}.1"]


async def test_parts_the_count_does_not_name_are_ignored() -> None:
    """A stale part beyond the count (a failed deletion) does not stop the session from opening."""
    app = chunked_app()
    cookies = jar(await store(app, {"blob": big(3500)}))
    cookies[f"{COOKIE}.3"] = "stale"
    assert (await call(app, header_of(cookies))).json() != {}


@pytest.mark.case("V7")
async def test_a_session_over_max_chunks_is_too_large() -> None:
    """Data that would need more than max_chunks cookies raises SessionTooLarge naming the cookie."""
    with pytest.raises(SessionTooLarge, match=COOKIE):
        await store(chunked_app(max_chunks=2), {"blob": big(6500)})


@pytest.mark.parametrize("value", [0, MAX_CHUNKS + 1, True, "2", 2.0])
def test_max_chunks_out_of_range_is_refused_at_startup(value: Any) -> None:
    """max_chunks outside 1..MAX_CHUNKS (or not an int) is a ConfigurationError that says what to do."""
    with pytest.raises(ConfigurationError, match="max_chunks"):
        SessionMiddleware(chunked_app(), secret_key=KEY_A, max_chunks=value)


async def test_plain_cookie_names_get_numbered_parts_with_the_same_attributes() -> None:
    """Under a custom name and path every part carries the same name stem, path and flags."""
    app = chunked_app(session_cookie="sid", path="/app", https_only=True)
    result = await store(app, {"blob": big(3500)})
    names = [h.split("=", 1)[0] for h in result.set_cookie]
    assert names == ["sid", "sid.1"]
    assert all("path=/app;" in h and "secure" in h for h in result.set_cookie)


@pytest.mark.case("V9")
async def test_planted_parts_never_give_the_planters_session(caplog: pytest.LogCaptureFixture) -> None:
    """Under a plain name, a planted set of parts ahead of the victim's gives an empty session, not the planter's."""
    app = chunked_app(session_cookie="session", domain="example.com")
    attacker = jar(await store(app, {"user": "attacker", "blob": big(3500)}))
    victim = jar(await store(app, {"user": "victim", "blob": big(3500)}))
    header = f"session={attacker['session']}; session.1={attacker['session.1']}; "
    header += f"session={victim['session']}; session.1={victim['session.1']}"
    assert (await call(app, header)).json() == {}
    assert "ambiguous" in rejection_reasons(caplog)
