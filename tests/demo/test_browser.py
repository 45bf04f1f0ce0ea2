"""The demo in a real browser: headless Chromium (Debian's package) driven by Playwright over loopback.

Registers and logs in through the forms, checks that page scripts cannot read the session cookie,
and uses a second browser context (another device) to log out all other devices, or to log out the
first one from the devices page: the first is sent to the login page at its next navigation.
Screenshots go to test-artifacts/browser/. Skips, saying why, when Chromium or Playwright is missing
(`.ci/run` installs Chromium; `pip install playwright`).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .harness import REPO_ROOT, DemoServer, demo_cluster

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

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
FIREFOX_ON_MACOS = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0"
"""The laptop's claimed browser, so the phone's devices page can tell the two apart."""

async_api = pytest.importorskip("playwright.async_api", reason="Playwright for Python is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[DemoServer]]:
    """Two demo processes on loopback sharing a key and a SQLite file, as behind the compose load balancer."""
    database = tmp_path_factory.mktemp("browser-db") / "demo.db"
    with demo_cluster(2, f"sqlite+aiosqlite:///{database}", tmp_path_factory.mktemp("browser-logs")) as servers:
        yield servers


async def submit_credentials(page: Page, server: DemoServer, form: str, email: str, lands_on: str) -> None:
    """Open ``/{form}`` on ``server``, fill in ``email`` and the password, submit, and wait for ``lands_on``."""
    await page.goto(f"{server.url}/{form}")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click(f"#{form} button[type=submit]")
    await page.wait_for_url(f"{server.url}{lands_on}")


async def log_in(page: Page, server: DemoServer, email: str) -> None:
    """Log in through the login form on ``server`` and land on the profile."""
    await submit_credentials(page, server, "login", email, "/profile")


async def sign_up(page: Page, server: DemoServer, email: str) -> None:
    """Register through the form (which never logs in: it leads to the login page), then log in."""
    await submit_credentials(page, server, "register", email, "/login?done=registered")
    await log_in(page, server, email)


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium, closed afterwards; a test opens one browser context per device."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.mark.case("G3")
async def test_browser_login_httponly_and_logout_other_devices(
    two_servers: list[DemoServer], chromium: Browser
) -> None:
    """Chromium: form login works, scripts cannot see the cookie, another device's revoke sends this one to login."""
    app1, app2 = two_servers
    laptop = await (await chromium.new_context()).new_page()
    phone = await (await chromium.new_context()).new_page()

    await sign_up(laptop, app1, "browser@example.com")
    assert await laptop.text_content("#email") == "browser@example.com"
    await laptop.screenshot(path=str(ARTIFACTS / "1-laptop-profile.png"), full_page=True)

    stored = await laptop.context.cookies()
    session = [c for c in stored if c["name"] == "session"]
    assert len(session) == 1 and session[0].get("httpOnly") is True
    assert "session=" not in await laptop.evaluate("document.cookie")
    await laptop.goto(f"{app2.url}/profile")  # the other process serves the same session
    assert laptop.url == f"{app2.url}/profile"

    await log_in(phone, app2, "browser@example.com")
    await phone.click("#logout-others button[type=submit]")
    await phone.locator("p.notice").wait_for()  # the flash message on the page the POST redirected to
    assert phone.url == f"{app2.url}/profile"
    assert "All your other devices are logged out" in (await phone.content())
    await phone.screenshot(path=str(ARTIFACTS / "2-phone-logged-out-others.png"), full_page=True)

    await laptop.goto(f"{app1.url}/profile")
    assert laptop.url == f"{app1.url}/login"
    assert await laptop.is_visible("#login")
    await laptop.screenshot(path=str(ARTIFACTS / "3-laptop-sent-to-login.png"), full_page=True)

    await phone.goto(f"{app1.url}/profile")  # the device that revoked stays logged in, on any server
    assert phone.url == f"{app1.url}/profile"


@pytest.mark.case("G13")
async def test_browser_logs_out_another_device_from_the_devices_page(
    two_servers: list[DemoServer], chromium: Browser
) -> None:
    """Chromium: the phone ends the laptop on its devices page; the laptop's next navigation shows the login page."""
    app1, app2 = two_servers
    laptop = await (await chromium.new_context(user_agent=FIREFOX_ON_MACOS)).new_page()
    phone = await (await chromium.new_context()).new_page()
    await sign_up(laptop, app1, "devices@example.com")
    await log_in(phone, app2, "devices@example.com")

    await phone.click("#devices-link")  # the profile links to the devices page
    await phone.wait_for_url(f"{app2.url}/devices")
    assert await phone.locator("tr.device").count() == 2
    assert "This device" in (await phone.text_content("tr.device.current") or "")
    other = phone.locator("tr.device:not(.current)")
    assert "Firefox on macOS" in (await other.text_content() or "")
    await phone.screenshot(path=str(ARTIFACTS / "4-phone-devices.png"), full_page=True)
    await other.locator("button[type=submit]").click()
    await phone.locator("p.notice").wait_for()
    assert phone.url == f"{app2.url}/devices"
    assert "That device is logged out." in (await phone.content())
    assert await phone.locator("tr.device").count() == 1

    await laptop.goto(f"{app1.url}/devices")  # its next navigation, on either server
    assert laptop.url == f"{app1.url}/login"
    assert await laptop.is_visible("#login")
    await laptop.screenshot(path=str(ARTIFACTS / "5-laptop-sent-to-login.png"), full_page=True)

    await phone.goto(f"{app1.url}/profile")  # the phone stays logged in, on any server
    assert phone.url == f"{app1.url}/profile"
