"""The docker-compose topology on loopback: three real demo processes, one key, one database.

Each process is ``python -m examples.demo`` under uvicorn on its own 127.0.0.1 port. A session made
on one is served by the others (they share only the key and the database, which holds the users and
their device rows); a revocation on the third (log out all other devices, a password change,
logging out this device, or ending one device) is seen by the other two at their next request.
Runs on a shared SQLite file always, and on a fresh PostgreSQL database when SEALED_TEST_POSTGRES_URL
is set.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.helpers import KEY_A

from .harness import REPO_ROOT, DemoServer

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple of the seventh moon"


@dataclass
class Device:
    """One browser: its own cookie, sent by hand so the same cookie can be replayed to any server."""

    client: httpx.AsyncClient
    cookie: str | None = None
    seen: list[str] = field(default_factory=list)
    """Every cookie value this device was ever given (to check that none reached a log)."""

    async def call(self, server: DemoServer, method: str, path: str, body: object = None) -> httpx.Response:
        headers = {"cookie": f"session={self.cookie}"} if self.cookie else {}
        if method in ("POST", "DELETE"):
            headers["content-type"] = "application/json"
        response = await self.client.request(
            method, f"{server.url}{path}", headers=headers, json=body if body is not None else None
        )
        self.client.cookies.clear()  # this Device keeps the cookie itself
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name != "session":
                continue
            value = rest.split(";", 1)[0]
            if "max-age=0" in header.lower() or not value:
                self.cookie = None
            else:
                self.cookie = value
                self.seen.append(value)
        return response

    async def me(self, server: DemoServer) -> httpx.Response:
        return await self.call(server, "GET", "/api/me")

    async def device_id(self, server: DemoServer) -> str:
        """This device's id, as ``GET /api/devices`` on ``server`` lists it."""
        response = await self.call(server, "GET", "/api/devices")
        assert response.status_code == 200, response.text
        (device,) = [d for d in response.json() if d["current"]]
        return str(device["id"])

    async def sign_up(self, server: DemoServer, email: str) -> int:
        """Register (which never logs in) and log in on ``server``; the user's id."""
        registered = await self.call(server, "POST", "/api/register", {"email": email, "password": PASSWORD})
        assert registered.status_code == 202, registered.text
        assert self.cookie is None
        response = await self.call(server, "POST", "/api/login", {"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        user_id: int = response.json()["id"]
        return user_id


@asynccontextmanager
async def devices(count: int) -> AsyncIterator[list[Device]]:
    async with httpx.AsyncClient(timeout=20.0) as client:
        yield [Device(client) for _ in range(count)]


def unique_email() -> str:
    return f"user-{secrets.token_hex(4)}@example.com"


async def test_healthz_names_each_process(three_servers: list[DemoServer]) -> None:
    """Three separate processes answer, each on its own loopback port and under its own name."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        names = [(await client.get(f"{s.url}/healthz")).json()["instance"] for s in three_servers]
    assert names == ["app1", "app2", "app3"]
    assert len({s.port for s in three_servers}) == 3
    assert len({s.process.pid for s in three_servers}) == 3


@pytest.mark.case("G2", "G3", "G4", "G11", "G13", "G14", "M1")
@pytest.mark.parametrize("revocation", ["logout-others", "password-change", "logout", "end-device"])
async def test_login_on_one_process_is_served_by_the_others_and_revoked_on_the_third(
    three_servers: list[DemoServer], revocation: str
) -> None:
    """Log in on app1, be served by app2 and app3; revoke on app3; app1 and app2 refuse the ended sessions at once."""
    app1, app2, app3 = three_servers
    email = unique_email()
    async with devices(3) as (laptop, phone, tablet):
        user_id = await laptop.sign_up(app1, email)
        for server in (app1, app2, app3):  # any process opens a session sealed by another
            response = await laptop.me(server)
            assert response.status_code == 200, response.text
            assert response.json()["id"] == user_id
            assert response.json()["served_by"] == server.name

        assert (await phone.call(app2, "POST", "/api/login", {"email": email, "password": PASSWORD})).status_code == 200
        assert (await phone.me(app1)).status_code == 200
        assert (
            await tablet.call(app3, "POST", "/api/login", {"email": email, "password": PASSWORD})
        ).status_code == 200
        named = {"laptop": laptop, "phone": phone, "tablet": tablet}
        before = {name: device.cookie for name, device in named.items()}

        if revocation == "password-change":
            change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
            response = await tablet.call(app3, "POST", "/api/password", change)
        elif revocation == "end-device":
            response = await tablet.call(app3, "DELETE", f"/api/devices/{await laptop.device_id(app1)}")
        else:
            response = await tablet.call(app3, "POST", f"/api/{revocation}", {})
        assert response.status_code == 204, response.text
        ended = {
            "logout-others": {"laptop", "phone"},
            "password-change": {"laptop", "phone"},
            "logout": {"tablet"},  # logout ends this device only
            "end-device": {"laptop"},
        }[revocation]
        if revocation == "logout":
            assert tablet.cookie is None
        elif revocation == "end-device":
            assert tablet.cookie == before["tablet"]  # nothing changed for the device that ended another
        else:
            assert tablet.cookie not in (None, before["tablet"])  # this device was resealed with the new token

        for name, device in named.items():
            for server in (app1, app2):
                if name in ended:
                    device.cookie = before[name]  # the old cookie, replayed to each of the other processes
                response = await device.me(server)
                if name in ended:
                    assert response.status_code == 401, (server.name, response.text)
                    assert device.cookie is None  # and the browser was told to drop it
                else:
                    assert response.status_code == 200, (server.name, response.text)

        if revocation == "password-change":
            old = await laptop.call(app1, "POST", "/api/login", {"email": email, "password": PASSWORD})
            new = await laptop.call(app2, "POST", "/api/login", {"email": email, "password": NEW_PASSWORD})
            assert (old.status_code, new.status_code) == (401, 200)

    cookies = [c for d in (laptop, phone, tablet) for c in d.seen]
    for server in three_servers:  # M1: neither the key nor any cookie value reached a log line
        log = server.log()
        assert KEY_A not in log
        assert not [c for c in cookies if c in log]


@pytest.mark.case("I1")
async def test_requests_after_the_rotation_commits_are_refused_everywhere(three_servers: list[DemoServer]) -> None:
    """Old-cookie requests racing a revocation: every one sent after the revoke returned is refused, on both others."""
    app1, app2, app3 = three_servers
    email = unique_email()
    async with devices(2) as (victim, owner):
        await victim.sign_up(app1, email)
        assert (await owner.call(app3, "POST", "/api/login", {"email": email, "password": PASSWORD})).is_success
        stolen = victim.cookie
        assert stolen is not None
        revoked_at: list[float] = []
        outcomes: list[tuple[float, int]] = []

        async def replay(server: DemoServer) -> None:
            """Send the old cookie in a loop until 10 requests have started after the revocation returned."""
            after = 0
            async with httpx.AsyncClient(timeout=20.0) as client:
                for _ in range(400):  # bounded
                    started = time.monotonic()
                    response = await client.get(f"{server.url}/api/me", headers={"cookie": f"session={stolen}"})
                    client.cookies.clear()
                    outcomes.append((started, response.status_code))
                    if revoked_at and started > revoked_at[0]:
                        after += 1
                        if after >= 10:
                            return

        async def revoke() -> None:
            await asyncio.sleep(0.05)  # let the replays get going (ordering only; nothing is timed)
            response = await owner.call(app3, "POST", "/api/logout-others", {})
            assert response.status_code == 204
            revoked_at.append(time.monotonic())

        await asyncio.gather(replay(app1), replay(app2), revoke())

    assert revoked_at
    after = [status for started, status in outcomes if started > revoked_at[0]]
    assert len(after) >= 20
    assert set(after) == {401}
    assert {status for _, status in outcomes} <= {200, 401}  # never a 5xx under the race


@pytest.mark.case("D1")
def test_weak_key_stops_the_process_with_a_clear_message(tmp_path: Path) -> None:
    """A weak SEALED_SESSIONS_KEYS makes `python -m examples.demo` exit 2 before serving, saying how to fix it."""
    weak = "tiny-secret-value"
    result = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--port", "9"],
        cwd=REPO_ROOT,
        env={**os.environ, "SEALED_SESSIONS_KEYS": weak, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "python -m sealed_sessions keygen" in result.stderr
    assert weak not in result.stderr + result.stdout
    assert "Uvicorn running" not in result.stderr + result.stdout
