"""Fresh-login checks and per-route conditions for ``SessionAuth``: being built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic

from ._auth_scheme import SessionCookie
from ._revocation import RevocationCheck, UserT

__all__ = ["FreshLogin"]


class FreshLogin(Generic[UserT]):
    """The fresh-login and per-route-condition dependencies of ``SessionAuth``."""

    scheme: SessionCookie
    check: RevocationCheck[UserT]
    clock: Callable[[], float]
