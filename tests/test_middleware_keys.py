"""Key rotation through the whole stack: old keys open and are resealed, removed keys end quietly (D3-D6, I4, I5).

The key ring itself (what it accepts and derives) is tested in test_keys.py; the one-MAC-check
envelope rules in test_envelope.py.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from sealed_sessions.testing import seal, unseal
from tests.helpers import DAY, KEY_A, KEY_B, KEY_C, START, FakeClock, call, cookie, rejection_reasons, session_app


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
