"""Response headers the middleware adds or tightens: ``Vary: Cookie`` and the cache directives.

Works on the raw ASGI header list (``[(name, value), ...]`` as bytes), comparing names without
regard to case: ASGI asks applications for lowercase names, but a raw ASGI app may send
``Cache-Control`` and must not end up with two conflicting cache headers.
"""

from __future__ import annotations

from starlette.types import Message

__all__ = ["Headers", "header_list", "keep_out_of_shared_caches", "vary_on_cookie"]

Headers = list[tuple[bytes, bytes]]

_SHARED_CACHE_DIRECTIVES = frozenset({b"public", b"s-maxage"})
_CDN_HEADERS = frozenset({b"cdn-cache-control", b"surrogate-control"})
"""Cache headers meant for CDNs only (RFC 9213; Fastly, Akamai): they would let a CDN store a
response that sets a session cookie, whatever ``Cache-Control`` says."""


def header_list(message: Message) -> Headers:
    """A fresh copy of the start message's headers, stored back into the message, for us to edit.

    Always a copy: the app's own list may be shared (Starlette sends a ``Response``'s
    ``raw_headers`` as they are, and an app may return one response object to every request), and
    a ``Set-Cookie`` appended to it would go to the next user too. The ASGI spec makes ``headers``
    optional and allows any iterable of pairs.
    """
    raw = list(message.get("headers") or ())
    message["headers"] = raw
    return raw


def _split(headers: Headers, name: bytes) -> tuple[list[bytes], Headers]:
    """The comma-separated items of every ``name`` header, and the other headers."""
    items: list[bytes] = []
    others: Headers = []
    for key, value in headers:
        if key.lower() == name:
            items.extend(part.strip() for part in value.split(b",") if part.strip())
        else:
            others.append((key, value))
    return items, others


def vary_on_cookie(headers: Headers) -> None:
    """Add ``Cookie`` to ``Vary`` once, even with several session middlewares stacked."""
    for key, _ in headers:
        if key.lower() == b"vary":
            break
    else:
        headers.append((b"vary", b"Cookie"))  # the common case
        return
    items, others = _split(headers, b"vary")
    if {item.lower() for item in items} & {b"cookie", b"*"}:
        return
    headers[:] = [*others, (b"vary", b", ".join([*items, b"Cookie"]))]


def keep_out_of_shared_caches(headers: Headers) -> None:
    """A response that sets a session cookie must never be stored by a shared cache.

    In ``Cache-Control``: drops ``public`` and ``s-maxage`` and adds ``private`` unless ``private``
    or ``no-store`` is already there; every other directive of the app's (``max-age``,
    ``no-cache``...) is kept. ``CDN-Cache-Control`` and ``Surrogate-Control``, if present, become
    ``no-store``.
    """
    for key, _ in headers:
        lower = key.lower()
        if lower == b"cache-control" or lower in _CDN_HEADERS:
            break
    else:
        headers.append((b"cache-control", b"private"))  # the common case
        return
    names = {key.lower() for key, _ in headers}
    if b"cache-control" not in names:
        headers.append((b"cache-control", b"private"))
    else:
        directives, others = _split(headers, b"cache-control")
        kept = [d for d in directives if d.split(b"=", 1)[0].strip().lower() not in _SHARED_CACHE_DIRECTIVES]
        if not any(d.lower() in (b"private", b"no-store") for d in kept):
            kept.append(b"private")
        headers[:] = [*others, (b"cache-control", b", ".join(kept))]
    if names & _CDN_HEADERS:
        headers[:] = [(k, v) for k, v in headers if k.lower() not in _CDN_HEADERS]
        headers.extend((name, b"no-store") for name in sorted(names & _CDN_HEADERS))
