"""B3 through the whole app: a session sealed with the real key but holding absurd auth fields.

Reachable only by someone holding the key (defence in depth): such a session must be refused like
any dead session (401 and a deletion cookie), never crash (500) nor look like an outage (503
forever, since the cookie is kept on a 503). The out-of-range ids and the NUL token were bugs
found by this test (a 500 on SQLite, a 503 loop on PostgreSQL), fixed in ``SessionAuth``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sealed_sessions.testing import seal
from tests.helpers import KEY_A, ClientFactory, cookie, loopback_url

from .sealedapp import TestApp, build_app, create_users, drop_table


def _databases() -> list[Any]:
    params: list[Any] = [pytest.param("sqlite", id="sqlite")]
    params.append(
        pytest.param(
            "postgres",
            id="postgres",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not os.environ.get("SEALED_TEST_POSTGRES_URL"), reason="no PostgreSQL URL"),
            ],
        )
    )
    return params


@pytest.fixture(params=_databases())
async def built(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[str, TestApp]]:
    kind: str = request.param
    url = f"sqlite+aiosqlite:///{tmp_path}/f.db" if kind == "sqlite" else loopback_url("SEALED_TEST_POSTGRES_URL")
    assert url is not None
    test_app = build_app(url, "sec_forged_" + secrets.token_hex(4), keys=[KEY_A])
    await create_users(test_app.engine, test_app, 1)
    yield kind, test_app
    await drop_table(test_app.engine, test_app)
    await test_app.engine.dispose()


CASES = [
    ("uid-int32-overflow", 2**31, "t"),
    ("uid-int64-overflow", 2**63, "t"),
    ("uid-huge-negative", -(2**70), "t"),
    ("token-nul", 1, "a\x00b"),
    ("token-control", 1, "a\nb"),
    ("token-non-ascii", 1, "\u00e9" * 64),
    ("uid-bool", True, "t"),
    ("uid-float", 1.0, "t"),
    ("uid-string", "1", "t"),
    ("token-number", 1, 12345),
    ("token-too-long", 1, "x" * 65),
]


@pytest.mark.case("B3")
@pytest.mark.parametrize(("uid", "token"), [pytest.param(u, t, id=i) for i, u, t in CASES])
async def test_forged_auth_fields_are_refused_never_500(
    built: tuple[str, TestApp], client_factory: ClientFactory, uid: object, token: object
) -> None:
    """A key-holder's session with an impossible user id or token gets 401 and a deletion cookie, never 500 or 503."""
    _, test_app = built
    value = seal(KEY_A, {test_app.auth.user_id_key: uid, test_app.auth.token_key: token})
    async with client_factory(test_app.app) as client:
        response = await client.get("/me", headers={"cookie": cookie(value)})
    assert response.status_code == 401, response.text
    assert "Max-Age=0" in response.headers.get("set-cookie", "")
