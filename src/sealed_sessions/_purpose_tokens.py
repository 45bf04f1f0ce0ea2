"""Purpose-bound tokens (password reset, e-mail verification, magic links): being built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic

from ._events import AuthEvents
from ._keys import KeyRing
from ._revocation import RevocationCheck, UserT

__all__ = ["PurposeTokens"]


class PurposeTokens(Generic[UserT]):
    """The purpose-bound token methods of ``SessionAuth``."""

    keys: KeyRing | None
    check: RevocationCheck[UserT]
    clock: Callable[[], float]
    context: str
    events: AuthEvents
