"""The demo's one "try again later" error: throttled logins (429) and a busy password hasher (503)."""

from __future__ import annotations

__all__ = ["TryLater"]


class TryLater(Exception):
    """Refused for now: answer ``status_code`` with ``Retry-After: retry_after`` and ``message``.

    ``message`` is generic and safe to show: it never says whether an account exists.
    """

    status_code: int = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
