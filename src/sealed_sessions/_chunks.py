"""Sessions larger than one cookie: one sealed value, split across a few cookies.

Opt-in with ``SessionMiddleware(max_chunks=N)``. A value that fits one cookie is sent exactly as
without chunking, under the session's own name, so turning chunking on logs nobody out. A longer
value is split into ``n`` parts (``2 <= n <= max_chunks``)::

    __Host-session   = "n." + part 1     the count, then the first part
    __Host-session.1 = part 2
    ...
    __Host-session.<n-1> = part n

The parts are pieces of *one* envelope, so the MAC covers all of them in order: parts from two
sessions, parts reordered, a part changed or missing, or a count that does not match the parts
never open (``bad_mac``, ``malformed`` or ``missing_chunk``). Parts left over from a larger
session are deleted in the response that writes a smaller one; parts the count does not name are
never read. Under the default ``__Host-`` name nobody else can set a part at all. Under a plain
name (``domain=``, plain HTTP), a sibling subdomain can plant cookies: two values of any
continuation name make the session empty (``ambiguous``), so a planted set of parts can lock a
user out until it expires, but never log them into another session.

Limits worth knowing: browsers keep at most about 50 cookies per site and 4096 bytes per cookie,
and servers bound the whole request header (nginx 8 KB per header line by default, h11 and
uvicorn 16 KB for the whole head): more than two parts needs those limits raised.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._cookie import CookieOptions, find_cookies
from ._envelope import MAX_COOKIE_VALUE
from ._errors import ConfigurationError, InvalidCookie, Reason, SessionTooLarge

__all__ = ["MAX_CHUNKS", "Chunks"]

MAX_CHUNKS = 4
"""Most cookies one session may span (about 16 KB): beyond it, keep the data on the server."""

Headers = Iterable[tuple[bytes, bytes]]


class Chunks:
    """Splits a sealed value across a session's cookies, and joins the parts of a request."""

    __slots__ = ("_names_eq", "_room", "_room_first", "cookie", "max_chunks", "max_length", "names")

    cookie: CookieOptions
    """The session cookie: the first part goes under its name, with its attributes."""
    max_chunks: int
    """The most cookies one session may span."""
    names: tuple[str, ...]
    """Names of the continuation cookies, ``<name>.1`` to ``<name>.<max_chunks - 1>``."""
    max_length: int
    """The longest joined value that can arrive (the sealer refuses longer ones unopened)."""

    def __init__(self, cookie: CookieOptions, max_chunks: int) -> None:
        if isinstance(max_chunks, bool) or not isinstance(max_chunks, int) or not 1 <= max_chunks <= MAX_CHUNKS:
            raise ConfigurationError(
                f"max_chunks must be an int from 1 (no chunking) to {MAX_CHUNKS}, got {max_chunks!r}; "
                "sessions larger than that belong in a server-side store keyed by an id in the session"
            )
        self.cookie = cookie
        self.max_chunks = max_chunks
        self.names = tuple(f"{cookie.name}.{i}" for i in range(1, max_chunks))
        self._names_eq = tuple(name.encode("latin-1") + b"=" for name in self.names)
        self._room_first = cookie.room(cookie.name)
        self._room = cookie.room(self.names[-1]) if self.names else self._room_first
        self.max_length = max_chunks * MAX_COOKIE_VALUE

    def join(self, first: str, headers: Headers) -> str:
        """The whole value that ``first`` (a value of the session cookie) begins.

        A value without a count is returned as it is; with one, the continuation parts are taken
        from the request and appended in order. A continuation name sent twice (one planted) is
        ``ambiguous``: joining either value could pair our first part with a planted one.
        """
        if first[1:2] != "." or self.max_chunks == 1:
            return first
        count = first[0]
        if not "2" <= count <= str(self.max_chunks):
            raise InvalidCookie(Reason.MALFORMED)
        parts = [first[2:]]
        for name_eq in self._names_eq[: int(count) - 1]:
            found = find_cookies(headers, name_eq)
            if not found:
                raise InvalidCookie(Reason.MISSING_CHUNK)
            if len(found) > 1:
                raise InvalidCookie(Reason.AMBIGUOUS)
            parts.append(found[0])
        return "".join(parts)

    def set_cookies(self, value: str, max_age: int | None) -> list[str]:
        """The ``Set-Cookie`` values that carry ``value``: one when it fits, else one per part."""
        if len(value) <= self._room_first:
            return [self.cookie.set_cookie(value, max_age)]
        count = -(-(len(value) + 2) // self._room)
        if count > self.max_chunks:
            raise SessionTooLarge(len(value), self.max_chunks * self._room, self.cookie.name)
        first_size = self._room - 2
        headers = [self.cookie.set_cookie(f"{count}.{value[:first_size]}", max_age)]
        for index, start in enumerate(range(first_size, len(value), self._room)):
            headers.append(self.cookie.set_cookie(value[start : start + self._room], max_age, name=self.names[index]))
        return headers

    def stale(self, headers: Headers, keep: int) -> list[str]:
        """Deletion cookies for continuation parts the request carried beyond the first ``keep`` parts."""
        first = max(keep - 1, 0)  # part k (0-based) is names[k - 1]
        return [
            self.cookie.deletion(name)
            for name, name_eq in zip(self.names[first:], self._names_eq[first:], strict=True)
            if find_cookies(headers, name_eq)
        ]
