"""Login throttling and the password-hashing limit, driven through the demo's API and forms.

Time is a hand-moved clock: the 15-minute window passes without sleeping. Client addresses are
set per client on the ASGI transport, as uvicorn reports them.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI

from examples.demo import passwords as passwords_module
from examples.demo.accounts import Accounts
from examples.demo.passwords import HASH_CONCURRENCY, HasherBusy, PasswordHasher
from examples.demo.throttle import ACCOUNT_LIMIT, ADDRESS_LIMIT, WINDOW, LoginThrottle, address_key
from tests.helpers import FakeClock

from .flows import PASSWORD, USER, api_sign_up, client_at, form_login, set_cookies

WRONG = "not the password"
THROTTLED = "Too many failed login attempts. Try again later."


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/login", json={"email": email, "password": password})


def retry_after(response: httpx.Response) -> int:
    """The response's Retry-After, which must be a whole number of seconds."""
    value = response.headers["retry-after"]
    assert value.isdigit(), value
    return int(value)


def assert_throttled(response: httpx.Response) -> int:
    """A 429 with a generic message, a Retry-After within the window and no session; its Retry-After."""
    assert response.status_code == 429, response.text
    assert response.json() == {"detail": THROTTLED}
    assert not set_cookies(response)
    seconds = retry_after(response)
    assert 1 <= seconds <= WINDOW
    return seconds


@pytest.mark.parametrize("account", ["known", "unknown"])
@pytest.mark.case("N1")
async def test_sixth_wrong_password_for_an_account_is_429_even_with_the_right_one(
    demo_user: httpx.AsyncClient, demo_client: httpx.AsyncClient, account: str
) -> None:
    """Five failures for one address are 401; the sixth attempt is 429 with Retry-After, known account or not."""
    email = USER if account == "known" else "nobody@example.com"
    for _ in range(ACCOUNT_LIMIT):
        assert (await login(demo_client, email, WRONG)).status_code == 401
    assert_throttled(await login(demo_client, email, PASSWORD))  # the right password does not get through
    assert_throttled(await login(demo_client, f"  {email.upper()} ", WRONG))  # nor another spelling
    assert await api_sign_up(demo_client, "other@example.com")  # other accounts are not affected


async def test_account_limit_ends_when_the_window_passes(
    demo_user: httpx.AsyncClient, demo_client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Retry-After counts down to the moment the oldest failure leaves the window; then the right password works."""
    for _ in range(ACCOUNT_LIMIT):
        assert (await login(demo_client, USER, WRONG)).status_code == 401
        clock.advance(60)
    wait = assert_throttled(await login(demo_client, USER))
    assert wait == WINDOW - ACCOUNT_LIMIT * 60
    clock.advance(wait - 1)
    assert assert_throttled(await login(demo_client, USER)) == 1
    clock.advance(1)
    assert (await login(demo_client, USER)).status_code == 200


async def test_a_successful_login_clears_the_account_count(
    demo_user: httpx.AsyncClient, demo_client: httpx.AsyncClient
) -> None:
    """Four failures, a success, then four more failures: no 429, since the success reset the account's count."""
    for _ in range(2):
        for _ in range(ACCOUNT_LIMIT - 1):
            assert (await login(demo_client, USER, WRONG)).status_code == 401
        assert (await login(demo_client, USER)).status_code == 200


@pytest.mark.case("N1")
async def test_address_limit_spans_accounts(demo_app: FastAPI, demo_user: httpx.AsyncClient, clock: FakeClock) -> None:
    """Twenty failures from one address, one per account, block that address for any account; others still log in."""
    async with client_at(demo_app, "203.0.113.7") as sprayer, client_at(demo_app, "198.51.100.1") as elsewhere:
        for index in range(ADDRESS_LIMIT):
            assert (await login(sprayer, f"guess{index}@example.com", WRONG)).status_code == 401
        assert_throttled(await login(sprayer, USER))
        assert (await login(elsewhere, USER)).status_code == 200
        clock.advance(WINDOW)
        assert (await login(sprayer, USER)).status_code == 200


async def test_html_login_is_throttled_with_the_same_message(
    demo_user: httpx.AsyncClient, demo_client: httpx.AsyncClient
) -> None:
    """The login form gives the same 429, with Retry-After and the form shown again."""
    for _ in range(ACCOUNT_LIMIT):
        assert (await form_login(demo_client, USER, WRONG)).status_code == 400
    response = await form_login(demo_client, USER)
    assert response.status_code == 429
    assert THROTTLED in response.text
    assert 'id="login"' in response.text
    assert 1 <= retry_after(response) <= WINDOW
    assert (await demo_client.get("/profile")).headers["location"] == "/login"


async def test_wrong_current_passwords_count_against_the_account(demo_user: httpx.AsyncClient) -> None:
    """A stolen session cannot guess the current password: the sixth password-change attempt is 429."""
    change = {"current_password": WRONG, "new_password": "a brand new password"}
    for _ in range(ACCOUNT_LIMIT):
        assert (await demo_user.post("/api/password", json=change)).status_code == 400
    assert_throttled(await demo_user.post("/api/password", json={**change, "current_password": PASSWORD}))


def test_ipv6_clients_are_counted_per_64() -> None:
    """Addresses of one IPv6 /64 share a counter, an IPv4-mapped address counts as the IPv4 one, junk is bounded."""
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == address_key("192.0.2.1") == "192.0.2.1"
    assert address_key(None) == "unknown"
    assert len(address_key("x" * 1000)) == 64


def test_throttle_memory_is_bounded(clock: FakeClock) -> None:
    """Past max_keys, expired entries go first, then the oldest: the table never grows beyond its bound."""
    throttle = LoginThrottle(clock=clock, max_keys=10)
    for index in range(50):
        throttle.failed(f"user{index}@example.com", f"192.0.2.{index}")
        assert throttle.tracked <= 10 + 1  # one attempt touches two counters
    clock.advance(WINDOW)
    throttle.failed("late@example.com", "192.0.2.200")
    assert throttle.tracked == 2


# -- the hashing limit -----------------------------------------------------------------------------


def hashes_counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the scrypt computations from now on (one list entry each)."""
    calls: list[int] = []
    real = passwords_module._scrypt

    def counting(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        calls.append(n)
        return real(password, salt, n, r, p)

    monkeypatch.setattr(passwords_module, "_scrypt", counting)
    return calls


@pytest.mark.case("N2")
async def test_busy_hasher_answers_503_and_twenty_logins_run_no_hash(
    demo_app: FastAPI, demo_user: httpx.AsyncClient, demo_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every hashing slot taken, 20 concurrent logins get 503 with Retry-After and not one scrypt runs."""
    accounts: Accounts = demo_app.state.accounts
    hasher = accounts.hasher
    assert hasher.concurrency == HASH_CONCURRENCY == 4
    hasher.queue_wait = 0  # answer at once instead of waiting for a slot (the default waits 2 s)
    calls = hashes_counted(monkeypatch)
    async with AsyncExitStack() as slots:
        for _ in range(hasher.concurrency):
            await slots.enter_async_context(hasher.slot())
        responses = await asyncio.gather(*(login(demo_client, f"u{i}@example.com", WRONG) for i in range(20)))
        page = await form_login(demo_client, USER)
    assert {r.status_code for r in responses} == {503}
    assert {r.json()["detail"] for r in responses} == {"The server is busy. Try again in a moment."}
    assert {retry_after(r) for r in responses} == {2}
    assert (page.status_code, retry_after(page)) == (503, 2)
    assert calls == []
    assert (await login(demo_client, USER, WRONG)).status_code == 401  # busy answers were not counted
    assert (await login(demo_client, USER)).status_code == 200


async def test_a_check_waits_for_a_free_hashing_slot() -> None:
    """A password check that finds every slot busy queues for one, and runs when a slot frees up."""
    hasher = PasswordHasher(2**10, concurrency=1)
    stored = await hasher.hash(PASSWORD)
    async with hasher.slot():
        waiting = asyncio.create_task(hasher.verify(PASSWORD, stored))
        await asyncio.sleep(0)  # let it start: it stops at the semaphore (ordering only, nothing is timed)
        assert hasher.queued == 1
        assert not waiting.done()
    assert await waiting is True
    assert hasher.queued == 0


async def test_a_cancelled_request_keeps_its_slot_until_its_hash_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that disconnects mid-hash cannot free the slot early: it stays taken until the thread is done."""
    started, finish = threading.Event(), threading.Event()

    def slow_verify(password: str, stored: str) -> bool:
        started.set()
        finish.wait(timeout=30)  # a safety bound only: the test sets it
        return False

    monkeypatch.setattr(passwords_module, "_verify_sync", slow_verify)
    hasher = PasswordHasher(2**10, concurrency=1, queue_wait=0)
    request = asyncio.create_task(hasher.verify(PASSWORD, "scrypt$1024$8$1$a$b"))
    assert await asyncio.to_thread(started.wait, 30)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    with pytest.raises(HasherBusy):  # the thread still hashes, so its slot is still taken
        async with hasher.slot():
            pass
    finish.set()
    hasher.queue_wait = 30  # a safety bound only: the slot frees as soon as the thread returns
    async with hasher.slot():
        assert hasher.queued == 0
