"""K5: a stateful model of the whole application, checked response by response.

Hypothesis drives three devices against the real app in process (SessionMiddleware + SessionAuth on
SQLite): logins, reads, writes, logout, revocation with and without ``keep``, key rotation and key
removal, clock moves across the idle and absolute limits, replay of any cookie ever issued (a stolen
or pre-logout copy) and database outages. A small model predicts, for every request, the status,
the user served, the note read back, and whether a ``Set-Cookie`` (new cookie or deletion) comes
back; each new cookie is unsealed and compared with the model too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from sealed_sessions import SessionMiddleware, generate_key
from sealed_sessions.testing import unseal
from tests.helpers import COOKIE, FakeClock, https_client

from .sealedapp import build_app, create_users

USERS = (1, 2, 3)
DEVICES = 3
MAX_AGE = 1200
IDLE = 300
RENEW_AFTER = IDLE // 4


@dataclass(frozen=True)
class Sess:
    """What the model knows about one sealed cookie."""

    user: int
    token: int  # the user's token version when this cookie got its token
    issued_at: int
    last_active: int
    key: str  # the key that sealed it
    note: str | None


@dataclass
class Device:
    cookie: str | None = None
    sess: Sess | None = None


class AppModel(RuleBasedStateMachine):
    """The application as a model: see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.mkdtemp(prefix="sealed-k5-")
        self.clock = FakeClock()
        self.outage = False
        self.ring = [generate_key()]
        self.tokens = dict.fromkeys(USERS, 0)
        self.devices = [Device() for _ in range(DEVICES)]
        self.history: list[tuple[str, Sess]] = []
        self.built = build_app(
            f"sqlite+aiosqlite:///{self.tmp}/k5.db",
            "k5_users",
            keys=self.ring,
            clock=self.clock,
            session_middleware=False,
        )

        @event.listens_for(self.built.engine.sync_engine, "before_cursor_execute")
        def _outage(*_args: Any) -> None:
            if self.outage:
                raise OperationalError("simulated outage", None, ConnectionRefusedError())

        self.loop.run_until_complete(create_users(self.built.engine, self.built, len(USERS)))
        self.middleware = self._middleware()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await self.middleware(scope, receive, send)

        self.client = https_client(app)

    def _middleware(self) -> SessionMiddleware:
        return SessionMiddleware(
            self.built.app, secret_key=list(self.ring), max_age=MAX_AGE, idle_timeout=IDLE, clock=self.clock
        )

    def teardown(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.built.engine.dispose())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- model helpers ----------------------------------------------------------------------------

    @property
    def now(self) -> int:
        return int(self.clock.now)

    def opens(self, sess: Sess | None) -> bool:
        """Whether the middleware accepts this cookie: key still in the ring, within both limits."""
        return (
            sess is not None
            and sess.key in self.ring
            and self.now < sess.issued_at + MAX_AGE
            and self.now < sess.last_active + IDLE
        )

    def judge(self, sess: Sess | None) -> str:
        """What the auth dependency will say: anon, outage, revoked or ok."""
        if sess is None or not self.opens(sess):
            return "anon"
        if self.outage:
            return "outage"
        return "ok" if self.tokens[sess.user] == sess.token else "revoked"

    def reseal_due(self, sess: Sess) -> bool:
        return sess.key != self.ring[0] or self.now - sess.last_active >= RENEW_AFTER

    def request(self, device: Device, method: str, path: str) -> tuple[httpx.Response, str | None]:
        """Send with the device's cookie; return the response and the Set-Cookie value ('' = deletion)."""
        headers = {"cookie": f"{COOKIE}={device.cookie}"} if device.cookie else {}
        response = self.loop.run_until_complete(self.client.request(method, path, headers=headers))
        self.client.cookies.clear()  # the device's cookie is kept by hand, in the model
        assert response.status_code < 500 or response.status_code == 503, response.text
        set_cookies = [v for v in response.headers.get_list("set-cookie") if v.startswith(f"{COOKIE}=")]
        assert len(set_cookies) <= 1
        if not set_cookies:
            return response, None
        value = set_cookies[0].split(";", 1)[0].removeprefix(f"{COOKIE}=")
        if not value:
            assert "Max-Age=0" in set_cookies[0]
        return response, value

    def accept(self, device: Device, value: str, sess: Sess) -> None:
        """A new cookie arrived: check its sealed contents against the model, then adopt it."""
        opened = unseal(self.ring, value)
        assert opened.sealed_with_current_key
        assert opened.issued_at == sess.issued_at and opened.last_active == sess.last_active == self.now
        assert opened.expires_at == sess.issued_at + MAX_AGE
        assert opened.data.get("note") == sess.note
        assert opened.data["_auth_uid"] == sess.user
        device.cookie, device.sess = value, sess
        self.history.append((value, sess))

    def expect_refusal(self, device: Device, kind: str, response: httpx.Response, set_cookie: str | None) -> None:
        if kind == "outage":
            assert response.status_code == 503 and response.headers["retry-after"]
            assert set_cookie is None  # nobody is logged out by an outage
        elif kind == "revoked":
            assert response.status_code == 401
            assert set_cookie == ""  # the dead session is deleted
            device.cookie, device.sess = None, None
        else:
            assert response.status_code == 401
            assert set_cookie is None
            device.sess = None  # the browser keeps sending a cookie that no longer opens

    # -- rules --------------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        assert all(d.cookie is None for d in self.devices)

    @rule(d=st.integers(0, DEVICES - 1), user=st.sampled_from(USERS))
    def login(self, d: int, user: int) -> None:
        device = self.devices[d]
        response, set_cookie = self.request(device, "POST", f"/login/{user}")
        if self.outage:
            assert response.status_code == 503 and set_cookie is None
            return
        assert response.status_code == 200 and set_cookie
        self.accept(device, set_cookie, Sess(user, self.tokens[user], self.now, self.now, self.ring[0], None))

    @rule(d=st.integers(0, DEVICES - 1))
    def me(self, d: int) -> None:
        device = self.devices[d]
        kind = self.judge(device.sess)
        response, set_cookie = self.request(device, "GET", "/me")
        if kind != "ok":
            self.expect_refusal(device, kind, response, set_cookie)
            return
        sess = device.sess
        assert sess is not None and response.status_code == 200
        assert response.json()["user"] == sess.user and response.json()["note"] == sess.note
        if self.reseal_due(sess):
            assert set_cookie
            self.accept(device, set_cookie, replace(sess, last_active=self.now, key=self.ring[0]))
        else:
            assert set_cookie is None

    @rule(d=st.integers(0, DEVICES - 1), note=st.sampled_from(["a", "b"]))
    def write_note(self, d: int, note: str) -> None:
        device = self.devices[d]
        kind = self.judge(device.sess)
        response, set_cookie = self.request(device, "POST", f"/note/{note}")
        if kind != "ok":
            self.expect_refusal(device, kind, response, set_cookie)
            return
        sess = device.sess
        assert sess is not None and response.status_code == 200 and response.json()["user"] == sess.user
        if note != sess.note or self.reseal_due(sess):
            assert set_cookie
            self.accept(device, set_cookie, replace(sess, note=note, last_active=self.now, key=self.ring[0]))
        else:
            assert set_cookie is None

    @rule(d=st.integers(0, DEVICES - 1))
    def logout(self, d: int) -> None:
        device = self.devices[d]
        had_session = self.opens(device.sess)
        response, set_cookie = self.request(device, "POST", "/logout")
        assert response.status_code == 200
        if had_session:
            assert set_cookie == ""
            device.cookie = None
        else:
            assert set_cookie is None
        device.sess = None

    @rule(d=st.integers(0, DEVICES - 1), keep=st.booleans())
    def revoke(self, d: int, keep: bool) -> None:
        device = self.devices[d]
        kind = self.judge(device.sess)
        response, set_cookie = self.request(device, "POST", f"/revoke?keep={str(keep).lower()}")
        if kind != "ok":
            self.expect_refusal(device, kind, response, set_cookie)
            return
        sess = device.sess
        assert sess is not None and response.status_code == 200
        self.tokens[sess.user] += 1
        if keep:
            assert set_cookie
            self.accept(
                device, set_cookie, replace(sess, token=self.tokens[sess.user], last_active=self.now, key=self.ring[0])
            )
        elif self.reseal_due(sess):
            assert set_cookie
            self.accept(device, set_cookie, replace(sess, last_active=self.now, key=self.ring[0]))
        else:
            assert set_cookie is None

    @rule()
    def rotate_key(self) -> None:
        self.ring = [generate_key(), *self.ring][:3]
        self.middleware = self._middleware()

    @rule()
    def drop_oldest_key(self) -> None:
        if len(self.ring) > 1:
            self.ring.pop()
            self.middleware = self._middleware()

    @rule(seconds=st.sampled_from([1, RENEW_AFTER - 1, RENEW_AFTER, IDLE - 1, IDLE, 2 * RENEW_AFTER]))
    def advance_clock(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule(d=st.integers(0, DEVICES - 1), pick=st.integers(0, 10_000))
    def replay(self, d: int, pick: int) -> None:
        """The device sends any cookie ever issued (its own old one, or one stolen from another device)."""
        if self.history:
            value, sess = self.history[pick % len(self.history)]
            self.devices[d].cookie, self.devices[d].sess = value, sess

    @rule(down=st.booleans())
    def database(self, down: bool) -> None:
        self.outage = down

    @invariant()
    def anonymous_ping_always_works(self) -> None:
        response = self.loop.run_until_complete(self.client.get("/ping"))
        assert response.status_code == 200 and "set-cookie" not in response.headers


@pytest.mark.case("K5")
def test_every_response_of_the_app_matches_its_stateful_model() -> None:
    """Every response of the real app, over random sequences of session events, matches the model."""
    run_state_machine_as_test(
        AppModel,
        settings=settings(
            max_examples=int(os.environ.get("SEALED_K5_EXAMPLES", "40")),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
