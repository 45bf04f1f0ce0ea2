"""The lifecycle event hub: registering callbacks, delivery (sync, async, failing), logging, counts."""

from __future__ import annotations

import asyncio
import logging
import threading

import anyio.to_thread
import pytest

from sealed_sessions import ConfigurationError
from sealed_sessions._events import WINDOW, AuthEvent, AuthEvents, EventKind
from sealed_sessions._rejections import BURST, RejectionLog
from tests.helpers import START, FakeClock

LOGIN = AuthEvent(EventKind.LOGIN, START, user_id="42")
LOGOUT = AuthEvent(EventKind.LOGOUT, START, user_id="42")


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "sealed_sessions"]


def test_callbacks_get_the_events_of_their_kind_in_order() -> None:
    """A callback registered for a kind gets only that kind; ``None`` gets every event; order is registration order."""
    events = AuthEvents()
    seen: list[tuple[str, EventKind]] = []
    events.on(EventKind.LOGIN, lambda e: seen.append(("login", e.kind)))
    events.on(None, lambda e: seen.append(("all", e.kind)))
    events.on("logout", lambda e: seen.append(("logout", e.kind)))  # the kind's value works too
    events.emit(LOGIN)
    events.emit(LOGOUT)
    assert seen == [
        ("login", EventKind.LOGIN),
        ("all", EventKind.LOGIN),
        ("all", EventKind.LOGOUT),
        ("logout", EventKind.LOGOUT),
    ]


def test_unsubscribe_handle_stops_delivery_and_is_idempotent() -> None:
    """The function ``on`` returns unregisters the callback; calling it again does nothing."""
    events = AuthEvents()
    seen: list[AuthEvent] = []
    unsubscribe = events.on(None, seen.append)
    events.emit(LOGIN)
    unsubscribe()
    unsubscribe()
    events.emit(LOGIN)
    assert seen == [LOGIN]


def test_unknown_kind_or_uncallable_callback_is_a_configuration_error() -> None:
    """A typo in a kind, or a callback that cannot be called, fails at registration, not silently."""
    events = AuthEvents()
    with pytest.raises(ConfigurationError, match="unknown event kind 'logn'"):
        events.on("logn", print)
    with pytest.raises(ConfigurationError, match="callable"):
        events.on(None, "print")  # type: ignore[arg-type]


def test_counts_per_kind() -> None:
    """The hub counts what it emitted, per kind value, for exporters."""
    events = AuthEvents()
    events.emit(LOGIN)
    events.emit(LOGIN)
    events.emit(LOGOUT)
    assert events.counts == {"login": 2, "logout": 1}


@pytest.mark.case("M6")
def test_raising_callback_is_logged_by_class_only_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    """A callback that raises is logged with its exception's class, not its message, and later callbacks still run."""
    events = AuthEvents()
    seen: list[AuthEvent] = []

    def broken(event: AuthEvent) -> None:
        raise ValueError("secret detail alice@example.com")

    events.on(None, broken)
    events.on(None, seen.append)
    events.emit(LOGIN)  # does not raise
    assert seen == [LOGIN]
    [record] = [r for r in ours(caplog) if r.levelno == logging.ERROR]
    assert "broken raised ValueError (1 time(s)" in record.getMessage()
    assert "alice" not in caplog.text and record.exc_info is None


@pytest.mark.case("M6")
async def test_async_callbacks_run_as_tasks_and_failures_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """An async callback runs on the loop after emit returns; drain waits for it; its failure is logged by class."""
    events = AuthEvents()
    seen: list[AuthEvent] = []

    async def record(event: AuthEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event)

    async def broken(event: AuthEvent) -> None:
        await asyncio.sleep(0)
        raise KeyError("token-abc")

    events.on(None, record)
    events.on(None, broken)
    events.emit(LOGIN)
    assert seen == []  # scheduled, not run inline
    await events.drain()
    assert seen == [LOGIN]
    [record_] = [r for r in ours(caplog) if r.levelno == logging.ERROR]
    assert "broken raised KeyError (1 time(s)" in record_.getMessage()
    assert "token-abc" not in caplog.text


async def test_async_callback_emitted_from_a_worker_thread_runs_on_the_loop() -> None:
    """A sync endpoint runs in Starlette's thread pool: its events still reach async callbacks, on the loop."""
    events = AuthEvents()
    ran_on: list[int] = []

    async def record(event: AuthEvent) -> None:
        ran_on.append(threading.get_ident())

    events.on(EventKind.LOGIN, record)
    await anyio.to_thread.run_sync(events.emit, LOGIN)
    await events.drain()
    assert ran_on == [threading.get_ident()]


def test_async_callback_without_a_loop_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Emitted outside any event loop (a script), an async callback is skipped and logged, never left unawaited."""
    events = AuthEvents()

    async def record(event: AuthEvent) -> None:  # pragma: no cover - never runs
        raise AssertionError

    events.on(None, record)
    events.emit(LOGIN)  # filterwarnings=error: an unawaited coroutine would fail the test
    assert "is async but no event loop is running" in caplog.text


@pytest.mark.case("M5")
def test_lifecycle_events_are_logged_at_info_with_the_user_id(caplog: pytest.LogCaptureFixture) -> None:
    """login, logout, revoke and token_redeemed give one INFO record each, with ``event`` and ``user_id`` attributes."""
    caplog.set_level(logging.INFO, "sealed_sessions")
    events = AuthEvents()
    events.emit(LOGIN)
    events.emit(AuthEvent(EventKind.REVOKE, START, user_id="42", ended=3, reason="revoke", device_id="d1"))
    events.emit(AuthEvent(EventKind.TOKEN_REDEEMED, START, user_id="42", purpose="reset"))
    records = ours(caplog)
    assert [(r.levelno, getattr(r, "event", None), getattr(r, "user_id", None)) for r in records] == [
        (logging.INFO, "login", "42"),
        (logging.INFO, "revoke", "42"),
        (logging.INFO, "token_redeemed", "42"),
    ]
    assert records[1].getMessage() == "revoke: user '42', device_id d1, ended 3, cause revoke"
    assert (getattr(records[1], "ended", None), getattr(records[2], "purpose", None)) == (3, "reset")
    assert all(not hasattr(r, "reason") for r in records)  # "reason" stays the attribute of refusals


def test_refusals_are_not_logged_again_by_the_hub(caplog: pytest.LogCaptureFixture) -> None:
    """A refusal event was logged by the rejection log already: the hub only counts and delivers it."""
    caplog.set_level(logging.INFO, "sealed_sessions")
    events = AuthEvents()
    seen: list[AuthEvent] = []
    events.on(EventKind.REFUSAL, seen.append)
    events.emit(AuthEvent(EventKind.REFUSAL, START, reason="bad_mac"))
    assert len(seen) == 1 and ours(caplog) == []


@pytest.mark.case("M7")
def test_old_key_is_logged_once_per_key_per_window_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    """``old_key`` events log at most one record per key id per WINDOW, carrying how many opens it stands for."""
    caplog.set_level(logging.INFO, "sealed_sessions")
    events = AuthEvents()
    for at in (START, START + 1, START + 2):
        events.emit(AuthEvent(EventKind.OLD_KEY, at, key_id="0a0b0c0d"))
    events.emit(AuthEvent(EventKind.OLD_KEY, START + 3, key_id="01020304"))
    events.emit(AuthEvent(EventKind.OLD_KEY, START + WINDOW, key_id="0a0b0c0d"))
    assert [(getattr(r, "key_id", None), getattr(r, "count", None)) for r in ours(caplog)] == [
        ("0a0b0c0d", 1),
        ("01020304", 1),
        ("0a0b0c0d", 3),
    ]
    assert events.counts == {"old_key": 5}


@pytest.mark.case("M5")
def test_rejection_log_reports_every_refusal_to_its_listener_logged_or_not(caplog: pytest.LogCaptureFixture) -> None:
    """Past the burst, refusals are only counted in the log, but each one still reaches the listener as an event."""
    caplog.set_level(logging.INFO, "sealed_sessions")
    events = AuthEvents()
    seen: list[AuthEvent] = []
    events.on(None, seen.append)
    clock = FakeClock()
    log = RejectionLog("the session check", clock, reason_prefix="session_", listener=events.emit)
    for _ in range(BURST + 5):
        log("revoked")
    log("malformed", user_id="7")
    assert len(ours(caplog)) == BURST + 1
    assert [e.reason for e in seen] == ["session_revoked"] * (BURST + 5) + ["session_malformed"]
    assert {e.kind for e in seen} == {EventKind.REFUSAL} and seen[0].at == START
    assert seen[-1].user_id == "7" and all(getattr(r, "user_id", None) is None for r in ours(caplog))


@pytest.mark.case("M6")
def test_a_callback_failing_on_every_event_is_logged_once_a_minute(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hundred failures of one callback within a minute make one record; the next minute's record counts the rest."""
    import sealed_sessions._events as module

    now = [1000.0]
    monkeypatch.setattr("sealed_sessions._events.time.monotonic", lambda: now[0])
    caplog.set_level(logging.ERROR, logger="sealed_sessions")
    events = AuthEvents()

    def broken(event: AuthEvent) -> None:
        raise ValueError("never logged")

    events.on(None, broken)
    for _ in range(100):
        events.emit(LOGIN)
    assert len([r for r in ours(caplog) if r.levelno == logging.ERROR]) == 1
    now[0] += module.FAILURE_LOG_INTERVAL
    events.emit(LOGIN)
    records = [r for r in ours(caplog) if r.levelno == logging.ERROR]
    assert len(records) == 2 and "(100 time(s)" in records[1].getMessage()
