"""Expiry rules on sealed timestamps: absolute cap, idle window, renewal threshold, clock skew (C1-C8, unit level)."""

from __future__ import annotations

from typing import Any

import pytest

from sealed_sessions import ConfigurationError, Reason
from sealed_sessions._lifetime import CLOCK_SKEW, RENEW_FRACTION, Lifetime, expiry
from sealed_sessions._payload import MAX_TIMESTAMP, Opened, encode

T = 1_800_000_000
DAY = 86_400


def payload(issued_at: int = T, expires_at: int | None = T + DAY, last_active: int | None = None) -> Opened:
    return Opened({}, issued_at, expires_at, issued_at if last_active is None else last_active, True)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        pytest.param(-1, None, id="c4_exp_minus_1_accepted"),
        pytest.param(0, Reason.EXPIRED, id="c4_exp_rejected"),
        pytest.param(1, Reason.EXPIRED, id="c4_exp_plus_1_rejected"),
        pytest.param(10 * DAY, Reason.EXPIRED, id="c1_long_past"),
    ],
)
def test_c4_absolute_expiry_boundary(offset: int, expected: Reason | None) -> None:
    """A session is valid while now < expires_at: exp-1 passes, exp and later are EXPIRED."""
    lifetime = Lifetime(max_age=DAY, idle_timeout=None)
    assert lifetime.rejection(payload(), T + DAY + offset) == expected


def test_c1_activity_does_not_extend_absolute_expiry() -> None:
    """A session used a second ago still expires at its sealed absolute expiry."""
    lifetime = Lifetime(max_age=DAY, idle_timeout=3600)
    assert lifetime.rejection(payload(last_active=T + DAY - 1), T + DAY) == Reason.EXPIRED


@pytest.mark.parametrize(
    ("idle_for", "expected"),
    [
        pytest.param(0, None, id="c2_just_sealed"),
        pytest.param(599, None, id="c2_idle_minus_1_accepted"),
        pytest.param(600, Reason.IDLE, id="c2_idle_rejected"),
        pytest.param(601, Reason.IDLE, id="c2_idle_plus_1_rejected"),
    ],
)
def test_c2_idle_window(idle_for: int, expected: Reason | None) -> None:
    """The idle timeout counts from last_active, with the same now < limit boundary."""
    lifetime = Lifetime(max_age=DAY, idle_timeout=600)
    assert lifetime.rejection(payload(last_active=T + 1000), T + 1000 + idle_for) == expected


def test_c2_no_idle_timeout_means_no_idle_rejection() -> None:
    """Without idle_timeout, a session unused for its whole lifetime is still valid."""
    assert Lifetime(max_age=DAY, idle_timeout=None).rejection(payload(), T + DAY - 1) is None


def test_c2_expiry_checked_before_idle() -> None:
    """A session both expired and idle reports EXPIRED."""
    assert Lifetime(max_age=10, idle_timeout=5).rejection(payload(expires_at=T + 10), T + 100) == Reason.EXPIRED


def test_browser_session_never_expires_absolutely() -> None:
    """expires_at None (a browser-session cookie) has no absolute cap."""
    assert Lifetime(max_age=None, idle_timeout=None).rejection(payload(expires_at=None), T + 10**9) is None


@pytest.mark.parametrize(
    ("ahead", "expected"),
    [
        pytest.param(0, None, id="c6_now"),
        pytest.param(1, None, id="c6_one_second_ahead"),
        pytest.param(CLOCK_SKEW, None, id="c6_skew_limit_accepted"),
        pytest.param(CLOCK_SKEW + 1, Reason.FUTURE, id="c5_skew_plus_1_rejected"),
        pytest.param(365 * DAY, Reason.FUTURE, id="c5_a_year_ahead"),
    ],
)
def test_c5_c6_issued_in_the_future(ahead: int, expected: Reason | None) -> None:
    """issued_at up to CLOCK_SKEW seconds ahead is accepted; further ahead is FUTURE."""
    lifetime = Lifetime(max_age=DAY, idle_timeout=600)
    assert lifetime.rejection(payload(issued_at=T + ahead, expires_at=T + ahead + DAY), T) == expected


def test_c5_last_active_in_the_future_rejected() -> None:
    """A last_active further ahead than CLOCK_SKEW (dodging the idle timeout) is FUTURE."""
    lifetime = Lifetime(max_age=DAY, idle_timeout=600)
    assert lifetime.rejection(payload(last_active=T + CLOCK_SKEW), T) is None
    assert lifetime.rejection(payload(last_active=T + CLOCK_SKEW + 1), T) == Reason.FUTURE
    assert lifetime.rejection(payload(last_active=MAX_TIMESTAMP), T) == Reason.FUTURE


@pytest.mark.parametrize("idle_timeout", [4, 100, 600, 3601, 86_400])
def test_c3_renewal_threshold_is_exactly_a_quarter(idle_timeout: int) -> None:
    """Renewal is due once idle_timeout / RENEW_FRACTION seconds have passed, not a second before."""
    lifetime = Lifetime(max_age=None, idle_timeout=idle_timeout)
    threshold = idle_timeout / RENEW_FRACTION
    first_due = int(threshold) if threshold == int(threshold) else int(threshold) + 1
    assert not lifetime.renewal_due(T, T + first_due - 1)
    assert lifetime.renewal_due(T, T + first_due)
    assert RENEW_FRACTION == 4


def test_c3_no_renewal_without_idle_timeout() -> None:
    """Without idle_timeout, nothing is ever resealed just for time passing."""
    assert not Lifetime(max_age=DAY, idle_timeout=None).renewal_due(T, T + 10 * DAY)


def test_c3_renewal_keeps_absolute_expiry() -> None:
    """Renewing (a fresh last_active) never moves expires_at, so the absolute limit still holds."""
    lifetime = Lifetime(max_age=1000, idle_timeout=400)
    expires_at = lifetime.expires_at(T)
    assert expires_at == T + 1000
    renewed = payload(T, expires_at, T + 900)
    assert lifetime.rejection(renewed, T + 999) is None
    assert lifetime.rejection(renewed, T + 1000) == Reason.EXPIRED


@pytest.mark.parametrize(
    ("max_age", "idle_timeout", "now", "expected"),
    [
        pytest.param(DAY, None, T, DAY, id="c8_max_age_only"),
        pytest.param(DAY, None, T + 3600, DAY - 3600, id="c8_max_age_counts_down"),
        pytest.param(DAY, 600, T, 600, id="c8_idle_shorter"),
        pytest.param(DAY, 600, T + DAY - 100, 100, id="c8_expiry_shorter_than_idle"),
        pytest.param(None, 600, T, None, id="c8_idle_only_is_still_a_browser_session_cookie"),
        pytest.param(None, None, T, None, id="c8_browser_session"),
    ],
)
def test_c8_cookie_max_age_matches_expiry(
    max_age: int | None, idle_timeout: int | None, now: int, expected: int | None
) -> None:
    """Max-Age is the time left before we would refuse the cookie, or absent for a browser-session cookie."""
    lifetime = Lifetime(max_age=max_age, idle_timeout=idle_timeout)
    expires_at = lifetime.expires_at(T)
    max_age_sent = lifetime.cookie_max_age(expires_at, now)
    assert max_age_sent == expected
    if max_age_sent is not None:  # refused exactly when the browser forgets it (sealed at now)
        assert lifetime.rejection(payload(expires_at=expires_at, last_active=now), now + max_age_sent - 1) is None
        assert lifetime.rejection(payload(expires_at=expires_at, last_active=now), now + max_age_sent) is not None


def test_expires_at_stays_within_what_a_cookie_carries() -> None:
    """A huge max_age caps expires_at at 2**63-1, and a negative one gives 1, never 0 ("no expiry")."""
    assert expiry(T, 10**30) == MAX_TIMESTAMP
    assert expiry(T, -T) == 1
    assert expiry(T, -(10**30)) == 1
    assert expiry(T, 0) == T
    assert expiry(T, None) is None
    assert Lifetime(max_age=10**30, idle_timeout=None).expires_at(T) == MAX_TIMESTAMP
    assert len(encode(b"{}", T, expiry(T, 10**30), T)) == 26  # fits the 8-byte header field


def test_zero_and_negative_max_age_expire_at_once() -> None:
    """max_age 0 or negative is allowed (as in Starlette) and gives sessions that are already expired."""
    for max_age in (0, -1, -DAY):
        lifetime = Lifetime(max_age=max_age, idle_timeout=None)
        assert lifetime.rejection(payload(expires_at=lifetime.expires_at(T)), T) == Reason.EXPIRED


@pytest.mark.parametrize(
    ("max_age", "idle_timeout", "fragment"),
    [
        pytest.param(True, None, "max_age must be a whole number of seconds, got True", id="max_age_bool"),
        pytest.param(60.0, None, "got 60.0", id="max_age_float"),
        pytest.param("3600", None, "got '3600'", id="max_age_str"),
        pytest.param(None, False, "idle_timeout must be a whole number", id="idle_bool"),
        pytest.param(None, 1.5, "got 1.5", id="idle_float"),
        pytest.param(None, "600", "got '600'", id="idle_str"),
        pytest.param(None, 0, "idle_timeout must be positive, got 0", id="idle_zero"),
        pytest.param(None, -5, "idle_timeout must be positive, got -5", id="idle_negative"),
    ],
)
def test_bad_configuration_refused(max_age: Any, idle_timeout: Any, fragment: str) -> None:
    """Booleans, floats, strings and a non-positive idle_timeout raise ConfigurationError at construction."""
    with pytest.raises(ConfigurationError, match=fragment):
        Lifetime(max_age=max_age, idle_timeout=idle_timeout)
