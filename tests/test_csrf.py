"""The CSRF core: masked tokens bound to the session's secret, the origin checks, the error, the template helpers.

Catalogue T2, T3, T4, T5, T6, T7 and T8 at the level of single calls; the middleware and the
FastAPI dependency carry them again through whole requests.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Scope

from sealed_sessions import ConfigurationError, SealedSessionsError, Session
from sealed_sessions._csrf import (
    SESSION_KEY,
    CSRFError,
    CSRFReason,
    csrf_field,
    csrf_token,
    origin_allowed,
    rotate_csrf_token,
    token_matches,
    trusted_origin_set,
)
from tests.helpers import b64, unb64

TOKEN = re.compile(r"[A-Za-z0-9_-]{86}")


def request_with(session: Any = None) -> Request:
    """A bare request whose scope holds ``session`` (a new Session if not given)."""
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "headers": [],
        "session": Session() if session is None else session,
    }
    return Request(scope)


def session_of(request: Request) -> Session:
    session: Session = request.scope["session"]
    return session


def masked_with(mask: bytes, secret: bytes) -> str:
    """The token for ``secret`` under an explicit ``mask``, built independently of the library."""
    return b64(mask + bytes(m ^ s for m, s in zip(mask, secret, strict=True)))


# -- tokens ------------------------------------------------------------------------------------------


@pytest.mark.case("T4")
def test_tokens_are_masked_afresh_at_every_call_and_all_verify() -> None:
    """Every call gives a different 86-character token (mask || masked secret), and every one verifies."""
    request = request_with()
    tokens = [csrf_token(request) for _ in range(200)]
    assert len(set(tokens)) == 200
    assert all(TOKEN.fullmatch(t) for t in tokens)
    assert all(token_matches(session_of(request), t) for t in tokens)


def test_secret_is_made_on_first_use_and_kept() -> None:
    """The first call stores a 32-byte secret (so the cookie is written); later calls reuse it unchanged."""
    request = request_with()
    assert SESSION_KEY not in dict(session_of(request)) and not session_of(request).modified
    csrf_token(request)
    secret = session_of(request)[SESSION_KEY]
    assert session_of(request).modified and len(unb64(secret)) == 32
    csrf_token(request)
    assert session_of(request)[SESSION_KEY] == secret


def test_a_token_is_the_secret_under_a_random_mask() -> None:
    """A token unmasks to the session's secret; the same secret under any mask verifies."""
    request = request_with()
    token = unb64(csrf_token(request))
    secret = unb64(session_of(request)[SESSION_KEY])
    assert bytes(a ^ b for a, b in zip(token[:32], token[32:], strict=True)) == secret
    assert token_matches(session_of(request), masked_with(bytes(32), secret))
    assert token_matches(session_of(request), masked_with(b"\xff" * 32, secret))


@pytest.mark.case("T2")
def test_the_bare_secret_is_not_a_token() -> None:
    """The unmasked secret is refused: it is never handed out, so only a forger could send it."""
    request = request_with()
    csrf_token(request)
    assert not token_matches(session_of(request), session_of(request)[SESSION_KEY])


@pytest.mark.case("T3")
def test_a_token_of_another_session_is_refused() -> None:
    """A valid token of one session (the attacker's own) does not verify in another."""
    attacker, victim = request_with(), request_with()
    csrf_token(victim)
    assert not token_matches(session_of(victim), csrf_token(attacker))


@pytest.mark.case("T2")
@pytest.mark.parametrize(
    "token",
    ["", "x", "A" * 85, "A" * 87, "A" * 86, "+" * 86, "/" * 86, "=" * 86, "é" * 86, " " + "A" * 85, "A" * 86 + "\n"],
)
def test_malformed_tokens_are_refused_without_an_error(token: str) -> None:
    """Wrong lengths, characters outside base64url, non-ASCII text and stray whitespace are refused."""
    request = request_with()
    csrf_token(request)
    assert not token_matches(session_of(request), token)


@pytest.mark.case("T2")
def test_a_change_in_any_character_of_a_token_is_refused() -> None:
    """Changing any character but the last (whose low bits are padding) of a valid token makes it invalid."""
    request = request_with()
    token = csrf_token(request)
    for i in range(len(token) - 1):
        other = "A" if token[i] != "A" else "B"
        assert not token_matches(session_of(request), token[:i] + other + token[i + 1 :])


@pytest.mark.case("T2")
@given(st.text(max_size=200))
def test_arbitrary_text_never_verifies_and_never_raises(text: str) -> None:
    """Any text as a token is refused, never an exception (a property test over arbitrary input)."""
    session = Session()
    session[SESSION_KEY] = b64(bytes(range(32)))
    assert not token_matches(session, text)


@pytest.mark.parametrize("stored", [None, 42, "", "short", "csrf" * 20, ["list"], "+" * 43])
def test_a_session_without_a_usable_secret_refuses_every_token_and_gets_a_new_one(stored: Any) -> None:
    """With no secret, or something else under the key, nothing verifies; csrf_token() then makes a real secret."""
    request = request_with()
    if stored is not None:
        session_of(request)[SESSION_KEY] = stored
    assert not token_matches(session_of(request), csrf_token(request_with()))
    token = csrf_token(request)
    assert len(unb64(session_of(request)[SESSION_KEY])) == 32
    assert token_matches(session_of(request), token)


@pytest.mark.case("T8")
def test_rotation_refuses_every_earlier_token() -> None:
    """rotate_csrf_token() replaces the secret: tokens handed out before fail, the one it returns verifies."""
    request = request_with()
    before = [csrf_token(request) for _ in range(3)]
    after = rotate_csrf_token(request)
    assert not any(token_matches(session_of(request), t) for t in before)
    assert token_matches(session_of(request), after)
    assert token_matches(session_of(request), csrf_token(request))


@pytest.mark.case("T8")
def test_session_reset_drops_the_secret() -> None:
    """Session.reset() (what SessionAuth.login runs) drops the secret: earlier tokens fail, a new secret follows."""
    request = request_with()
    before = csrf_token(request)
    session_of(request).reset()
    assert SESSION_KEY not in dict(session_of(request))
    assert not token_matches(session_of(request), before)
    assert token_matches(session_of(request), csrf_token(request))


def test_helpers_work_with_a_plain_dict_session() -> None:
    """Starlette's own SessionMiddleware keeps a plain dict: the helpers work on it too."""
    request = request_with({})
    assert token_matches(request.scope["session"], csrf_token(request))


def test_helpers_without_a_session_say_which_middleware_is_missing() -> None:
    """With no session in the scope, csrf_token() raises a ConfigurationError naming SessionMiddleware."""
    request = Request({"type": "http", "method": "GET", "headers": []})
    for helper in (csrf_token, csrf_field, rotate_csrf_token):
        with pytest.raises(ConfigurationError, match=r"scope\['session'\]: add sealed_sessions.SessionMiddleware$"):
            helper(request)
    with pytest.raises(ConfigurationError, match=r"scope\['admin'\]"):
        csrf_token(request_with(), scope_key="admin")


# -- the template helper -----------------------------------------------------------------------------


def test_csrf_field_is_an_escaped_hidden_input_holding_a_fresh_token() -> None:
    """csrf_field() is one hidden input named csrf_token whose value verifies; names are HTML-escaped."""
    request = request_with()
    field = csrf_field(request)
    match = re.fullmatch(r'<input type="hidden" name="csrf_token" value="([A-Za-z0-9_-]{86})">', field)
    assert match and token_matches(session_of(request), match.group(1))
    assert csrf_field(request) != field
    odd = csrf_field(request, field_name='a"b<c>')
    assert odd.startswith('<input type="hidden" name="a&quot;b&lt;c&gt;" value="')


def test_csrf_field_is_marked_safe_for_autoescaping_templates() -> None:
    """csrf_field() is a str whose __html__ gives itself, so MarkupSafe and Jinja2 insert it unescaped."""
    field = csrf_field(request_with())
    assert isinstance(field, str)
    assert field.__html__() == field  # type: ignore[attr-defined]


def test_helpers_render_in_a_jinja2_template_with_autoescape() -> None:
    """Registered as Jinja2 globals, {{ csrf_field(request) }} renders the element and csrf_token a valid token."""
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment(autoescape=True)
    env.globals.update(csrf_token=csrf_token, csrf_field=csrf_field)
    request = request_with()
    page = env.from_string('<form>{{ csrf_field(request) }}<b data-t="{{ csrf_token(request) }}"></b></form>')
    rendered = page.render(request=request)
    found = re.fullmatch(
        r'<form><input type="hidden" name="csrf_token" value="(.{86})"><b data-t="(.{86})"></b></form>', rendered
    )
    assert found is not None
    field, token = found.groups()
    assert token_matches(session_of(request), field) and token_matches(session_of(request), token)


# -- the error ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "status", "detail"),
    [
        (CSRFReason.ORIGIN, 403, "CSRF check failed: origin"),
        (CSRFReason.TOKEN_MISSING, 403, "CSRF check failed: token missing"),
        (CSRFReason.TOKEN_INVALID, 403, "CSRF check failed: token invalid"),
        (CSRFReason.TOO_LARGE, 413, "CSRF check failed: too large"),
    ],
)
def test_error_is_an_http_exception_under_the_library_root(reason: CSRFReason, status: int, detail: str) -> None:
    """CSRFError is a SealedSessionsError and a Starlette HTTPException with a fixed detail per reason, never cached."""
    error = CSRFError(reason)
    assert isinstance(error, SealedSessionsError) and isinstance(error, HTTPException)
    assert (error.reason, error.status_code, error.detail) == (reason, status, detail)
    assert error.headers == {"Cache-Control": "no-store"}
    assert str(error) == f"{status}: {detail}"


# -- origins -----------------------------------------------------------------------------------------

OWN = [("host", "testserver")]
EVIL = "https://evil.example"
SITE = "sec-fetch-site"
ADMIN = "https://admin.testserver"
PARTNER = "https://partner.example"
Pairs = list[tuple[str, str]]


def allowed(headers: Pairs, trusted: tuple[str, ...] = (), scheme: str = "https") -> bool:
    scope = {"type": "http", "scheme": scheme, "server": ("testserver", 443)}
    raw = [(k.encode(), v.encode()) for k, v in headers]
    return origin_allowed(scope, Headers(raw=raw), trusted_origin_set(trusted))


def row(case: str | None, name: str, headers: Pairs, trusted: tuple[str, ...] = ()) -> Any:
    """One parameter of the origin tables, marked with its catalogue row if it carries one."""
    return pytest.param(headers, trusted, id=name, marks=[pytest.mark.case(case)] if case else [])


REFUSED = [
    row("T5", "cross-site", [(SITE, "cross-site"), ("origin", EVIL)]),
    row("T5", "cross-site-no-origin", [(SITE, "cross-site")]),
    row("T5", "same-site", [(SITE, "same-site"), ("origin", "https://sub.testserver")]),
    row("T5", "same-site-own-origin", [(SITE, "same-site"), ("origin", "https://testserver")]),
    row("T6", "foreign-origin", [("origin", EVIL)]),
    row("T6", "origin-null", [("origin", "null")]),
    row("T6", "other-scheme", [("origin", "http://testserver")]),
    row("T6", "other-port", [("origin", "https://testserver:8443")]),
    row("T6", "suffix-host", [("origin", "https://testserver.evil.example")]),
    row("T6", "garbage-origin", [("origin", "???")]),
    row("T6", "origin-decides", [("origin", EVIL), ("referer", "https://testserver/form")]),
    row("T6", "other-trusted", [("origin", EVIL)], (ADMIN,)),
    row("T7", "foreign-referer", [("referer", "https://evil.example/page")]),
    row("T7", "garbage-referer", [("referer", "http://[bad")]),
]
ACCEPTED = [
    row(None, "no-browser-headers", []),
    row(None, "same-origin", [(SITE, "same-origin"), ("origin", "https://testserver")]),
    row(None, "no-referrer-policy", [(SITE, "same-origin"), ("origin", "null")]),
    row(None, "user-initiated", [(SITE, "none")]),
    row(None, "trusted-same-site", [(SITE, "same-site"), ("origin", ADMIN)], (ADMIN,)),
    row(None, "trusted-cross-site", [(SITE, "cross-site"), ("origin", PARTNER)], (PARTNER,)),
    row(None, "own-origin", [("origin", "https://testserver")]),
    row(None, "own-origin-default-port", [("origin", "https://TestServer:443")]),
    row(None, "trusted-origin", [("origin", ADMIN)], (ADMIN,)),
    row(None, "unknown-fetch-site", [(SITE, "future-value"), ("origin", "https://testserver")]),
    row(None, "own-referer", [("referer", "https://testserver/form?x=1")]),
]


@pytest.mark.parametrize(("headers", "trusted"), REFUSED)
def test_origin_checks_refuse(headers: Pairs, trusted: tuple[str, ...]) -> None:
    """Cross-site and same-site fetches, foreign, null or garbled origins and foreign referers are refused."""
    assert not allowed(OWN + headers, trusted)


@pytest.mark.parametrize(("headers", "trusted"), ACCEPTED)
def test_origin_checks_accept(headers: Pairs, trusted: tuple[str, ...]) -> None:
    """Same-origin fetches, the request's own or a trusted origin, and requests with no browser headers pass."""
    assert allowed(OWN + headers, trusted)


def test_own_origin_comes_from_the_host_header_port_and_scheme() -> None:
    """The own origin is the scope's scheme with Host (default port dropped), or the server address without Host."""
    assert allowed([("host", "testserver:443"), ("origin", "https://testserver")])
    assert allowed([("host", "localhost:8000"), ("origin", "http://localhost:8000")], scheme="http")
    assert not allowed([("host", "localhost:8000"), ("origin", "http://localhost")], scheme="http")
    assert allowed([("host", "[::1]:8000"), ("origin", "http://[::1]:8000")], scheme="http")
    assert allowed([("origin", "https://testserver")])  # no Host: the server tuple


def test_trusted_origins_are_normalised() -> None:
    """Trusted origins are lower-cased, lose a default port and a lone trailing slash."""
    given_origins = ["https://Admin.Example.com", "https://example.com:443", "http://localhost:8000/", "http://x:80"]
    expected = {"https://admin.example.com", "https://example.com", "http://localhost:8000", "http://x"}
    assert trusted_origin_set(given_origins) == expected


@pytest.mark.parametrize(
    "origin",
    ["example.com", "https://example.com/path", "https://*.example.com", "ftp://example.com", "https://u@example.com",
     "null", "https://", "https://example.com?q", "https://example.com#f", 42],
)  # fmt: skip
def test_unusable_trusted_origins_are_refused_at_construction(origin: Any) -> None:
    """Anything but scheme://host[:port] over http(s) is a ConfigurationError that shows the expected form."""
    with pytest.raises(ConfigurationError, match="scheme://host"):
        trusted_origin_set([origin])


def test_one_string_is_not_a_collection_of_trusted_origins() -> None:
    """trusted_origins="https://x" (a string, not a list) is refused rather than read as its characters."""
    with pytest.raises(ConfigurationError, match="not one string"):
        trusted_origin_set("https://example.com")
