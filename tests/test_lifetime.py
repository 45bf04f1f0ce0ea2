"""Expiry rules on sealed timestamps: absolute cap, idle window, renewal threshold, clock skew (C1-C8, unit level)."""

from __future__ import annotations

from typing import Any

import pytest

from sealed_sessions import ConfigurationError, Reason
from sealed_sessions._lifetime import CLOCK_SKEW, RENEW_FRACTION, Lifetime, expiry
from sealed_sessions._payload import MAX_TIMESTAMP, Opened, encode
from tests.helpers import DAY, START


def payload(issued_at: int = START, expires_at: int | None = START + DAY, last_active: int | None = None) -> Opened:
    return Opened({}, issued_at, expires_at, issued_at if last_active is None else last_active, True)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        pytest.param(-1, None, id="exp_minus_1_accepted", marks=pytest.mark.case("C4")),
        pytest.param(0, Reason.EXPIRED, id="exp_rejected", marks=pytest.mark.case("C4")),
        pytest.param(1, Reason.EXPIRED, id="exp_plus_1_rejected", marks=pytest.mark.case("C4")),
        pytest.param(10 * DAY, Reason.EXPIRED, id="long_past", marks=pytest.mark.case("C1")),
    ],
)
def test_session_is_valid_only_before_its_expiry(offset: int, expected: Reason | None) -> None:
    """A session is valid while now < expires_at: exp-1 passes, exp and later are EXPIRED."""
    lifetime = Lifetime(max_age=DAY, idle_timeout=None)
    assert lifetime.rejection(payload(), START + DAY + offset) == expected


@pytest.mark.case("C1")
def test_activity_does_not_extend_the_absolute_expiry() -> None:
    """A session used a second ago still expires at its sealed absolute expiry."""
    lifetime = Lifetime(max_age=DAY, idle_timeout=3600)
    assert lifetime.rejection(payload(last_active=START + DAY - 1), START + DAY) == Reason.EXPIRED


@pytest.mark.case("C2")
@pytest.mark.parametrize(
    ("idle_for", "expected"),
    [
        pytest.param(0, None, id="just_sealed"),
        pytest.param(599, None, id="idle_minus_1_accepted"),
        pytest.param(600, Reason.IDLE, id="idle_rejected"),
        pytest.param(601, Reason.IDLE, id="idle_plus_1_rejected"),
    ],
)
def test_idle_timeout_counts_from_last_active(idle_for: int, expected: Reason | None) -> None:
    """The idle timeout counts from last_active, with the same now < limit boundary."""
    lifetime = Lifetime(max_age=DAY, idle_timeout=600)
    assert lifetime.rejection(payload(last_active=START + 1000), START + 1000 + idle_for) == expected


@pytest.mark.case("C2")
def test_no_idle_timeout_means_no_idle_rejection() -> None:
    """Without idle_timeout, a session unused for its whole lifetime is still valid."""
    assert Lifetime(max_age=DAY, idle_timeout=None).rejection(payload(), START + DAY - 1) is None


@pytest.mark.case("C2")
def test_expiry_is_checked_before_idle() -> None:
    """A session both expired and idle reports EXPIRED."""
    assert Lifetime(max_age=10, idle_timeout=5).rejection(payload(expires_at=START + 10), START + 100) == Reason.EXPIRED


def test_browser_session_never_expires_absolutely() -> None:
    """expires_at None (a browser-session cookie) has no absolute cap."""
    assert Lifetime(max_age=None, idle_timeout=None).rejection(payload(expires_at=None), START + 10**9) is None


@pytest.mark.parametrize(
    ("ahead", "expected"),
    [
        pytest.param(0, None, id="now", marks=pytest.mark.case("C6")),
        pytest.param(1, None, id="one_second_ahead", marks=pytest.mark.case("C6")),
        pytest.param(CLOCK_SKEW, None, id="skew_limit_accepted", marks=pytest.mark.case("C6")),
        pytest.param(CLOCK_SKEW + 1, Reason.FUTURE, id="skew_plus_1_rejected", marks=pytest.mark.case("C5")),
        pytest.param(365 * DAY, Reason.FUTURE, id="a_year_ahead", marks=pytest.mark.case("C5")),
    ],
)
def test_issued_at_in_the_future_accepted_only_within_the_skew(ahead: int, expected: Reason | None) -> None:
    """issued_at up to CLOCK_SKEW seconds ahead is accepted; further ahead is FUTURE."""
    lifetime = Lifetime(max_age=DAY, idle_timeout=600)
    assert lifetime.rejection(payload(issued_at=START + ahead, expires_at=START + ahead + DAY), START) == expected


@pytest.mark.case("C5")
def test_last_active_in_the_future_rejected() -> None:
    """A last_active further ahead than CLOCK_SKEW (dodging the idle timeout) is FUTURE."""
    lifetime = Lifetime(max_age=DAY, idle_timeout=600)
    assert lifetime.rejection(payload(last_active=START + CLOCK_SKEW), START) is None
    assert lifetime.rejection(payload(last_active=START + CLOCK_SKEW + 1), START) == Reason.FUTURE
    assert lifetime.rejection(payload(last_active=MAX_TIMESTAMP), START) == Reason.FUTURE


@pytest.mark.case("C3")
@pytest.mark.parametrize("idle_timeout", [4, 100, 600, 3601, 86_400])
def test_renewal_threshold_is_exactly_a_quarter(idle_timeout: int) -> None:
    """Renewal is due once idle_timeout / RENEW_FRACTION seconds have passed, not a second before."""
    lifetime = Lifetime(max_age=None, idle_timeout=idle_timeout)
    threshold = idle_timeout / RENEW_FRACTION
    first_due = int(threshold) if threshold == int(threshold) else int(threshold) + 1
    assert not lifetime.renewal_due(START, START + first_due - 1)
    assert lifetime.renewal_due(START, START + first_due)
    assert RENEW_FRACTION == 4


@pytest.mark.case("C3")
def test_no_renewal_due_without_idle_timeout() -> None:
    """Without idle_timeout, nothing is ever resealed just for time passing."""
    assert not Lifetime(max_age=DAY, idle_timeout=None).renewal_due(START, START + 10 * DAY)


@pytest.mark.case("C3")
def test_renewal_keeps_the_absolute_expiry() -> None:
    """Renewing (a fresh last_active) never moves expires_at, so the absolute limit still holds."""
    lifetime = Lifetime(max_age=1000, idle_timeout=400)
    expires_at = lifetime.expiry_for(START)
    assert expires_at == START + 1000
    renewed = payload(START, expires_at, START + 900)
    assert lifetime.rejection(renewed, START + 999) is None
    assert lifetime.rejection(renewed, START + 1000) == Reason.EXPIRED


@pytest.mark.case("C8")
@pytest.mark.parametrize(
    ("max_age", "idle_timeout", "now", "expected"),
    [
        pytest.param(DAY, None, START, DAY, id="max_age_only"),
        pytest.param(DAY, None, START + 3600, DAY - 3600, id="max_age_counts_down"),
        pytest.param(DAY, 600, START, 600, id="idle_shorter"),
        pytest.param(DAY, 600, START + DAY - 100, 100, id="expiry_shorter_than_idle"),
        pytest.param(None, 600, START, None, id="idle_only_is_still_a_browser_session_cookie"),
        pytest.param(None, None, START, None, id="browser_session"),
    ],
)
def test_cookie_max_age_is_the_time_left(
    max_age: int | None, idle_timeout: int | None, now: int, expected: int | None
) -> None:
    """Max-Age is the time left before we would refuse the cookie, or absent for a browser-session cookie."""
    lifetime = Lifetime(max_age=max_age, idle_timeout=idle_timeout)
    expires_at = lifetime.expiry_for(START)
    max_age_sent = lifetime.cookie_max_age(expires_at, now)
    assert max_age_sent == expected
    if max_age_sent is not None:  # refused exactly when the browser forgets it (sealed at now)
        assert lifetime.rejection(payload(expires_at=expires_at, last_active=now), now + max_age_sent - 1) is None
        assert lifetime.rejection(payload(expires_at=expires_at, last_active=now), now + max_age_sent) is not None


def test_expires_at_stays_within_what_a_cookie_carries() -> None:
    """A huge max_age caps expires_at at 2**63-1, and a negative one gives 1, never 0 ("no expiry")."""
    assert expiry(START, 10**30) == MAX_TIMESTAMP
    assert expiry(START, -START) == 1
    assert expiry(START, -(10**30)) == 1
    assert expiry(START, 0) == START
    assert expiry(START, None) is None
    assert Lifetime(max_age=10**30, idle_timeout=None).expiry_for(START) == MAX_TIMESTAMP
    assert len(encode(b"{}", START, expiry(START, 10**30), START)) == 26  # fits the 8-byte header field


def test_zero_and_negative_max_age_expire_at_once() -> None:
    """max_age 0 or negative is allowed (as in Starlette) and gives sessions that are already expired."""
    for max_age in (0, -1, -DAY):
        lifetime = Lifetime(max_age=max_age, idle_timeout=None)
        assert lifetime.rejection(payload(expires_at=lifetime.expiry_for(START)), START) == Reason.EXPIRED


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
