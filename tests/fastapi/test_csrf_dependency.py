"""CSRFProtect as a FastAPI dependency: refusals as 403 HTTPExceptions, Form and File parameters intact, login.

Catalogue T1 to T13 through FastAPI (see docs/SECURITY-CASES.md, section T).
"""

# No `from __future__ import annotations`: FastAPI resolves the route signatures built in make_app.

import logging
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import select

from sealed_sessions import ConfigurationError, SessionMiddleware
from sealed_sessions._csrf import CSRFError, csrf_token
from sealed_sessions._csrf_fastapi import CSRFProtect
from tests.helpers import COOKIE, KEY_A, ClientFactory, https_client, rejection_reasons

from .harness import HarnessFactory, session_of

MISSING = {"detail": "CSRF check failed: token missing"}
INVALID = {"detail": "CSRF check failed: token invalid"}
ORIGIN = {"detail": "CSRF check failed: origin"}


class Item(BaseModel):
    name: str


def make_app(csrf: CSRFProtect | None = None) -> FastAPI:
    """A FastAPI app behind SessionMiddleware: /token, protected form, upload and JSON routes, and an open one."""
    csrf = csrf or CSRFProtect()
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=KEY_A)
    app.state.calls = 0
    protected = [Depends(csrf)]

    @app.get("/token", response_class=PlainTextResponse)
    async def token(request: Request) -> str:
        return csrf_token(request)

    @app.post("/profile", dependencies=protected)
    async def profile(name: Annotated[str, Form()], csrf_token: Annotated[str, Form()]) -> dict[str, str]:
        app.state.calls += 1
        return {"name": name, "token_length": str(len(csrf_token))}

    @app.post("/upload", dependencies=protected)
    async def upload(title: Annotated[str, Form()], doc: Annotated[UploadFile, File()]) -> dict[str, str]:
        return {"title": title, "doc": (await doc.read()).decode()}

    @app.post("/raw-form", dependencies=protected)
    async def raw_form(request: Request) -> dict[str, Any]:
        return dict((await request.form()).items())

    router = APIRouter(prefix="/api", dependencies=protected)

    @router.post("/items")
    async def create_item(item: Item) -> Item:
        app.state.calls += 1
        return item

    @router.get("/items")
    async def list_items() -> list[Item]:
        return [Item(name="book")]

    app.include_router(router)

    @app.post("/open")
    async def open_route() -> dict[str, bool]:
        return {"ok": True}

    return app


async def token_of(client: httpx.AsyncClient) -> str:
    return (await client.get("/token")).text


@pytest.mark.case("T1")
async def test_a_protected_route_without_a_token_is_a_403_and_never_runs() -> None:
    """A protected form or JSON post without a token gets FastAPI's 403 with the reason; the endpoint never runs."""
    app = make_app()
    async with https_client(app) as client:
        await token_of(client)
        form = await client.post("/profile", data={"name": "ada", "csrf_token": ""})
        json = await client.post("/api/items", json={"name": "pen"})
    for response in (form, json):
        assert (response.status_code, response.json()) == (403, MISSING)
        assert response.headers["cache-control"] == "no-store"
    assert app.state.calls == 0


@pytest.mark.case("T2", "T3")
async def test_a_wrong_token_or_one_of_another_session_is_refused() -> None:
    """A malformed token, or a valid token of another session, is a 403 `token invalid`."""
    app = make_app()
    async with https_client(app) as attacker, https_client(app) as victim:
        stolen = await token_of(attacker)
        await token_of(victim)
        wrong = await victim.post("/api/items", json={"name": "pen"}, headers={"x-csrf-token": "x" * 86})
        foreign = await victim.post("/profile", data={"name": "ada", "csrf_token": stolen})
    assert (wrong.status_code, wrong.json()) == (403, INVALID)
    assert (foreign.status_code, foreign.json()) == (403, INVALID)


async def test_a_json_client_sends_the_token_in_the_header() -> None:
    """With X-CSRF-Token, a JSON body is validated and handled as usual."""
    async with https_client(make_app()) as client:
        valid = await token_of(client)
        response = await client.post("/api/items", json={"name": "pen"}, headers={"x-csrf-token": valid})
    assert (response.status_code, response.json()) == (200, {"name": "pen"})


@pytest.mark.case("T4", "T9")
async def test_form_parameters_still_work_after_the_check_reads_the_form() -> None:
    """The field is read from the cached form: the route's Form() parameters get their values, every token passes."""
    async with https_client(make_app()) as client:
        for _ in range(3):
            valid = await token_of(client)
            response = await client.post("/profile", data={"name": "Ada", "csrf_token": valid})
            assert (response.status_code, response.json()) == (200, {"name": "Ada", "token_length": "86"})


@pytest.mark.case("T9")
async def test_multipart_uploads_and_a_route_reading_the_form_itself_work() -> None:
    """A multipart post's File() and Form() parameters, and a route calling request.form(), see the whole form."""
    async with https_client(make_app()) as client:
        valid = await token_of(client)
        upload = await client.post(
            "/upload", data={"title": "cv", "csrf_token": valid}, files={"doc": ("cv.txt", b"hello")}
        )
        raw = await client.post("/raw-form", data={"a": "1", "csrf_token": valid})
    assert (upload.status_code, upload.json()) == (200, {"title": "cv", "doc": "hello"})
    assert (raw.status_code, raw.json()) == (200, {"a": "1", "csrf_token": valid})


@pytest.mark.case("T5", "T6", "T7")
@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
        {"sec-fetch-site": "same-site", "origin": "https://blog.testserver"},
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"referer": "https://evil.example/"},
    ],
)
async def test_requests_from_other_sites_are_refused(headers: dict[str, str]) -> None:
    """Another site's request is a 403 `origin` even with a valid token."""
    async with https_client(make_app()) as client:
        valid = await token_of(client)
        response = await client.post("/api/items", json={"name": "pen"}, headers={**headers, "x-csrf-token": valid})
    assert (response.status_code, response.json()) == (403, ORIGIN)


@pytest.mark.case("T6")
async def test_a_trusted_origin_passes() -> None:
    """An origin in trusted_origins passes the origin checks (and still needs its token)."""
    app = make_app(CSRFProtect(trusted_origins=["https://admin.testserver"]))
    sibling = {"sec-fetch-site": "same-site", "origin": "https://admin.testserver"}
    async with https_client(app) as client:
        valid = await token_of(client)
        ok = await client.post("/api/items", json={"name": "pen"}, headers={**sibling, "x-csrf-token": valid})
        missing = await client.post("/api/items", json={"name": "pen"}, headers=sibling)
    assert ok.status_code == 200
    assert (missing.status_code, missing.json()) == (403, MISSING)


@pytest.mark.case("T11", "T12")
async def test_safe_methods_and_routes_without_the_dependency_pass() -> None:
    """A GET on a protected router and a POST to a route without the dependency need no token, even cross-site."""
    cross_site = {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}
    async with https_client(make_app()) as client:
        assert (await client.get("/api/items", headers=cross_site)).status_code == 200
        assert (await client.post("/open", headers=cross_site)).status_code == 200


async def test_a_malformed_form_is_a_missing_token() -> None:
    """A multipart body the parser rejects carries no token: 403 `token missing`, as with the middleware."""
    async with https_client(make_app()) as client:
        await token_of(client)
        response = await client.post(
            "/raw-form", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=xyz"}
        )
    assert (response.status_code, response.json()) == (403, MISSING)


async def test_an_exception_handler_can_render_the_refusal() -> None:
    """CSRFError is an HTTPException of its own class: an app can register a page for it alone."""
    app = make_app()

    async def expired(request: Request, exc: Exception) -> HTMLResponse:
        assert isinstance(exc, CSRFError)
        return HTMLResponse(f"<p>This form has expired ({exc.reason}).</p>", status_code=exc.status_code)

    app.add_exception_handler(CSRFError, expired)
    async with https_client(app) as client:
        response = await client.post("/profile", data={"name": "ada", "csrf_token": "old"})
    assert (response.status_code, response.text) == (403, "<p>This form has expired (token_invalid).</p>")


@pytest.mark.case("T13")
async def test_refusals_are_logged_by_reason_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    """Each refusal logs one csrf_ reason code; no record carries the token."""
    caplog.set_level(logging.INFO, logger="sealed_sessions")
    csrf = CSRFProtect()
    async with https_client(make_app(csrf)) as client:
        valid = await token_of(client)
        await client.post("/api/items", json={"name": "pen"})
        await client.post("/api/items", json={"name": "pen"}, headers={"x-csrf-token": valid + "x"})
    assert rejection_reasons(caplog) == ["csrf_token_missing", "csrf_token_invalid"]
    assert valid[:20] not in caplog.text + "".join(repr(vars(r)) for r in caplog.records)
    assert csrf.rejections.counts == {"csrf_token_missing": 1, "csrf_token_invalid": 1}


async def test_without_a_session_middleware_the_dependency_says_so() -> None:
    """CSRFProtect on an app without SessionMiddleware raises a ConfigurationError naming it."""
    app = FastAPI()

    @app.post("/", dependencies=[Depends(CSRFProtect())])
    async def endpoint() -> None: ...

    async with https_client(app) as client:
        with pytest.raises(ConfigurationError, match="SessionMiddleware"):
            await client.post("/")


def test_bad_options_are_refused_at_construction() -> None:
    """A malformed trusted origin or an empty header name is a ConfigurationError when the dependency is built."""
    with pytest.raises(ConfigurationError, match="scheme://host"):
        CSRFProtect(trusted_origins=["admin.example.com"])
    with pytest.raises(ConfigurationError, match="must be a non-empty str"):
        CSRFProtect(header_name="")
    with pytest.raises(ConfigurationError, match="max_body"):
        CSRFProtect(max_body=0)


@pytest.mark.case("T10")
async def test_a_form_whose_length_is_over_max_body_is_refused_unread(client_factory: ClientFactory) -> None:
    """The dependency refuses a form whose Content-Length is over max_body with 413 before parsing it."""
    csrf = CSRFProtect(max_body=1000)
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=KEY_A)

    @app.post("/upload", dependencies=[Depends(csrf)])
    async def upload() -> dict[str, bool]:
        return {"ran": True}

    async with client_factory(app) as client:
        response = await client.post("/upload", files={"file": ("big.bin", b"x" * 5000)})
    assert response.status_code == 413
    assert response.json() == {"detail": "CSRF check failed: too large"}


@pytest.mark.case("T8")
async def test_login_through_session_auth_replaces_the_secret(
    make_harness: HarnessFactory, client_factory: ClientFactory
) -> None:
    """SessionAuth.login resets the session: the CSRF secret is gone, a token from before login is refused."""
    h = await make_harness("sqlite")
    await h.create_user("ada")
    csrf = CSRFProtect()

    @h.app.get("/csrf", response_class=PlainTextResponse)
    async def token(request: Request) -> str:
        return csrf_token(request)

    @h.app.post("/csrf-login/{name}", dependencies=[Depends(csrf)])
    async def login(name: str, request: Request) -> dict[str, str]:
        async with h.maker() as db:
            user = (await db.execute(select(h.User).where(h.User.name == name))).scalar_one()
            h.auth.login(request, user)
        return {"ok": "yes"}

    @h.app.post("/protected", dependencies=[Depends(csrf)])
    async def protected() -> dict[str, str]:
        return {"ok": "yes"}

    async with client_factory(h.app) as client:
        before = await token_of_path(client, "/csrf")
        secret_before = session_of(client)["_csrf"]
        assert (await client.post("/csrf-login/ada", headers={"x-csrf-token": before})).status_code == 200
        assert "_csrf" not in session_of(client)
        refused = await client.post("/protected", headers={"x-csrf-token": before})
        assert (refused.status_code, refused.json()) == (403, INVALID)
        after = await token_of_path(client, "/csrf")
        assert session_of(client)["_csrf"] != secret_before
        assert (await client.post("/protected", headers={"x-csrf-token": after})).status_code == 200
        assert client.cookies[COOKIE]


async def token_of_path(client: httpx.AsyncClient, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200
    return response.text
