"""What a device row may say: user-agent summaries, device ids, device secrets and their hash (G17)."""

import hashlib
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealed_sessions._device_model import (
    DEVICE_ID_BYTES,
    DEVICE_SECRET_BYTES,
    USER_AGENT_MAX_LENGTH,
    hash_device_secret,
    new_device_id,
    new_device_secret,
    summarize_user_agent,
)
from tests.helpers import unb64

pytestmark = pytest.mark.case("G17")

BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
EDGE_WINDOWS = CHROME_WINDOWS + " Edg/124.0.2478.51"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile "
    "Safari/537.36"
)
CHROME_IOS = SAFARI_IOS.replace("Version/17.4", "CriOS/124.0.6367.88")
FIREFOX_IOS = SAFARI_IOS.replace("Version/17.4", "FxiOS/125.0")
OPERA_WINDOWS = CHROME_WINDOWS + " OPR/109.0.0.0"


def assert_storable(summary: str) -> None:
    """A summary fits the column and a page: non-empty printable ASCII of at most 64 characters."""
    assert PRINTABLE_ASCII.fullmatch(summary), repr(summary)
    assert len(summary) <= USER_AGENT_MAX_LENGTH == 64


@pytest.mark.parametrize(
    ("header", "summary"),
    [
        pytest.param(CHROME_WINDOWS, "Chrome on Windows", id="chrome-windows"),
        pytest.param(SAFARI_IOS, "Safari on iOS", id="safari-ios"),
        pytest.param(FIREFOX_LINUX, "Firefox on Linux", id="firefox-linux"),
        pytest.param(EDGE_WINDOWS, "Edge on Windows", id="edge-windows"),
        pytest.param(SAFARI_MAC, "Safari on macOS", id="safari-macos"),
        pytest.param(CHROME_ANDROID, "Chrome on Android", id="chrome-android"),
        pytest.param(CHROME_IOS, "Chrome on iOS", id="chrome-ios"),
        pytest.param(FIREFOX_IOS, "Firefox on iOS", id="firefox-ios"),
        pytest.param(OPERA_WINDOWS, "Opera on Windows", id="opera-windows"),
        pytest.param("curl/8.5.0", "curl", id="curl"),
        pytest.param("Mozilla/5.0 (X11; Linux x86_64) UnknownBrowser/1", "Linux", id="system-only"),
        pytest.param("python-httpx/0.28.1", "python-httpx/0.28.1", id="unknown-kept"),
        pytest.param("", "Unknown device", id="empty"),
        pytest.param(None, "Unknown device", id="none"),
        pytest.param("   \t ", "Unknown device", id="blank"),
    ],
)
def test_summary_of_common_user_agents(header: str | None, summary: str) -> None:
    """Common browsers are summarised as "Browser on OS"; an unknown agent keeps a prefix; none is "Unknown device"."""
    assert summarize_user_agent(header) == summary


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Evil\x00\x1b[31mBot\r\nSet-Cookie: x=1\x7f", id="controls"),
        pytest.param("Bot\u202e\u200bgnp.exe \u00e9\U0001f600", id="bidi-and-non-ascii"),
        pytest.param("A" * 10_240, id="10kb"),
        pytest.param("x" + " " * 10_000 + "y", id="10kb-spaces"),
        pytest.param("\x00" * 10_000, id="only-controls"),
        pytest.param("\u00e9" * 5_000 + "Firefox/1 Linux", id="non-ascii-then-known"),
    ],
)
def test_hostile_user_agents_stay_printable_ascii_within_64(header: str) -> None:
    """Control characters, non-ASCII and 10 KB headers give printable ASCII of at most 64 characters."""
    summary = summarize_user_agent(header)
    assert_storable(summary)
    assert "\r" not in summary and "\n" not in summary


def test_control_characters_are_dropped_not_kept() -> None:
    """Controls are removed from an unknown agent, not replaced by something else."""
    assert summarize_user_agent("Evil\x00\x1b[31mBot\x7f") == "Evil[31mBot"
    assert summarize_user_agent("\x00" * 100) == "Unknown device"


@given(st.one_of(st.none(), st.text(), st.binary().map(lambda raw: raw.decode("latin-1"))))
def test_any_header_gives_a_storable_summary(header: str | None) -> None:
    """Whatever the header holds, the summary is non-empty printable ASCII of at most 64 characters."""
    assert_storable(summarize_user_agent(header))


@pytest.mark.parametrize(
    ("make", "length", "size"),
    [
        pytest.param(new_device_id, 22, DEVICE_ID_BYTES, id="device-id"),
        pytest.param(new_device_secret, 43, DEVICE_SECRET_BYTES, id="device-secret"),
    ],
)
def test_ids_and_secrets_are_random_bytes_of_base64url(make: Callable[[], str], length: int, size: int) -> None:
    """Device ids (16 bytes) and secrets (32 bytes) are unpadded base64url of random bytes, never twice the same."""
    values = [make() for _ in range(10_000)]
    assert len(set(values)) == len(values)
    for value in values[:100]:
        assert len(value) == length
        assert BASE64URL.fullmatch(value)
        assert len(unb64(value)) == size
    bits = "".join(f"{byte:08b}" for value in values for byte in unb64(value))
    assert 0.49 < bits.count("1") / len(bits) < 0.51  # over a million bits: not a counter or a constant
    assert (DEVICE_ID_BYTES, DEVICE_SECRET_BYTES) == (16, 32)


def test_hash_is_sha256_hex() -> None:
    """hash_device_secret is the SHA-256 of the secret's ASCII bytes, as 64 lower-case hex digits."""
    assert hash_device_secret("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2
    secret = new_device_secret()
    digest = hash_device_secret(secret)
    assert digest == hashlib.sha256(secret.encode("ascii")).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert secret not in digest
    assert hash_device_secret(new_device_secret()) != digest
