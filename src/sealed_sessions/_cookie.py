"""Cookie attributes, checked once at startup, and the Cookie / Set-Cookie header text.

Attributes follow Starlette's spelling (``path=/; Max-Age=…; httponly; samesite=lax; secure``)
so tests written against Starlette's SessionMiddleware keep passing. Contradictions browsers
would silently reject are refused at startup instead: ``SameSite=None`` or ``Partitioned``
without ``Secure``; a ``__Host-`` name with a domain, a path other than ``/`` or no ``Secure``;
a ``__Secure-`` name without ``Secure``; any name or value with separators or control characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from ._errors import ConfigurationError, SessionTooLarge

__all__ = [
    "DEFAULT_NAME",
    "MAX_SAME_NAME",
    "MAX_SET_COOKIE",
    "PLAIN_NAME",
    "CookieOptions",
    "default_name",
    "find_cookies",
]

MAX_SET_COOKIE = 4096
"""Largest ``Set-Cookie`` value we send: the whole header value, name and attributes included."""
DEFAULT_NAME = "__Host-session"
"""The cookie name wherever the ``__Host-`` rules hold (Secure, ``Path=/``, no ``Domain``): browsers
then refuse the cookie from a sibling subdomain, a parent domain or plain HTTP, so nobody can plant
one next to ours."""
PLAIN_NAME = "session"
"""The cookie name where the ``__Host-`` rules cannot hold (plain HTTP, a domain or a path set)."""
MAX_SAME_NAME = 16
"""Values of one cookie name read per request; later ones are ignored. Each costs at most a length
check and a base64 decode; the costly MAC checks are bounded separately (``MAX_MAC_CHECKS``)."""

SameSite = Literal["lax", "strict", "none"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token: a valid cookie name
_ATTRIBUTE_VALUE = re.compile(r"[\x21-\x2b\x2d-\x3a\x3c-\x7e]+")  # printable, no ';' ',' or space
_EXPIRED = "expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; "
_LONGEST_MAX_AGE = 2**63 - 1  # the widest Max-Age we could ever write (see _payload.MAX_TIMESTAMP)


def default_name(*, secure: bool, path: str, domain: str | None) -> str:
    """``DEFAULT_NAME`` where the ``__Host-`` prefix's rules hold, else ``PLAIN_NAME``."""
    return DEFAULT_NAME if secure and path == "/" and domain is None else PLAIN_NAME


class CookieOptions:
    """One cookie's name and attributes, validated, with the constant header parts precomputed."""

    __slots__ = ("_deletion", "_flags", "_name_eq", "domain", "name", "path", "secure")

    name: str
    """The cookie's name."""
    path: str
    """The ``Path`` attribute."""
    secure: bool
    """Whether the cookie carries ``Secure`` (``https_only``)."""
    domain: str | None
    """The ``Domain`` attribute, or ``None`` for a host-only cookie."""

    def __init__(
        self,
        name: str,
        *,
        path: str,
        same_site: str,
        secure: bool,
        domain: str | None,
        partitioned: bool,
    ) -> None:
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ConfigurationError(f"session_cookie {name!r} is not a valid cookie name (RFC 9110 token)")
        if not isinstance(path, str) or not path.startswith("/") or not _ATTRIBUTE_VALUE.fullmatch(path):
            raise ConfigurationError(f"path {path!r} must start with '/' and hold no ';', ',', spaces or controls")
        if domain is not None and (not isinstance(domain, str) or not _ATTRIBUTE_VALUE.fullmatch(domain)):
            raise ConfigurationError(f"domain {domain!r} must hold no ';', ',', spaces or controls")
        same_site_value = same_site.lower() if isinstance(same_site, str) else same_site
        if same_site_value not in ("lax", "strict", "none"):
            raise ConfigurationError(f"same_site must be 'lax', 'strict' or 'none', got {same_site!r}")
        if same_site_value == "none" and not secure:
            raise ConfigurationError("same_site='none' needs https_only=True: browsers drop it without Secure")
        if partitioned and not secure:
            raise ConfigurationError("partitioned=True needs https_only=True: browsers drop it without Secure")
        prefix = name[:9].lower()  # recent RFC 6265bis drafts match prefixes case-insensitively
        if prefix.startswith("__host-") and (not secure or domain is not None or path != "/"):
            raise ConfigurationError(
                "a __Host- cookie needs https_only=True, path='/' and no domain; browsers drop it otherwise"
            )
        if prefix == "__secure-" and not secure:
            raise ConfigurationError("a __Secure- cookie needs https_only=True; browsers drop it otherwise")

        flags = "httponly; samesite=" + same_site_value
        if secure:
            flags += "; secure"
        if domain is not None:
            flags += f"; domain={domain}"
        if partitioned:
            flags += "; partitioned"
        self.name = name
        self.path = path
        self.secure = secure
        self.domain = domain
        self._name_eq = name.encode("latin-1") + b"="
        self._flags = flags
        self._deletion = f"{name}=; path={path}; {_EXPIRED}{flags}"

    def set_cookie(self, value: str, max_age: int | None, *, name: str | None = None) -> str:
        """The ``Set-Cookie`` value for a sealed ``value``; raises :class:`SessionTooLarge`.

        ``name`` sets another cookie with the same attributes (a part of a chunked session).
        """
        name = name or self.name
        age = "" if max_age is None else f"Max-Age={max_age}; "
        header = f"{name}={value}; path={self.path}; {age}{self._flags}"
        if len(header) > MAX_SET_COOKIE:
            raise SessionTooLarge(len(header), MAX_SET_COOKIE, name)
        return header

    def deletion(self, name: str | None = None) -> str:
        """The ``Set-Cookie`` value that makes the browser forget the cookie (or ``name``, same attributes)."""
        return self._deletion if name is None else f"{name}=; path={self.path}; {_EXPIRED}{self._flags}"

    def room(self, name: str) -> int:
        """The longest value a ``Set-Cookie`` for ``name`` can carry within ``MAX_SET_COOKIE``."""
        return MAX_SET_COOKIE - len(self.set_cookie("", _LONGEST_MAX_AGE, name=name))

    def find(self, headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
        """This cookie's values in the request's Cookie headers, in order, raw, at most ``MAX_SAME_NAME``."""
        return find_cookies(headers, self._name_eq)


def find_cookies(headers: Iterable[tuple[bytes, bytes]], name_eq: bytes) -> list[str]:
    """The values of ``name=`` in Cookie headers, without unquoting or decoding anything.

    In the order sent (browsers send the most specific path first), at most ``MAX_SAME_NAME``.
    Values come back exactly as sent, as latin-1 text, so quoted or escaped values fail the strict
    base64url check later instead of being "repaired" here. A pair must start with the exact name:
    a nameless cookie whose value is ``name=...`` arrives as ``=name=...`` from a parser that keeps
    the empty name, and is not taken for ours.
    """
    found: list[str] = []
    for key, value in headers:
        if key != b"cookie" or name_eq not in value:  # ASGI servers lowercase header names
            continue
        for pair in value.split(b";"):
            pair = pair.strip(b" \t")
            if pair.startswith(name_eq):
                found.append(pair[len(name_eq) :].decode("latin-1"))
                if len(found) == MAX_SAME_NAME:
                    return found
    return found
