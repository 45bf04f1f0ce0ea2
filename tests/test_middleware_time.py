"""Time through the whole stack, on an injected clock: absolute and idle expiry, boundaries, Max-Age, renewal.

The unit-level rules live in test_lifetime.py; here the same rules are checked as a browser meets
them: cookies written by the middleware, replayed later, renewed (or not) on read-only requests.
What counts as use of the session (unread and passive requests) is in test_middleware_activity.py.
"""

from __future__ import annotations

import logging

import pytest

from sealed_sessions.testing import seal, unseal
from tests.helpers import DAY, KEY_A, START, FakeClock, call, cookie, rejection_reasons, session_app


@pytest.mark.case("C1")
async def test_absolute_lifetime_ends_a_session_in_constant_use(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A session written every 30 s is still refused once ``max_age`` has passed since it began."""
    app = session_app(max_age=100, idle_timeout=60, clock=clock)
    value = (await call(app, path="/write")).cookie_value()
    for n in (2, 3, 4):  # t = 30, 60, 90: each write renews it
        clock.advance(30)
        result = await call(app, cookie(value), path="/write")
        assert result.json() == {"n": n}
        value = result.cookie_value()
    clock.advance(10)  # t = 100: the absolute limit
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    result = await call(app, cookie(value))
    assert result.body == b"{}"
    assert rejection_reasons(caplog) == ["expired"]


@pytest.mark.case("C2")
async def test_session_unused_for_the_idle_timeout_is_refused(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A session unused for ``idle_timeout`` seconds is refused; one second less is accepted."""
    app = session_app(idle_timeout=100, clock=clock)
    value = (await call(app, path="/write")).cookie_value()
    clock.advance(99)
    assert (await call(app, cookie(value))).body == b'{"n":1}'
    clock.advance(1)
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    assert (await call(app, cookie(value))).body == b"{}"
    assert rejection_reasons(caplog) == ["idle"]


@pytest.mark.case("C3")
async def test_idle_renewal_never_extends_past_max_age(clock: FakeClock) -> None:
    """Idle renewal moves last_active but keeps the sealed absolute expiry and shrinks Max-Age toward it."""
    app = session_app(max_age=250, idle_timeout=100, clock=clock)
    value = (await call(app, path="/write")).cookie_value()
    for elapsed in (60, 120, 180, 240):
        clock.now = START + elapsed
        result = await call(app, cookie(value))
        assert result.body == b'{"n":1}'
        value = result.cookie_value()  # renewal due: 60 s >= 100 / 4
        opened = unseal(KEY_A, value)
        assert opened.expires_at == START + 250
        assert opened.last_active == START + elapsed
        assert result.max_age() == min(100, 250 - elapsed)
    clock.now = START + 250
    assert (await call(app, cookie(value))).body == b"{}"


@pytest.mark.case("C4")
@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        pytest.param(-1, True, id="expiry-minus-1"),
        pytest.param(0, False, id="expiry"),
        pytest.param(1, False, id="expiry-plus-1"),
    ],
)
async def test_cookie_opens_until_one_second_before_its_expiry(clock: FakeClock, offset: int, accepted: bool) -> None:
    """At expiry - 1 s the cookie opens; at expiry and expiry + 1 s it does not."""
    clock.now = START + 100 + offset
    value = seal(KEY_A, {"user": 1}, max_age=100, issued_at=START)
    result = await call(session_app(max_age=100, clock=clock), cookie(value))
    assert (result.body == b'{"user":1}') is accepted


@pytest.mark.case("C4")
@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        pytest.param(-1, True, id="idle-minus-1"),
        pytest.param(0, False, id="idle"),
        pytest.param(1, False, id="idle-plus-1"),
    ],
)
async def test_cookie_opens_until_one_second_before_the_idle_limit(
    clock: FakeClock, offset: int, accepted: bool
) -> None:
    """At last_active + idle_timeout - 1 s the cookie opens; at the limit and after it does not."""
    clock.now = START + 100 + offset
    value = seal(KEY_A, {"user": 1}, issued_at=START - 50, last_active=START)
    result = await call(session_app(idle_timeout=100, clock=clock), cookie(value))
    assert (result.body == b'{"user":1}') is accepted


@pytest.mark.case("C7")
async def test_cookie_replayed_after_its_max_age_is_refused(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """A cookie kept past its Max-Age and sent by hand is refused from the sealed expiry."""
    app = session_app(max_age=3600, clock=clock)
    issued = await call(app, path="/write")
    assert issued.max_age() == 3600
    clock.advance(3600 + 1)
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    result = await call(app, cookie(issued.cookie_value()))
    assert (result.body, result.set_cookie) == (b"{}", [])
    assert rejection_reasons(caplog) == ["expired"]


@pytest.mark.case("C8")
async def test_max_age_is_the_sealed_expiry_minus_now(clock: FakeClock) -> None:
    """Max-Age always equals the sealed expiry minus now, also on later writes to the same session."""
    app = session_app(max_age=1000, clock=clock)
    first = await call(app, path="/write")
    assert first.max_age() == 1000
    assert unseal(KEY_A, first.cookie_value()).expires_at == START + 1000
    clock.advance(300)
    second = await call(app, cookie(first.cookie_value()), path="/write")
    assert second.max_age() == 700
    assert unseal(KEY_A, second.cookie_value()).expires_at == START + 1000


@pytest.mark.case("C8")
async def test_browser_session_cookie_has_no_max_age_and_no_sealed_expiry(clock: FakeClock) -> None:
    """With ``max_age=None`` the cookie has no Max-Age and no sealed expiry."""
    result = await call(session_app(max_age=None, clock=clock), path="/write")
    assert result.max_age() is None
    assert "expires" not in result.set_cookie[0].lower()
    assert unseal(KEY_A, result.cookie_value()).expires_at is None


@pytest.mark.case("C8")
async def test_browser_session_cookie_with_an_idle_timeout_has_no_max_age(clock: FakeClock) -> None:
    """With ``max_age=None`` and an idle timeout the cookie still dies with the browser (no Max-Age)."""
    result = await call(session_app(max_age=None, idle_timeout=600, clock=clock), path="/write")
    assert result.max_age() is None


@pytest.mark.case("C8")
async def test_max_age_is_capped_by_the_idle_timeout(clock: FakeClock) -> None:
    """With an idle timeout shorter than what remains, Max-Age is the idle timeout."""
    result = await call(session_app(max_age=1000, idle_timeout=400, clock=clock), path="/write")
    assert result.max_age() == 400


@pytest.mark.case("C9")
async def test_idle_renewal_only_after_a_quarter_of_the_window(clock: FakeClock) -> None:
    """Reading requests send no Set-Cookie until idle_timeout / 4 has passed, then renew once; unread ones do not."""
    app = session_app(idle_timeout=400, clock=clock)
    value = (await call(app, path="/write")).cookie_value()
    clock.advance(99)
    early = await call(app, cookie(value))
    assert (early.body, early.set_cookie) == (b'{"n":1}', [])
    clock.advance(1)
    due = await call(app, cookie(value))
    assert due.body == b'{"n":1}'
    renewed = due.cookie_value()
    assert unseal(KEY_A, renewed).last_active == START + 100
    assert unseal(KEY_A, renewed).issued_at == START
    clock.advance(99)
    assert (await call(app, cookie(renewed))).set_cookie == []
    clock.advance(1)  # renewal due again, but a route that never reads the session is no activity
    assert (await call(app, cookie(renewed), path="/untouched")).set_cookie == []
    assert len((await call(app, cookie(renewed))).set_cookie) == 1


async def test_no_renewal_without_idle_timeout(clock: FakeClock) -> None:
    """Without an idle timeout, reading a session days later sends no Set-Cookie."""
    app = session_app(clock=clock)
    value = (await call(app, path="/write")).cookie_value()
    clock.advance(10 * DAY)
    result = await call(app, cookie(value))
    assert (result.body, result.set_cookie) == (b'{"n":1}', [])
