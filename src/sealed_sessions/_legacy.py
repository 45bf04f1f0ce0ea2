"""Reading another library's session cookie once, so switching to sealed-sessions logs nobody out.

``SessionMiddleware(legacy=...)`` takes one or more readers (:class:`StarletteCookie`,
:class:`ClientSessionsCookie`, or anything with the :class:`LegacyCookie` shape). They run only
when no cookie of ours opened (none arrived, or the one that did is invalid, expired or
ambiguous): a request whose cookie of ours opens never looks at a legacy one, and without readers
this costs nothing at all. The first legacy value that opens becomes the session;
the response seals it as ours and deletes the legacy cookie, so it is read once, and a later
logout cannot bring the old session back.

A migrated session keeps the legacy session's start and its own expiry: it ends at whichever
comes first of the legacy expiry and ours counted from the legacy start. A legacy value that is
forged, expired or unreadable is logged (reason code, under the legacy cookie's name) and ignored,
like any bad cookie.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ._cookie import CookieOptions, find_cookies
from ._errors import ConfigurationError, InvalidCookie, Reason
from ._lifetime import Lifetime
from ._migration import LegacyCookie
from ._payload import Opened
from ._rejections import RejectionLog

__all__ = ["MAX_LEGACY_CHECKS", "LegacyReaders"]

MAX_LEGACY_CHECKS = 4
"""Values of one legacy cookie tried per request at most (bounded MAC checks, as for ours)."""


class LegacyReaders:
    """The legacy readers of one middleware, with their logs and deletion cookies, built once."""

    __slots__ = ("_deletions", "_lifetime", "_readers", "our_name")

    our_name: str
    """Our cookie's name."""

    def __init__(
        self,
        readers: LegacyCookie | Sequence[LegacyCookie],
        cookie: CookieOptions,
        lifetime: Lifetime,
        clock: Callable[[], float],
    ) -> None:
        listed = tuple(readers) if isinstance(readers, Sequence) else (readers,)
        for reader in listed:
            if not (
                isinstance(getattr(reader, "cookie_name", None), str)
                and isinstance(getattr(reader, "path", None), str)
                and isinstance(getattr(reader, "domain", ""), str | None)
                and callable(getattr(reader, "open", None))
            ):
                raise ConfigurationError(
                    f"legacy readers need cookie_name, path and domain attributes and an open(value, now) "
                    f"method, got {reader!r}; use StarletteCookie(...) or ClientSessionsCookie(...)"
                )
        self.our_name = cookie.name
        self._lifetime = lifetime
        self._readers = tuple(
            (reader, reader.cookie_name.encode("latin-1") + b"=", RejectionLog(reader.cookie_name, clock))
            for reader in listed
        )
        # Browsers key cookies on name, domain and path: only a legacy cookie identical in all three
        # is the cookie our Set-Cookie overwrites; any other needs its own deletion.
        self._deletions = {
            id(reader): _deletion(reader, cookie.secure)
            for reader in listed
            if (reader.cookie_name, reader.path, reader.domain) != (cookie.name, cookie.path, cookie.domain)
        }

    def __bool__(self) -> bool:
        return bool(self._readers)

    def open(self, headers: Iterable[tuple[bytes, bytes]], now: int) -> tuple[Opened | None, LegacyCookie | None]:
        """The first legacy session in the request that opens and is still valid, and its reader."""
        for reader, name_eq, log in self._readers:
            for value in find_cookies(headers, name_eq)[:MAX_LEGACY_CHECKS]:
                try:
                    found = reader.open(value, now)
                except InvalidCookie as exc:
                    log(exc.reason)
                    continue
                ours = self._lifetime.expiry_for(found.issued_at)
                expires_at = min((t for t in (found.expires_at, ours) if t is not None), default=None)
                if expires_at is not None and expires_at <= now:
                    log(Reason.EXPIRED)
                    continue
                # data_json stays empty: the middleware marks the session modified, so it is
                # serialised and sealed as ours on this response.
                return Opened(dict(found.data), found.issued_at, expires_at, now, False), reader
        return None, None

    def deletion(self, reader: LegacyCookie) -> list[str]:
        """The ``Set-Cookie`` that deletes ``reader``'s cookie, or nothing when it shares our name."""
        deletion = self._deletions.get(id(reader))
        return [] if deletion is None else [deletion]


def _deletion(reader: LegacyCookie, secure: bool) -> str:
    """A deletion cookie for the legacy cookie, with its path and domain (browsers match on those)."""
    try:
        options = CookieOptions(
            reader.cookie_name,
            path=reader.path,
            same_site="lax",
            secure=secure or reader.cookie_name.lower().startswith(("__host-", "__secure-")),
            domain=reader.domain,
            partitioned=False,
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"legacy cookie {reader.cookie_name!r}: {exc}") from None
    return options.deletion()
