"""The demo's API for clients without cookies (bearer tokens) and its key-usage endpoint."""

from __future__ import annotations

import pytest

from examples.demo.settings import Settings
from tests.demo.flows import PASSWORD, api_sign_up, running
from tests.helpers import ClientFactory

JSON = {"content-type": "application/json"}


@pytest.mark.case("W1")
async def test_a_cli_logs_in_for_a_bearer_token_uses_it_and_ends_it(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """POST /api/token gives a bearer token; it authenticates without a cookie, and /api/token/revoke ends it."""
    async with running(demo_settings) as app, client_factory(app) as browser, client_factory(app) as cli:
        await api_sign_up(browser, "cli@example.com")
        response = await cli.post("/api/token", json={"email": "cli@example.com", "password": PASSWORD})
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
        body = response.json()
        assert body["token_type"] == "bearer" and body["expires_in"] > 0
        auth = {"Authorization": f"Bearer {body['token']}"}
        me = await cli.get("/api/me", headers=auth)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "cli@example.com"
        devices = (await cli.get("/api/devices", headers=auth)).json()
        assert len(devices) == 2  # the browser's login and the CLI's token
        assert (await cli.post("/api/token/revoke", headers={**auth, **JSON}, json={})).status_code == 204
        refused = await cli.get("/api/me", headers=auth)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert (await browser.get("/api/me")).status_code == 200  # the browser's session lives on


async def test_key_usage_endpoint_counts_cookies_per_key(
    demo_settings: Settings, client_factory: ClientFactory
) -> None:
    """GET /api/keys shows the cookies each key of the ring opened, and no secret."""
    async with running(demo_settings) as app, client_factory(app) as browser:
        await api_sign_up(browser, "keys@example.com")
        await browser.get("/api/me")
        usage = (await browser.get("/api/keys")).json()
        assert usage["opened"][usage["current"]] >= 1
        assert set(usage) >= {"cookie", "current", "opened", "since"}
