"""Test setup defined once: fixed keys, names and times, a hand-moved clock, a raw ASGI driver, an https client.

Import it as ``from tests.helpers import ...`` (the tests run with ``--import-mode=importlib`` and
the repository root on ``sys.path``). ``tests/conftest.py`` builds its fixtures from these names;
a test module imports from here, never from a conftest.

Two ways to drive an app, both over https://testserver so that ``Secure`` cookies come back:

- :func:`call` sends one raw ASGI request, so the exact bytes of the Cookie header and every
  response message are under the test's control (:class:`Result` holds what came back);
- :func:`https_client` opens an ``httpx.AsyncClient`` with a cookie jar, for multi-request flows.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Scope

from sealed_sessions import SessionMiddleware

# -- fixed values ------------------------------------------------------------------------------------

# Fixed, random-looking keys for tests (generated once with `python -m sealed_sessions keygen`).
KEY_A = "v0dJ8jL4q4fZ3-1xq8r8VbQ3b7nq3v9V0bXj2pXn0mQ"
KEY_B = "Qk3zT0Yc2sR8wW5eL1aN6hJ9uI4oP7gF2dS5aZ8xC1v"
KEY_C = "m9N2b5V8c1X4z7L0k3J6h9G2f5D8s1A4q7W0e3R6t9Y"
PASSPHRASE = "correct-horse_battery+staple/2027:edition!"
"""A long, varied text secret: accepted and stretched into a key (Argon2id, once per process)."""

COOKIE = "__Host-session"
"""The middleware's default cookie name over https with ``path="/"`` and no domain, and the default
of ``testing.seal``/``unseal``: what :func:`call` and :func:`session_app` use unless told otherwise."""
PLAIN_COOKIE = "session"
"""The default cookie name where the ``__Host-`` rules cannot hold (``https_only=False``, a domain or a path)."""

START = 1_800_000_000
"""A fixed "now" for clock-driven tests: 2027-01-15T08:00:00Z."""
DAY = 86_400


def b64(raw: bytes) -> str:
    """Unpadded base64url, the cookie's own encoding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    """Decode unpadded base64url (leniently: for building test input, not for judging it)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


RAW_A = unb64(KEY_A)
"""The 32 bytes of KEY_A."""


def ring_keys(count: int) -> list[bytes]:
    """``count`` distinct keys of ``keygen``'s kind (32 random-looking bytes), the same on every run."""
    return [hashlib.sha256(b"sealed-sessions test key %d" % i).digest() for i in range(count)]


CORPUS_V1: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "cookies_v1.json").read_text("utf-8"))
"""tests/fixtures/cookies_v1.json: cookies sealed by release 0.1 in format version 1, a closed corpus (see
tests/fixtures/make_cookies_v1.py). ``opens`` entries open to their recorded data (under a random key;
not under a text secret), ``refused`` ones are refused with their recorded reason."""

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def loopback_url(env: str) -> str | None:
    """The database URL in the environment variable ``env``, or None; a non-loopback host is refused.

    The database tests create and drop tables, so they only ever touch a server on this machine.
    """
    url = os.environ.get(env, "").strip()
    if not url:
        return None
    host = make_url(url).host
    if host not in LOOPBACK:
        raise pytest.UsageError(f"{env} must point at a loopback address, not {host!r}")
    return url


class FakeClock:
    """A clock the test moves by hand: ``clock()`` returns ``clock.now``, ``clock.advance(s)`` moves it."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the raw ASGI driver -----------------------------------------------------------------------------


def set_cookie_value(header: str) -> str:
    """The value of one Set-Cookie header (``""`` for a deletion cookie)."""
    return header.split(";", 1)[0].split("=", 1)[1]


def cookie(value: str, name: str = COOKIE) -> str:
    """A Cookie header carrying one cookie (named ``__Host-session`` unless told otherwise)."""
    return f"{name}={value}"


@dataclass
class Result:
    """One response as the server saw it: status, raw headers, the joined body and every message sent."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    messages: list[Message] = field(repr=False)

    def header(self, name: bytes) -> list[bytes]:
        """Every value of the header ``name`` (lower-case), in order."""
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def set_cookie(self) -> list[str]:
        """Every Set-Cookie header, decoded."""
        return [v.decode("latin-1") for v in self.header(b"set-cookie")]

    def cookie_value(self, name: str = COOKIE) -> str:
        """The value of the one Set-Cookie for ``name`` (fails unless there is exactly one)."""
        (header,) = [c for c in self.set_cookie if c.startswith(name + "=")]
        return set_cookie_value(header)

    def max_age(self) -> int | None:
        """The Max-Age of the one Set-Cookie, or None when it has none."""
        (header,) = self.set_cookie
        for part in header.split(";"):
            key, _, value = part.strip().partition("=")
            if key.lower() == "max-age":
                return int(value)
        return None

    def json(self) -> Any:
        """The body, parsed as JSON."""
        return json.loads(self.body)


async def call(
    app: ASGIApp,
    cookie: bytes | str | None = None,
    *,
    path: str = "/",
    method: str = "GET",
    headers: Sequence[tuple[bytes, bytes]] = (),
    raise_app_exceptions: bool = True,
) -> Result:
    """Send one HTTP request through ``app`` as an ASGI server would, and collect the response.

    With ``raise_app_exceptions=False`` an exception from the app is swallowed once the app has
    sent its response (Starlette's ServerErrorMiddleware sends a 500 before re-raising).
    """
    raw_headers = [(b"host", b"testserver"), *headers]
    if cookie is not None:
        raw_headers.append((b"cookie", cookie.encode("latin-1") if isinstance(cookie, str) else cookie))
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
    }
    messages: list[Message] = []
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # no disconnect until the app is done
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: Message) -> None:
        messages.append(message)
        await asyncio.sleep(0)  # yield, so that gathered requests really interleave

    try:
        await app(scope, receive, send)
    except Exception:
        if raise_app_exceptions or not messages:
            raise
    start = messages[0]
    assert start["type"] == "http.response.start"
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return Result(start["status"], list(start.get("headers", [])), body, messages)


# -- the httpx client --------------------------------------------------------------------------------

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
"""The type of :func:`https_client` (and of the ``client_factory`` fixture)."""


def https_client(
    app: ASGIApp, base_url: str = "https://testserver", *, raise_app_exceptions: bool = True, **options: Any
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on ``app`` in process; use it as ``async with https_client(app) as client:``.

    The default base URL is https, or Secure cookies would not be sent back; ``options`` (such as
    ``cookies=``) go to the client.
    """
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url=base_url, **options)


# -- a small app and its log -------------------------------------------------------------------------


async def _read(request: Request) -> Response:
    return JSONResponse(dict(request.session))


async def _write(request: Request) -> Response:
    request.session["n"] = request.session.get("n", 0) + 1
    return JSONResponse(dict(request.session))


async def _clear(request: Request) -> Response:
    request.session.clear()
    return JSONResponse({})


async def _untouched(request: Request) -> Response:
    return PlainTextResponse("untouched")


def session_app(**options: Any) -> Starlette:
    """An app behind SessionMiddleware(``options``, KEY_A by default) with four routes.

    Its cookie is :data:`COOKIE` unless ``options`` name another or break the ``__Host-`` rules.
    ``/`` returns the session as JSON, ``/write`` increments ``n`` and returns the session,
    ``/clear`` empties it and ``/untouched`` never looks at it.
    """
    options.setdefault("secret_key", KEY_A)
    return Starlette(
        routes=[
            Route("/", _read),
            Route("/write", _write),
            Route("/clear", _clear),
            Route("/untouched", _untouched),
        ],
        middleware=[Middleware(SessionMiddleware, **options)],
    )


def rejections(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The records the library logged (one per rejected cookie, until a reason passes 10 a minute)."""
    return [r for r in caplog.records if r.name == "sealed_sessions"]


def rejection_reasons(caplog: pytest.LogCaptureFixture) -> list[str | None]:
    """The reason code of each rejection logged, in order."""
    return [getattr(r, "reason", None) for r in rejections(caplog)]
