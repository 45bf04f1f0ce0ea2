"""Refused-cookie logging: first occurrences logged, floods counted and summarised, no cookie ever in a record.

Catalogue M1 (nothing but the cookie's name and reason codes), M2 (a reason per record) and M3
(a flood summarised once a window).
"""

from __future__ import annotations

import logging

import pytest
from starlette.responses import PlainTextResponse

from sealed_sessions import Reason, SessionMiddleware
from sealed_sessions._rejections import BURST, WINDOW, RejectionLog
from tests.helpers import COOKIE, KEY_A, FakeClock, call, cookie, rejection_reasons, rejections


@pytest.mark.case("M2", "M3")
def test_first_occurrences_of_each_reason_are_logged_then_counted(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Within one window, BURST events of a reason are logged one by one, the rest only counted."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    log = RejectionLog(COOKIE, clock)
    for _ in range(1000):
        log(Reason.BAD_MAC)
    log(Reason.EXPIRED)
    assert rejection_reasons(caplog) == ["bad_mac"] * BURST + ["expired"]
    assert log.counts == {"bad_mac": 1000, "expired": 1}


@pytest.mark.case("M3")
def test_suppressed_events_are_summarised_when_the_window_ends(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """After a window with suppressed events, one WARNING gives the counts per reason, then logging resumes."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    log = RejectionLog(COOKIE, clock)
    for _ in range(BURST + 25):
        log(Reason.MALFORMED)
    for _ in range(BURST + 3):
        log(Reason.TOO_LARGE)
    caplog.clear()
    clock.advance(WINDOW)
    log(Reason.MALFORMED)
    summary, resumed = rejections(caplog)
    assert summary.levelno == logging.WARNING
    assert summary.suppressed == {"malformed": 25, "too_large": 3}  # type: ignore[attr-defined]
    assert "28 more rejections" in summary.getMessage()
    assert (resumed.levelno, getattr(resumed, "reason", None)) == (logging.INFO, "malformed")


@pytest.mark.case("M3")
def test_a_quiet_window_ends_without_a_summary(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """A window with nothing suppressed ends silently."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    log = RejectionLog(COOKIE, clock)
    log(Reason.IDLE)
    clock.advance(WINDOW * 3)
    log(Reason.IDLE)
    assert [r.levelno for r in rejections(caplog)] == [logging.INFO, logging.INFO]


@pytest.mark.case("M1")
def test_records_name_the_cookie_and_reason_only(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """A record holds the cookie's name and the reason code, and the summary only counts."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    log = RejectionLog("__Host-sid", clock)
    for _ in range(BURST + 1):
        log(Reason.UNKNOWN_KEY)
    clock.advance(WINDOW)
    log(Reason.UNKNOWN_KEY)
    assert len(rejections(caplog)) == BURST + 2  # the burst, the summary, the next window's first
    for record in rejections(caplog):
        assert record.cookie_name == "__Host-sid"  # type: ignore[attr-defined]
        assert record.getMessage().startswith("session cookie '__Host-sid'")


@pytest.mark.case("M3")
async def test_a_flood_through_the_middleware_is_logged_on_its_clock(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Bad cookies to one middleware: BURST records, then silence, totals in .rejections.counts, a summary later."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    middleware = SessionMiddleware(PlainTextResponse("ok"), secret_key=KEY_A, clock=clock)
    for _ in range(BURST + 15):
        assert (await call(middleware, cookie("garbage"))).status == 200
    assert rejection_reasons(caplog) == ["malformed"] * BURST
    assert middleware.rejections.counts == {"malformed": BURST + 15}
    clock.advance(WINDOW)
    await call(middleware, cookie("garbage"))
    assert rejection_reasons(caplog)[BURST:] == ["suppressed", "malformed"]
