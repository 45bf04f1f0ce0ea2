"""Fixtures every test module may use, built from tests/helpers.py (import plain names from there)."""

from __future__ import annotations

import pytest

from tests.helpers import ClientFactory, FakeClock, https_client


@pytest.fixture
def clock() -> FakeClock:
    """A hand-moved clock starting at START."""
    return FakeClock()


@pytest.fixture
def client_factory() -> ClientFactory:
    """Open an ``httpx.AsyncClient`` on an ASGI app over https://testserver (Secure cookies return)."""
    return https_client


@pytest.fixture(autouse=True)
def fresh_callback_failure_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with its own event-callback failure log limiter."""
    from collections import Counter

    import sealed_sessions._events as events

    monkeypatch.setattr(events, "_failures_logged_at", {})
    monkeypatch.setattr(events, "_failures_unlogged", Counter())


@pytest.fixture(autouse=True)
def fresh_outage_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with its own database-outage log limiter, so one test's outages never mute another's."""
    try:
        import sealed_sessions._unit_of_work as unit_of_work
    except ImportError:  # the core alone, without SQLAlchemy
        return
    monkeypatch.setattr(unit_of_work, "_OUTAGE_LOG", unit_of_work._OutageLog())
