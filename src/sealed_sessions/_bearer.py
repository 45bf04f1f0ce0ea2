"""Bearer clients for ``SessionAuth``: being built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic

from ._auth_scheme import SessionCookie
from ._keys import KeyRing
from ._revocation import RevocationCheck, UserT

__all__ = ["BearerLogin"]


class BearerLogin(Generic[UserT]):
    """The bearer-token methods of ``SessionAuth``."""

    keys: KeyRing | None
    scheme: SessionCookie
    check: RevocationCheck[UserT]
    clock: Callable[[], float]
