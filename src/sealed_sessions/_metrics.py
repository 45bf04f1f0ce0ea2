"""Prometheus metrics for sessions, read from the counts the middleware and ``SessionAuth`` keep anyway.

::

    from prometheus_client import make_asgi_app

    prometheus_collector(session_middleware, auth)    # once, at startup
    app.mount("/metrics", make_asgi_app())

Needs ``prometheus_client`` (``pip install 'sealed-sessions[prometheus]'``); without it,
:func:`prometheus_collector` raises :class:`ConfigurationError`, and nothing else changes: the
counts are kept whether or not they are exported. At each scrape, for this process:

- ``sealed_sessions_cookies_opened_total{cookie, key_id}``: cookies opened per key of the ring
  (0 for a key that opened none): when the older key's counter stops moving, see
  :mod:`._key_usage` for when it can go;
- ``sealed_sessions_rejections_total{cookie, reason}``: refused cookies per reason, and the
  revocation check's refusals (``session_revoked``, ``session_malformed``) with ``auth``;
- ``sealed_sessions_events_total{kind}``: lifecycle events per kind (one hub counted once).

Labels hold cookie names, key ids (public), reason codes and event kinds: never a user id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

    from ._middleware import SessionMiddleware
    from .fastapi import SessionAuth

__all__ = ["SessionsCollector", "prometheus_collector"]

_INSTALL = "pip install 'sealed-sessions[prometheus]'"


class SessionsCollector:
    """A Prometheus collector (``collect()``) over one middleware's counts and, optionally, ``SessionAuth``'s."""

    middleware: SessionMiddleware
    """The middleware whose key usage, refusals and events are exported."""
    auth: SessionAuth[Any] | None
    """The ``SessionAuth`` whose check's refusals and events are exported, or ``None``."""

    def __init__(self, middleware: SessionMiddleware, auth: SessionAuth[Any] | None = None) -> None:
        self.middleware = middleware
        self.auth = auth

    def collect(self) -> Iterator[Metric]:
        """The three counter families, built from the current counts."""
        from prometheus_client.core import CounterMetricFamily

        cookie = self.middleware.cookie.name
        opened = CounterMetricFamily(
            "sealed_sessions_cookies_opened",
            "Session cookies opened, per key id of the ring.",
            labels=["cookie", "key_id"],
        )
        for key_id, count in self.middleware.key_usage.counts.items():
            opened.add_metric([cookie, key_id], count)
        yield opened

        rejections = CounterMetricFamily(
            "sealed_sessions_rejections",
            "Refused session cookies and sessions, per reason.",
            labels=["cookie", "reason"],
        )
        for reason, count in sorted(self.middleware.rejections.counts.items()):
            rejections.add_metric([cookie, reason], count)
        if self.auth is not None:
            for reason, count in sorted(self.auth.check.refusals.counts.items()):
                rejections.add_metric([cookie, reason], count)
        yield rejections

        events = CounterMetricFamily("sealed_sessions_events", "Session lifecycle events, per kind.", labels=["kind"])
        hubs = {id(self.middleware.events): self.middleware.events}
        if self.auth is not None:
            hubs[id(self.auth.events)] = self.auth.events
        totals: Counter[str] = Counter()
        for hub in hubs.values():
            totals.update(hub.counts)
        for kind, count in sorted(totals.items()):
            events.add_metric([kind], count)
        yield events


def prometheus_collector(
    middleware: SessionMiddleware, auth: SessionAuth[Any] | None = None, *, registry: CollectorRegistry | None = None
) -> SessionsCollector:
    """Register (on ``registry``, by default prometheus_client's global ``REGISTRY``) and return a
    collector exporting ``middleware``'s counts, and ``auth``'s (a ``SessionAuth``) when given.

    Raises :class:`ConfigurationError` when ``prometheus_client`` is not installed.
    """
    try:
        from prometheus_client import REGISTRY
    except ImportError:
        raise ConfigurationError(f"exporting session metrics needs prometheus_client: {_INSTALL}") from None
    collector = SessionsCollector(middleware, auth)
    (REGISTRY if registry is None else registry).register(collector)
    return collector
