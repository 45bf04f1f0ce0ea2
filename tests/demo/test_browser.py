"""The demo in a real browser: headless Chromium (Debian's package) driven by Playwright over loopback.

Logs in through the form, checks that page scripts cannot read the session cookie, and uses a
second browser context (another device) to log out all other devices: the first is sent to the
login page at its next navigation. Screenshots go to test-artifacts/browser/. Skips, saying why,
when Chromium or Playwright is missing (`.ci/run` installs Chromium; `pip install playwright`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import REPO_ROOT, DemoServer, demo_cluster

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
PASSWORD = "correct horse battery"

async_api = pytest.importorskip("playwright.async_api", reason="Playwright for Python is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[DemoServer]]:
    """Two demo processes on loopback sharing a key and a SQLite file, as behind the compose load balancer."""
    database = tmp_path_factory.mktemp("browser-db") / "demo.db"
    with demo_cluster(2, f"sqlite+aiosqlite:///{database}", tmp_path_factory.mktemp("browser-logs")) as servers:
        yield servers


@pytest.mark.case("G3")
async def test_browser_login_httponly_and_logout_other_devices(two_servers: list[DemoServer]) -> None:
    """Chromium: form login works, scripts cannot see the cookie, another device's revoke sends this one to login."""
    app1, app2 = two_servers
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            laptop = await (await browser.new_context()).new_page()
            phone = await (await browser.new_context()).new_page()

            await laptop.goto(f"{app1.url}/register")
            await laptop.fill("#email", "browser@example.com")
            await laptop.fill("#password", PASSWORD)
            await laptop.click("#register button[type=submit]")
            await laptop.wait_for_url(f"{app1.url}/profile")
            assert await laptop.text_content("#email") == "browser@example.com"
            await laptop.screenshot(path=str(ARTIFACTS / "1-laptop-profile.png"), full_page=True)

            stored = await laptop.context.cookies()
            session = [c for c in stored if c["name"] == "session"]
            assert len(session) == 1 and session[0].get("httpOnly") is True
            assert "session=" not in await laptop.evaluate("document.cookie")
            await laptop.goto(f"{app2.url}/profile")  # the other process serves the same session
            assert laptop.url == f"{app2.url}/profile"

            await phone.goto(f"{app2.url}/login")
            await phone.fill("#email", "browser@example.com")
            await phone.fill("#password", PASSWORD)
            await phone.click("#login button[type=submit]")
            await phone.wait_for_url(f"{app2.url}/profile")
            await phone.click("#logout-others button[type=submit]")
            await phone.wait_for_url(f"{app2.url}/profile?done=others")
            assert "All your other devices are logged out" in (await phone.content())
            await phone.screenshot(path=str(ARTIFACTS / "2-phone-logged-out-others.png"), full_page=True)

            await laptop.goto(f"{app1.url}/profile")
            assert laptop.url == f"{app1.url}/login"
            assert await laptop.is_visible("#login")
            await laptop.screenshot(path=str(ARTIFACTS / "3-laptop-sent-to-login.png"), full_page=True)

            await phone.goto(f"{app1.url}/profile")  # the device that revoked stays logged in, on any server
            assert phone.url == f"{app1.url}/profile"
        finally:
            await browser.close()
