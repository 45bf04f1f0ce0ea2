"""CSRFMiddleware inside SessionMiddleware: whole requests refused or passed, the body replayed, exemptions, logs.

Catalogue T1 to T13 (see docs/SECURITY-CASES.md, section T).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealed_sessions import ConfigurationError, Session, SessionMiddleware
from sealed_sessions._csrf import CSRFError, csrf_field, csrf_token
from sealed_sessions._csrf_middleware import CSRFMiddleware
from sealed_sessions.testing import seal
from tests.helpers import COOKIE, KEY_A, b64, cookie, https_client, rejection_reasons, rejections

UNSAFE = ["POST", "PUT", "PATCH", "DELETE"]
SAFE = ["GET", "HEAD", "OPTIONS", "TRACE"]
MISSING = "CSRF check failed: token missing"
INVALID = "CSRF check failed: token invalid"
ORIGIN = "CSRF check failed: origin"

# -- the application ---------------------------------------------------------------------------------


async def token(request: Request) -> Response:
    return PlainTextResponse(csrf_token(request))


async def page(request: Request) -> Response:
    return HTMLResponse(f'<form method="post" action="/form">{csrf_field(request)}</form>')


async def echo(request: Request) -> Response:
    request.app.state.calls += 1
    return Response(await request.body(), media_type=request.headers.get("content-type"))


async def form_fields(request: Request) -> Response:
    request.app.state.calls += 1
    fields: dict[str, str] = {}
    async with request.form() as form:
        for name, value in form.multi_items():
            fields[name] = value if isinstance(value, str) else (await value.read()).decode()
    return JSONResponse(fields)


async def login(request: Request) -> Response:
    Session.of(request).reset()
    request.session["user"] = "ada"
    return PlainTextResponse("logged in")


async def untouched(request: Request) -> Response:
    return PlainTextResponse(request.method)


async def webhook_receiver(request: Request) -> Response:
    return PlainTextResponse("hook")


def csrf_app(**options: Any) -> Starlette:
    """The test app: SessionMiddleware, then CSRFMiddleware(**options), then routes to get tokens and post to."""
    app = Starlette(
        routes=[
            Route("/token", token),
            Route("/page", page),
            Route("/echo", echo, methods=UNSAFE),
            Route("/form", form_fields, methods=["POST"]),
            Route("/login", login, methods=["POST"]),
            Route("/any", untouched, methods=SAFE + UNSAFE),
            Route("/hook", echo, methods=["POST"], name="stripe_hook"),
            Route("/receiver", webhook_receiver, methods=["POST"]),
            Mount(
                "/api", name="api", routes=[Route("/a", echo, methods=["POST"]), Route("/b", echo, methods=["POST"])]
            ),
            Mount("/in", name="inbound", routes=[Route("/x", echo, methods=["POST"])]),
        ],
        middleware=[Middleware(SessionMiddleware, secret_key=KEY_A), Middleware(CSRFMiddleware, **options)],
    )
    app.state.calls = 0
    return app


def client_for(app: ASGIApp) -> httpx.AsyncClient:
    """An https client on ``app``, where a ``receive`` after the whole body says the client left.

    httpx would instead wait for the response to finish: a body the middleware failed to replay
    would hang the test rather than fail it.
    """

    async def no_waiting(scope: Scope, receive: Receive, send: Send) -> None:
        done = False

        async def receive_once() -> Message:
            nonlocal done
            if done:
                return {"type": "http.disconnect"}
            message = await receive()
            done = not message.get("more_body", False)
            return message

        await app(scope, receive_once, send)

    return https_client(no_waiting)


async def token_of(client: httpx.AsyncClient) -> str:
    """A fresh token from the app, which also gives the client its session cookie."""
    response = await client.get("/token")
    assert response.status_code == 200
    return response.text


def assert_refused(response: httpx.Response, detail: str, status: int = 403) -> None:
    assert (response.status_code, response.text) == (status, detail)
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"


# -- a raw ASGI driver, for the exact body messages ----------------------------------------------------


class Recorder:
    """A raw ASGI app that reads the whole body and records every message it received."""

    def __init__(self) -> None:
        self.received: list[Message] = []
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        while scope["method"] not in SAFE:
            self.received.append(await receive())
            if not self.received[-1].get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def raw(
    app: ASGIApp, method: str, messages: Sequence[Message], headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[int | None, list[Message], int]:
    """Send one request with these body messages; return the status (None if nothing was sent), what
    the app sent and how many times ``receive`` was called. Past the given messages, ``receive``
    says the client left, so an app waiting for a body that was not replayed fails instead of hanging."""
    pending = list(messages)
    asked = 0

    async def receive() -> Message:
        nonlocal asked
        asked += 1
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": method,
        "scheme": "https",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "server": ("testserver", 443),
    }
    await app(scope, receive, send)
    return (sent[0]["status"] if sent else None), sent, asked


def raw_stack(app: ASGIApp, **options: Any) -> tuple[ASGIApp, list[tuple[bytes, bytes]], str]:
    """SessionMiddleware(CSRFMiddleware(app)), the headers of a session holding a CSRF secret, and a valid token."""
    secret = secrets.token_bytes(32)
    mask = secrets.token_bytes(32)
    valid = b64(mask + bytes(m ^ s for m, s in zip(mask, secret, strict=True)))
    value = seal(KEY_A, {"_csrf": b64(secret)})
    stack = SessionMiddleware(CSRFMiddleware(app, **options), secret_key=KEY_A)
    return stack, [(b"cookie", cookie(value).encode())], valid


def chunks(*parts: bytes) -> list[Message]:
    return [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]


FORM = (b"content-type", b"application/x-www-form-urlencoded")

# -- T1, T2, T3, T4: the token -------------------------------------------------------------------------


@pytest.mark.case("T1")
@pytest.mark.parametrize("method", UNSAFE)
async def test_an_unsafe_request_without_a_token_is_refused_before_the_app_runs(method: str) -> None:
    """POST, PUT, PATCH and DELETE without a token get a plain 403 naming the reason; the endpoint never runs."""
    app = csrf_app()
    async with client_for(app) as client:
        await token_of(client)
        response = await client.request(method, "/echo", content=b"{}", headers={"content-type": "application/json"})
    assert_refused(response, MISSING)
    assert app.state.calls == 0


@pytest.mark.case("T1")
async def test_a_token_in_the_query_string_does_not_count() -> None:
    """Only the header and the form field are read: a token in the URL (which logs keep) is ignored."""
    async with client_for(csrf_app()) as client:
        valid = await token_of(client)
        response = await client.post("/echo", params={"csrf_token": valid}, content=b"x")
    assert_refused(response, MISSING)


@pytest.mark.case("T2")
@pytest.mark.parametrize("bad", ["wrong", "A" * 86, "é"])
async def test_a_wrong_or_malformed_token_is_refused(bad: str) -> None:
    """A wrong token, in the header or the form field, is a 403 `token invalid`, never a 500."""
    async with client_for(csrf_app()) as client:
        await token_of(client)
        by_header = await client.post("/echo", headers=[(b"x-csrf-token", bad.encode())])
        by_form = await client.post("/form", data={"csrf_token": bad})
    assert_refused(by_header, INVALID)
    assert_refused(by_form, INVALID)


@pytest.mark.case("T3")
async def test_a_token_of_another_session_is_refused() -> None:
    """The attacker's own valid token does not pass in the victim's session, nor in a session without a secret."""
    app = csrf_app()
    async with client_for(app) as attacker, client_for(app) as victim, client_for(app) as newcomer:
        attackers_token = await token_of(attacker)
        await token_of(victim)
        in_victim = await victim.post("/echo", headers={"x-csrf-token": attackers_token})
        in_new_session = await newcomer.post("/echo", headers={"x-csrf-token": attackers_token})
        own = await attacker.post("/echo", headers={"x-csrf-token": attackers_token})
    assert_refused(in_victim, INVALID)
    assert_refused(in_new_session, INVALID)
    assert own.status_code == 200


@pytest.mark.case("T4")
async def test_every_rendering_carries_a_different_token_and_each_one_passes() -> None:
    """Ten renderings of a form give ten different tokens (BREACH masking); each is accepted in turn."""
    async with client_for(csrf_app()) as client:
        pages = [(await client.get("/page")).text for _ in range(10)]
        tokens = [p.split('value="')[1].split('"')[0] for p in pages]
        assert len(set(tokens)) == 10
        for value in tokens:
            assert (await client.post("/form", data={"csrf_token": value})).status_code == 200


async def test_the_header_passes_any_body_untouched() -> None:
    """With X-CSRF-Token the body is not read by the check: a JSON body reaches the endpoint as sent."""
    async with client_for(csrf_app()) as client:
        valid = await token_of(client)
        body = b'{"name": "ada", "csrf_token": "ignored"}'
        response = await client.post(
            "/echo", content=body, headers={"content-type": "application/json", "x-csrf-token": valid}
        )
    assert (response.status_code, response.content) == (200, body)


async def test_the_header_is_read_first_even_for_a_form() -> None:
    """A form post with a valid header passes whatever its field holds; a wrong header is not rescued by the field."""
    async with client_for(csrf_app()) as client:
        valid = await token_of(client)
        good = await client.post("/form", data={"csrf_token": "junk"}, headers={"x-csrf-token": valid})
        bad = await client.post("/form", data={"csrf_token": valid}, headers={"x-csrf-token": "junk"})
    assert good.status_code == 200
    assert_refused(bad, INVALID)


async def test_header_and_field_names_are_configurable() -> None:
    """header_name and field_name choose where the token is looked for; the defaults are then ignored."""
    app = csrf_app(header_name="X-XSRF", field_name="authenticity_token")
    async with client_for(app) as client:
        valid = await token_of(client)
        assert (await client.post("/echo", headers={"x-xsrf": valid})).status_code == 200
        assert (await client.post("/form", data={"authenticity_token": valid})).status_code == 200
        assert_refused(await client.post("/echo", headers={"x-csrf-token": valid}), MISSING)
        assert_refused(await client.post("/form", data={"csrf_token": valid}), MISSING)


# -- T9, T10: the body ---------------------------------------------------------------------------------


@pytest.mark.case("T9")
async def test_an_urlencoded_form_reaches_the_endpoint_intact() -> None:
    """The check reads the field, then the endpoint gets the same bytes and parses the same fields."""
    async with client_for(csrf_app()) as client:
        valid = await token_of(client)
        fields = {"csrf_token": valid, "name": "Ada Lovelace", "note": "a&b=c ü"}
        parsed = await client.post("/form", data=fields)
        echoed = await client.post("/echo", data=fields)
    assert parsed.status_code == 200 and parsed.json() == fields
    assert echoed.content == httpx.Request("POST", "https://x", data=fields).read()


@pytest.mark.case("T9")
async def test_a_multipart_form_with_a_file_reaches_the_endpoint_intact() -> None:
    """A multipart post's field is found and the endpoint gets every byte, the file's included."""
    upload = bytes(range(256)) * 64
    async with client_for(csrf_app()) as client:
        valid = await token_of(client)
        parsed = await client.post(
            "/form", data={"csrf_token": valid, "title": "cv"}, files={"doc": ("a.txt", b"hello")}
        )
        request = client.build_request("POST", "/echo", data={"csrf_token": valid}, files={"doc": ("b.bin", upload)})
        sent = request.read()
        echoed = await client.send(request)
    assert parsed.status_code == 200 and parsed.json() == {"csrf_token": valid, "title": "cv", "doc": "hello"}
    assert echoed.status_code == 200 and echoed.content == sent


@pytest.mark.case("T9")
async def test_the_app_receives_the_very_same_body_messages() -> None:
    """A body in three chunks is replayed to the app as the same message objects, in order, then receive goes on."""
    recorder = Recorder()
    stack, headers, valid = raw_stack(recorder)
    messages = chunks(b"a=1&csrf", b"_token=" + valid.encode(), b"&b=2")
    status, _, asked = await raw(stack, "POST", messages, [*headers, FORM])
    assert status == 200
    assert len(recorder.received) == 3 and all(a is b for a, b in zip(recorder.received, messages, strict=True))
    assert asked == 3


@pytest.mark.case("T10")
async def test_a_form_over_max_body_is_refused_with_413_before_reading() -> None:
    """A Content-Length over max_body is a 413 without a byte read; the app never runs."""
    recorder = Recorder()
    stack, headers, valid = raw_stack(recorder, max_body=1000)
    body = b"csrf_token=" + valid.encode() + b"&pad=" + b"x" * 2000
    length = (b"content-length", str(len(body)).encode())
    status, sent, asked = await raw(stack, "POST", chunks(body), [*headers, FORM, length])
    assert (status, asked, recorder.calls) == (413, 0, 0)
    assert sent[1]["body"] == b"CSRF check failed: too large"


@pytest.mark.case("T10")
async def test_a_streamed_form_is_refused_once_it_passes_max_body() -> None:
    """Without Content-Length, reading stops at the chunk that passes max_body: 413, the rest never read."""
    recorder = Recorder()
    stack, headers, _ = raw_stack(recorder, max_body=1000)
    status, _, asked = await raw(stack, "POST", chunks(b"x" * 600, b"x" * 600, b"x" * 600), [*headers, FORM])
    assert (status, asked, recorder.calls) == (413, 2, 0)


@pytest.mark.case("T10")
async def test_max_body_does_not_apply_with_the_header() -> None:
    """A large upload with the token in the header is not read by the check, so any size passes to the app."""
    recorder = Recorder()
    stack, headers, valid = raw_stack(recorder, max_body=1000)
    status, _, asked = await raw(
        stack, "POST", chunks(b"x" * 5000, b"y" * 5000), [*headers, FORM, (b"x-csrf-token", valid.encode())]
    )
    assert (status, asked, len(recorder.received)) == (200, 2, 2)


async def test_a_form_at_exactly_max_body_is_read() -> None:
    """max_body bytes exactly are still searched (the limit is inclusive)."""
    recorder = Recorder()
    _, headers, valid = raw_stack(recorder)
    body = b"csrf_token=" + valid.encode() + b"&"
    exactly = SessionMiddleware(CSRFMiddleware(recorder, max_body=len(body)), secret_key=KEY_A)
    status, _, _ = await raw(exactly, "POST", chunks(body), [*headers, FORM])
    assert status == 200


async def test_a_malformed_multipart_body_is_a_missing_token_not_a_500() -> None:
    """A multipart body the parser rejects is treated as carrying no token: 403, never a server error."""
    async with client_for(csrf_app()) as client:
        await token_of(client)
        response = await client.post(
            "/form", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=xyz"}
        )
    assert_refused(response, MISSING)


async def test_a_client_gone_while_the_body_is_read_gets_nothing_and_the_app_never_runs() -> None:
    """An http.disconnect during the read ends the request quietly: no response, no app call."""
    recorder = Recorder()
    stack, headers, _ = raw_stack(recorder)
    messages: list[Message] = [{"type": "http.request", "body": b"a=1", "more_body": True}, {"type": "http.disconnect"}]
    status, sent, _ = await raw(stack, "POST", messages, [*headers, FORM])
    assert (status, sent, recorder.calls) == (None, [], 0)


# -- T5, T6, T7: origins ----------------------------------------------------------------------------------


def other_site(case: str, **headers: str) -> Any:
    return pytest.param({k.replace("_", "-"): v for k, v in headers.items()}, marks=pytest.mark.case(case))


@pytest.mark.parametrize(
    "headers",
    [
        other_site("T5", sec_fetch_site="cross-site", origin="https://evil.example"),
        other_site("T5", sec_fetch_site="same-site", origin="https://blog.testserver"),
        other_site("T6", origin="https://evil.example"),
        other_site("T6", origin="null"),
        other_site("T7", referer="https://evil.example/attack.html"),
    ],
)
async def test_requests_from_other_sites_are_refused_even_with_a_valid_token(headers: dict[str, str]) -> None:
    """Cross-site or same-site fetches, foreign and null origins and a foreign Referer: 403 `origin`, token or not."""
    app = csrf_app()
    async with client_for(app) as client:
        valid = await token_of(client)
        response = await client.post("/echo", headers={**headers, "x-csrf-token": valid})
    assert_refused(response, ORIGIN)
    assert app.state.calls == 0


@pytest.mark.case("T5", "T6")
async def test_trusted_origins_pass_the_origin_checks_but_still_need_the_token() -> None:
    """A trusted sibling's same-site post passes with a token, and is refused without one."""
    sibling = {"sec-fetch-site": "same-site", "origin": "https://admin.testserver"}
    async with client_for(csrf_app(trusted_origins=["https://admin.testserver"])) as client:
        valid = await token_of(client)
        assert (await client.post("/echo", headers={**sibling, "x-csrf-token": valid})).status_code == 200
        assert_refused(await client.post("/echo", headers=sibling), MISSING)


async def test_same_origin_browser_requests_pass() -> None:
    """A browser's same-origin post (Sec-Fetch-Site, or Origin alone, or Origin null under no-referrer) passes."""
    async with client_for(csrf_app()) as client:
        valid = await token_of(client)
        for headers in (
            {"sec-fetch-site": "same-origin", "origin": "https://testserver"},
            {"sec-fetch-site": "same-origin", "origin": "null"},
            {"origin": "https://testserver"},
            {"referer": "https://testserver/page"},
        ):
            assert (await client.post("/echo", headers={**headers, "x-csrf-token": valid})).status_code == 200


# -- T11: safe methods ---------------------------------------------------------------------------------


@pytest.mark.case("T11")
@pytest.mark.parametrize("method", SAFE)
async def test_safe_methods_pass_untouched(method: str) -> None:
    """GET, HEAD, OPTIONS and TRACE, even cross-site, reach the app without a token; no body or session is read."""
    recorder = Recorder()
    stack, headers, _ = raw_stack(recorder)
    cross_site = [(b"sec-fetch-site", b"cross-site"), (b"origin", b"https://evil.example")]
    status, sent, asked = await raw(stack, method, [], [*headers, *cross_site])
    assert (status, asked, recorder.calls) == (200, 0, 1)
    assert not any(k == b"vary" for k, _ in sent[0]["headers"])


async def test_websockets_and_lifespan_pass_untouched() -> None:
    """Non-HTTP scopes go straight to the app, with no session needed."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    middleware = CSRFMiddleware(app)
    for kind in ("websocket", "lifespan"):
        await middleware({"type": kind, "headers": []}, asyncio.Event().wait, app)  # type: ignore[arg-type]
    assert seen == ["websocket", "lifespan"]


# -- T12: exemptions ---------------------------------------------------------------------------------


@pytest.mark.case("T12")
@pytest.mark.parametrize(
    ("exempt", "passes", "refused"),
    [
        (["stripe_hook"], ["/hook"], ["/echo", "/receiver", "/api/a"]),
        (["webhook_receiver"], ["/receiver"], ["/hook", "/echo"]),
        (["api"], ["/api/a", "/api/b"], ["/hook", "/in/x"]),
        (["inbound:echo"], ["/in/x"], ["/api/a", "/echo"]),
        (["echo"], ["/echo"], ["/in/x", "/api/a", "/hook"]),
    ],
)
async def test_routes_are_exempted_by_name(exempt: list[str], passes: list[str], refused: list[str]) -> None:
    """A route's name=, its function's name, a mount's name, or mount:route exempt exactly those routes."""
    async with client_for(csrf_app(exempt=exempt)) as client:
        for path in passes:
            assert (await client.post(path, headers={"origin": "https://evil.example"})).status_code == 200, path
        for path in refused:
            assert (await client.post(path)).status_code == 403, path


async def test_exemption_needs_a_starlette_application() -> None:
    """exempt= on a raw ASGI app (no scope["app"].router) is a ConfigurationError at the first unsafe request."""
    stack, headers, _ = raw_stack(Recorder(), exempt=["hook"])
    with pytest.raises(ConfigurationError, match="Starlette or FastAPI"):
        await raw(stack, "POST", chunks(b""), headers)


# -- T8: rotation at login -----------------------------------------------------------------------------


@pytest.mark.case("T8")
async def test_login_through_session_reset_replaces_the_secret() -> None:
    """After a login that resets the session, a token from before login is refused and a new one passes."""
    async with client_for(csrf_app()) as client:
        before = await token_of(client)
        assert (await client.post("/login", headers={"x-csrf-token": before})).status_code == 200
        assert_refused(await client.post("/echo", headers={"x-csrf-token": before}), INVALID)
        after = await token_of(client)
        assert (await client.post("/echo", headers={"x-csrf-token": after})).status_code == 200


# -- T13: logs ---------------------------------------------------------------------------------------


@pytest.mark.case("T13")
async def test_refusals_are_logged_by_reason_without_any_token(caplog: pytest.LogCaptureFixture) -> None:
    """Each refusal is one record with a csrf_ reason code; no record holds a token, the secret or the cookie."""
    caplog.set_level(logging.DEBUG)
    app = csrf_app()
    async with client_for(app) as client:
        valid = await token_of(client)
        await client.post("/echo")
        await client.post("/echo", headers={"x-csrf-token": valid[:-2] + "AA"})
        await client.post("/form", data={"csrf_token": valid + "x"})
        await client.post("/echo", headers={"origin": "null", "x-csrf-token": valid})
        secret = str(client.cookies[COOKIE])
    assert rejection_reasons(caplog) == [
        "csrf_token_missing",
        "csrf_token_invalid",
        "csrf_token_invalid",
        "csrf_origin",
    ]
    assert rejections(caplog)[0].getMessage() == "the CSRF check refused a request: csrf_token_missing"
    text = caplog.text + "".join(repr(vars(r)) for r in caplog.records)
    assert valid[:20] not in text and secret[:20] not in text


@pytest.mark.case("T13")
async def test_a_flood_of_refusals_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    """Thirty refusals in a minute log ten records; the middleware counts all thirty."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    recorder = Recorder()
    stack, headers, _ = raw_stack(recorder)
    for _ in range(30):
        await raw(stack, "POST", chunks(b""), headers)
    assert rejection_reasons(caplog) == ["csrf_token_missing"] * 10
    middleware = stack.app  # type: ignore[attr-defined]
    assert isinstance(middleware, CSRFMiddleware)
    assert middleware.rejections.counts == {"csrf_token_missing": 30}


# -- configuration -------------------------------------------------------------------------------------


async def test_without_a_session_middleware_an_unsafe_request_is_a_configuration_error() -> None:
    """CSRFMiddleware outside SessionMiddleware raises a ConfigurationError saying how to order them; GETs pass."""
    recorder = Recorder()
    outside = CSRFMiddleware(SessionMiddleware(recorder, secret_key=KEY_A))
    assert (await raw(outside, "GET", []))[0] == 200
    with pytest.raises(ConfigurationError, match="SessionMiddleware must run before it"):
        await raw(outside, "POST", chunks(b""))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"exempt": "hook"}, "collection of route names"),
        ({"max_body": 0}, "max_body"),
        ({"max_body": True}, "max_body"),
        ({"header_name": ""}, "must be a non-empty str"),
        ({"trusted_origins": ["example.com"]}, "scheme://host"),
    ],
)
def test_bad_options_are_refused_at_construction(options: dict[str, Any], message: str) -> None:
    """Options that cannot work raise a ConfigurationError when the middleware is built."""
    with pytest.raises(ConfigurationError, match=message):
        CSRFMiddleware(Recorder(), **options)


async def test_failure_response_can_be_overridden() -> None:
    """A subclass's failure_response() renders the refusal its own way, with the reason and the scope at hand."""

    class PageMiddleware(CSRFMiddleware):
        def failure_response(self, error: CSRFError, scope: Scope) -> ASGIApp:
            path = scope["path"]
            return HTMLResponse(f"<h1>Form expired ({error.reason}, {path})</h1>", status_code=error.status_code)

    app = Starlette(
        routes=[Route("/", untouched, methods=["POST"])],
        middleware=[Middleware(SessionMiddleware, secret_key=KEY_A), Middleware(PageMiddleware)],
    )
    async with client_for(app) as client:
        response = await client.post("/")
    assert (response.status_code, response.text) == (403, "<h1>Form expired (token_missing, /)</h1>")


async def test_a_refusal_does_not_touch_the_session_cookie() -> None:
    """A refused request sets no cookie: the session, secret included, stays as it was."""
    async with client_for(csrf_app()) as client:
        await token_of(client)
        response = await client.post("/echo")
    assert response.status_code == 403 and "set-cookie" not in response.headers


@pytest.mark.case("T12")
async def test_routes_of_included_fastapi_routers_are_exempted_by_name() -> None:
    """A route in an APIRouter added with include_router (nested too) is exempted by name; its siblings are not."""
    from fastapi import APIRouter, FastAPI

    hooks = APIRouter(prefix="/hooks")

    @hooks.post("/stripe")
    async def stripe_webhook() -> dict[str, bool]:
        return {"ok": True}

    @hooks.post("/other")
    async def other_hook() -> dict[str, bool]:
        return {"ok": True}

    deep = APIRouter(prefix="/deep")

    @deep.post("/x")
    async def deep_hook() -> dict[str, bool]:
        return {"ok": True}

    hooks.include_router(deep)
    app = FastAPI(
        middleware=[
            Middleware(SessionMiddleware, secret_key=KEY_A),
            Middleware(CSRFMiddleware, exempt=["stripe_webhook", "deep_hook"]),
        ]
    )
    app.include_router(hooks)
    async with https_client(app) as client:
        assert (await client.post("/hooks/stripe")).status_code == 200
        assert (await client.post("/hooks/deep/x")).status_code == 200
        assert (await client.post("/hooks/other")).status_code == 403


@pytest.mark.case("T14")
@pytest.mark.parametrize(
    ("authorization", "bearer_exempt", "status"),
    [
        ("Bearer abc.def", True, 200),
        ("Basic dXNlcjpwdw==", True, 403),
        ("Bearer abc.def", False, 403),
    ],
)
async def test_bearer_clients_pass_only_where_the_app_says_it_takes_them(
    authorization: str, bearer_exempt: bool, status: int
) -> None:
    """With bearer_exempt a Bearer POST passes; without it, or with another scheme, it is checked."""

    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("done")

    app = Starlette(
        routes=[Route("/", endpoint, methods=["POST"])],
        middleware=[
            Middleware(SessionMiddleware, secret_key=KEY_A),
            Middleware(CSRFMiddleware, bearer_exempt=bearer_exempt),
        ],
    )
    async with https_client(app) as client:
        response = await client.post("/", headers={"Authorization": authorization, "Origin": "https://evil.example"})
    assert response.status_code == status
