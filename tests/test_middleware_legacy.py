"""SessionMiddleware(legacy=...): a legacy cookie is read once, resealed as ours and deleted."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sealed_sessions import SessionMiddleware, StarletteCookie
from sealed_sessions._legacy import MAX_LEGACY_CHECKS
from sealed_sessions.testing import unseal
from tests.helpers import COOKIE, DAY, KEY_A, FakeClock, call, rejection_reasons, session_app, set_cookie_value

OLD_SECRET = "the-old-starlette-secret-key"


@pytest.fixture(autouse=True)
def _log_rejections(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sealed_sessions")


async def _login(request: Request) -> Response:
    request.session.update({"user": 42, "cart": ["apple"]})
    return JSONResponse({})


async def starlette_cookie(**options: Any) -> str:
    """A session cookie made by Starlette's own SessionMiddleware (the installed version)."""
    app = Starlette(
        routes=[Route("/", _login)],
        middleware=[Middleware(StarletteSessionMiddleware, secret_key=OLD_SECRET, **options)],
    )
    result = await call(app)
    (header,) = result.set_cookie
    return set_cookie_value(header)


def migrating_app(clock: FakeClock | None = None, **reader: Any) -> Starlette:
    return session_app(legacy=StarletteCookie(OLD_SECRET, **reader), clock=clock or FakeClock(time.time()))


@pytest.mark.case("S13")
async def test_a_starlette_session_is_resealed_as_ours_and_the_old_cookie_deleted() -> None:
    """The first request opens the Starlette cookie; the response seals it as ours and deletes the old one."""
    result = await call(migrating_app(), f"session={await starlette_cookie()}")
    assert result.json() == {"user": 42, "cart": ["apple"]}
    ours, deletion = result.set_cookie
    assert unseal(KEY_A, set_cookie_value(ours)).data == {"user": 42, "cart": ["apple"]}
    assert deletion.startswith("session=;") and "Max-Age=0" in deletion


async def test_the_migrated_session_keeps_the_legacy_start_and_expiry() -> None:
    """Our cookie's issued_at is Starlette's signing time and it expires when the legacy one would have."""
    clock = FakeClock(time.time())
    value = await starlette_cookie(max_age=DAY)
    result = await call(migrating_app(clock, max_age=DAY), f"session={value}")
    opened = unseal(KEY_A, result.cookie_value())
    assert abs(opened.issued_at - clock.now) <= 2
    assert opened.expires_at == opened.issued_at + DAY


async def test_an_expired_legacy_cookie_is_an_empty_session(caplog: pytest.LogCaptureFixture) -> None:
    """A Starlette cookie past its max_age is ignored and logged as expired; nothing is set."""
    clock = FakeClock(time.time() + DAY + 5)
    result = await call(migrating_app(clock, max_age=DAY), f"session={await starlette_cookie(max_age=DAY)}")
    assert result.json() == {}
    assert result.set_cookie == []
    assert rejection_reasons(caplog) == ["expired"]


async def test_our_max_age_caps_a_longer_legacy_lifetime() -> None:
    """A legacy session older than our max_age is refused even if its own max_age would allow it."""
    clock = FakeClock(time.time() + 2 * DAY)
    app = session_app(legacy=StarletteCookie(OLD_SECRET, max_age=30 * DAY), clock=clock, max_age=DAY)
    assert (await call(app, f"session={await starlette_cookie(max_age=30 * DAY)}")).json() == {}


async def test_a_forged_legacy_cookie_is_an_empty_session(caplog: pytest.LogCaptureFixture) -> None:
    """A legacy cookie signed with another secret is ignored, logged under the legacy name."""
    forged = StarletteCookie("another-secret-entirely")
    app = session_app(legacy=forged, clock=FakeClock(time.time()))
    result = await call(app, f"session={await starlette_cookie()}")
    assert result.json() == {}
    assert result.set_cookie == []
    assert rejection_reasons(caplog) == ["bad_mac"]
    assert "'session'" in caplog.records[0].getMessage()


@pytest.mark.case("S14")
async def test_legacy_readers_never_run_when_our_cookie_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a valid cookie of ours, the legacy reader is not called at all."""
    app = migrating_app()
    migrated = await call(app, f"session={await starlette_cookie()}")
    ours = migrated.cookie_value()

    def fail(*args: Any) -> Any:
        raise AssertionError("legacy reader called")

    monkeypatch.setattr(StarletteCookie, "open", fail)
    result = await call(app, f"{COOKIE}={ours}; session={await starlette_cookie()}")
    assert result.json() == {"user": 42, "cart": ["apple"]}


@pytest.mark.case("S13")
async def test_logging_out_after_migration_does_not_bring_the_legacy_session_back() -> None:
    """The migrating response deletes the legacy cookie, so after logout nothing can reopen the old session."""
    app = migrating_app()
    migrated = await call(app, f"session={await starlette_cookie()}")
    jar = {h.split("=", 1)[0]: set_cookie_value(h) for h in migrated.set_cookie}
    jar = {name: value for name, value in jar.items() if value}
    assert list(jar) == [COOKIE]
    logout = await call(app, f"{COOKIE}={jar[COOKIE]}", path="/clear")
    assert set_cookie_value(logout.set_cookie[0]) == ""
    assert (await call(app)).json() == {}


@pytest.mark.case("S15")
async def test_a_legacy_cookie_of_our_own_name_is_overwritten_not_deleted() -> None:
    """When Starlette used the same name as ours, the migrating response sets ours once and deletes nothing."""
    app = Starlette(
        routes=[Route("/", lambda r: JSONResponse(dict(r.session)))],
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=KEY_A,
                https_only=False,
                legacy=StarletteCookie(OLD_SECRET),
                clock=FakeClock(time.time()),
            )
        ],
    )
    result = await call(app, f"session={await starlette_cookie()}")
    assert result.json() == {"user": 42, "cart": ["apple"]}
    (header,) = result.set_cookie
    assert header.startswith("session=") and set_cookie_value(header) != ""


async def test_a_5xx_response_migrates_nothing() -> None:
    """A failing request neither seals the migrated session nor deletes the legacy cookie."""

    async def boom(request: Request) -> Response:
        request.session["x"] = 1
        return Response(status_code=500)

    app = Starlette(
        routes=[Route("/", boom)],
        middleware=[
            Middleware(
                SessionMiddleware, secret_key=KEY_A, legacy=StarletteCookie(OLD_SECRET), clock=FakeClock(time.time())
            )
        ],
    )
    result = await call(app, f"session={await starlette_cookie()}")
    assert result.set_cookie == []


@pytest.mark.case("S16")
async def test_at_most_four_legacy_values_are_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fifty legacy values of one name cost at most MAX_LEGACY_CHECKS reader calls."""
    calls = 0
    real_open = StarletteCookie.open

    def counting(self: StarletteCookie, value: str, now: int) -> Any:
        nonlocal calls
        calls += 1
        return real_open(self, value, now)

    monkeypatch.setattr(StarletteCookie, "open", counting)
    header = "; ".join(["session=garbage"] * 50)
    assert (await call(migrating_app(), header)).json() == {}
    assert calls == MAX_LEGACY_CHECKS


async def test_a_legacy_cookie_deletion_carries_its_path_and_domain() -> None:
    """The deletion cookie names the legacy cookie's path and domain, or the browser would keep it."""
    app = session_app(
        legacy=StarletteCookie(OLD_SECRET, path="/app", domain="example.com"), clock=FakeClock(time.time())
    )
    result = await call(app, f"session={await starlette_cookie()}")
    deletion = result.set_cookie[1]
    assert deletion.startswith("session=; path=/app;") and "domain=example.com" in deletion


@pytest.mark.case("S15")
async def test_a_legacy_cookie_of_our_name_but_another_domain_is_deleted() -> None:
    """Same name but another domain is another cookie to a browser: it gets its own deletion, so logout sticks."""
    app = session_app(
        session_cookie="session",
        legacy=StarletteCookie(OLD_SECRET, session_cookie="session", domain="example.com"),
        clock=FakeClock(time.time()),
    )
    result = await call(app, f"session={await starlette_cookie()}")
    ours, deletion = result.set_cookie
    assert set_cookie_value(ours) != "" and "domain=" not in ours
    assert set_cookie_value(deletion) == "" and "domain=example.com" in deletion


def test_a_reader_without_path_or_domain_is_a_configuration_error() -> None:
    """A custom reader missing path or domain is refused at startup, not with an AttributeError per request."""
    from sealed_sessions import ConfigurationError

    class Reader:
        cookie_name = "old"

        def open(self, value: str, now: int) -> Any:
            raise AssertionError

    with pytest.raises(ConfigurationError, match="path and domain"):
        SessionMiddleware(session_app(), secret_key=KEY_A, legacy=Reader())  # type: ignore[arg-type]
