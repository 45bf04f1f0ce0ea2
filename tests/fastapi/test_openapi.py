"""The dependency as an OpenAPI security scheme, and the documented 401 and 503."""

from typing import Any

from fastapi import FastAPI

from sealed_sessions import SessionMiddleware
from tests.helpers import COOKIE, KEY_A, PLAIN_COOKIE

from .harness import HarnessFactory


def openapi(app: FastAPI) -> dict[str, Any]:
    schema: dict[str, Any] = app.openapi()
    return schema


async def test_openapi_declares_the_session_cookie_scheme(make_harness: HarnessFactory) -> None:
    """/openapi.json lists an apiKey-in-cookie scheme named after the session cookie, used by protected routes."""
    h = await make_harness("sqlite")
    schema = openapi(h.app)
    assert schema["components"]["securitySchemes"] == {
        "SessionCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": COOKIE,
            "description": "The sealed session cookie, set at login.",
        }
    }
    me = schema["paths"]["/me"]["get"]
    assert me["security"] == [{"SessionCookie": []}]
    assert me["responses"]["401"] == {"description": "Not authenticated, or the session was revoked"}
    assert me["responses"]["503"] == {"description": "The session could not be checked; retry later"}
    assert "parameters" not in me  # the cookie is not exposed as an ordinary parameter
    assert schema["paths"]["/maybe"]["get"]["security"] == [{"SessionCookie": []}]
    assert "security" not in schema["paths"]["/public"]["get"]
    assert "security" not in schema["paths"]["/login/{name}"]["post"]


async def test_default_cookie_name_is_the_middlewares(make_harness: HarnessFactory) -> None:
    """By default the scheme and the 401 challenge name the cookie the middleware uses with its own defaults."""
    h = await make_harness("sqlite")
    middleware = SessionMiddleware(h.app, secret_key=KEY_A)
    assert h.auth.scheme.model.name == middleware.cookie.name == COOKIE
    assert h.auth.scheme.make_not_authenticated_error().headers == {"WWW-Authenticate": f'Cookie name="{COOKIE}"'}


async def test_openapi_scheme_follows_options(make_harness: HarnessFactory) -> None:
    """A custom cookie name and scheme name reach the OpenAPI document and the 401 challenge."""
    h = await make_harness("sqlite", session_cookie=PLAIN_COOKIE, scheme_name="Sid", description=None)
    schema = openapi(h.app)
    assert schema["components"]["securitySchemes"] == {"Sid": {"type": "apiKey", "in": "cookie", "name": "session"}}
    error = h.auth.scheme.make_not_authenticated_error()
    assert error.status_code == 401
    assert error.headers == {"WWW-Authenticate": 'Cookie name="session"'}
