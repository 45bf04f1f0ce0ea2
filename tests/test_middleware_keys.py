"""Key rotation through the whole stack: old keys and formats open and are resealed, removed keys end quietly.

Catalogue D3-D6 (rotation), D11 (format version 1 cookies), B9 (a context per application), I4 and I5
(rotation under load).

The key ring itself (what it accepts and derives) is tested in test_keys.py; the one-MAC-check
envelope rules in test_envelope.py.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from sealed_sessions.testing import seal, unseal
from tests.helpers import (
    CORPUS_V1,
    DAY,
    KEY_A,
    KEY_B,
    KEY_C,
    START,
    FakeClock,
    call,
    cookie,
    rejection_reasons,
    session_app,
    unb64,
)

V1 = {entry["id"]: entry for entry in CORPUS_V1["opens"]}


@pytest.mark.case("D3", "D4")
async def test_old_key_cookie_opens_and_is_resealed_with_the_current_key(clock: FakeClock) -> None:
    """A cookie sealed with an older key opens, and the response reseals it with the current key."""
    old = seal(KEY_B, {"user": 7}, issued_at=START - 3600, max_age=DAY)
    app = session_app(secret_key=[KEY_A, KEY_B], max_age=DAY, clock=clock)
    for path in ("/", "/untouched"):
        result = await call(app, cookie(old), path=path)
        assert result.status == 200
        opened = unseal(KEY_A, result.cookie_value())  # only the current key: proves the reseal
        assert opened.data == {"user": 7}
        assert opened.sealed_with_current_key
        assert (opened.issued_at, opened.expires_at) == (START - 3600, START - 3600 + DAY)
    assert (await call(app, cookie(old))).body == b'{"user":7}'


@pytest.mark.case("D11", "E4")
async def test_version_1_cookie_opens_and_is_resealed_as_version_2(clock: FakeClock) -> None:
    """A version 1 cookie of release 0.1 opens under its random key; even an unread response reseals it as version 2."""
    entry = V1["basic"]  # sealed with KEY_A for the name "session", 0.1's default
    app = session_app(secret_key=entry["open_keys"], session_cookie=entry["cookie_name"], clock=clock)
    assert (await call(app, cookie(entry["cookie"], entry["cookie_name"]))).json() == entry["data"]
    result = await call(app, cookie(entry["cookie"], entry["cookie_name"]), path="/untouched")
    value = result.cookie_value(entry["cookie_name"])
    assert unb64(value)[0] == 2 and unb64(entry["cookie"])[0] == 1
    opened = unseal(KEY_A, value, session_cookie=entry["cookie_name"])
    assert (opened.data, opened.issued_at, opened.expires_at, opened.last_active) == (
        entry["data"],
        entry["issued_at"],
        entry["expires_at"],
        entry["last_active"],  # an unread request is not activity: the idle clock stays where it was
    )
    assert opened.sealed_with_current_key
    assert (await call(app, cookie(value, entry["cookie_name"]))).set_cookie == []  # version 2 now: kept as it is


@pytest.mark.case("D11")
@pytest.mark.parametrize(
    ("entry_id", "context"),
    [pytest.param("passphrase_key", "", id="text_secret"), pytest.param("basic", "shop", id="context")],
)
async def test_version_1_cookie_is_refused_under_a_text_secret_or_a_context(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, entry_id: str, context: str
) -> None:
    """A version 1 cookie gives an empty session under a text secret or with a context set, and nothing is deleted."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    entry = V1[entry_id]
    app = session_app(secret_key=entry["open_keys"], session_cookie=entry["cookie_name"], context=context, clock=clock)
    result = await call(app, cookie(entry["cookie"], entry["cookie_name"]))
    assert (result.status, result.body, result.set_cookie) == (200, b"{}", [])
    assert rejection_reasons(caplog) == ["unknown_key"]


@pytest.mark.case("B9")
async def test_a_cookie_of_another_application_does_not_open_under_the_same_key(clock: FakeClock) -> None:
    """With one key and cookie name, a "shop" cookie gives an empty session in the "admin" app and opens in the shop."""
    shop_cookie = seal(KEY_A, {"user": 1}, issued_at=START, context="shop")
    admin = await call(session_app(context="admin", clock=clock), cookie(shop_cookie))
    assert (admin.body, admin.set_cookie) == (b"{}", [])
    assert (await call(session_app(context="shop", clock=clock), cookie(shop_cookie))).body == b'{"user":1}'


@pytest.mark.case("D5")
async def test_cookie_of_a_removed_key_gives_an_empty_session(caplog: pytest.LogCaptureFixture) -> None:
    """A cookie from a key dropped from the ring gives an empty session, 200 and no Set-Cookie."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    dropped = seal(KEY_C, {"user": 7})
    result = await call(session_app(secret_key=[KEY_A, KEY_B]), cookie(dropped))
    assert (result.status, result.body, result.set_cookie) == (200, b"{}", [])
    assert rejection_reasons(caplog) == ["unknown_key"]


@pytest.mark.case("D6")
async def test_new_cookies_are_sealed_with_the_current_key() -> None:
    """A freshly written session is sealed with the first key of the ring, not with any other."""
    app = session_app(secret_key=[KEY_B, KEY_A])
    value = (await call(app, path="/write")).cookie_value()
    assert unseal(KEY_B, value).sealed_with_current_key
    assert unseal([KEY_A, KEY_B], value).sealed_with_current_key is False
    current = seal(KEY_B, {"user": 1})
    assert (await call(app, cookie(current))).set_cookie == []  # current key: no reseal needed


@pytest.mark.case("I4", "I5")
async def test_concurrent_requests_with_old_and_new_key_cookies_each_see_their_own_data() -> None:
    """1000 concurrent requests with old- and new-key cookies all see their own data; old ones are upgraded."""
    app = session_app(secret_key=[KEY_A, KEY_B])
    cookies = [seal(KEY_B if i % 2 else KEY_A, {"i": i}) for i in range(1000)]
    results = await asyncio.gather(*(call(app, cookie(value)) for value in cookies))
    for i, result in enumerate(results):
        assert result.body == f'{{"i":{i}}}'.encode()
        if i % 2:
            upgraded = unseal(KEY_A, result.cookie_value())
            assert upgraded.data == {"i": i}
        else:
            assert result.set_cookie == []
