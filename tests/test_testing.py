"""sealed_sessions.testing: seal/unseal for users' tests, and the corpus of cookies from released versions (E4, K4)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from sealed_sessions import ConfigurationError, InvalidCookie, Reason, SessionDataError, SessionTooLarge
from sealed_sessions.testing import UnsealedCookie, seal, unseal
from tests.fixtures.make_cookies_v1 import OPENS, REFUSED
from tests.helpers import COOKIE, CORPUS_V1, KEY_A, KEY_B, PASSPHRASE, START

CORPUS = CORPUS_V1  # closed: version 1 can no longer be sealed (see tests/fixtures/make_cookies_v1.py)
UNDER_RANDOM_KEYS = [e for e in CORPUS["opens"] if PASSPHRASE not in e["open_keys"]]
UNDER_TEXT_SECRETS = [e for e in CORPUS["opens"] if PASSPHRASE in e["open_keys"]]


def test_round_trip_with_every_field() -> None:
    """unseal returns exactly the data and timestamps seal was given."""
    value = seal(KEY_A, {"user_id": 7, "cart": [1, 2]}, max_age=3600, issued_at=START, last_active=START + 60)
    assert unseal(KEY_A, value) == UnsealedCookie({"user_id": 7, "cart": [1, 2]}, START, START + 3600, START + 60, True)


def test_defaults_issued_now_last_active_equal_two_weeks() -> None:
    """By default issued_at is the current time, last_active equals it and expiry is 14 days later."""
    before = int(time.time())
    opened = unseal(KEY_A, seal(KEY_A, {"a": 1}))
    after = int(time.time())
    assert before <= opened.issued_at <= after
    assert opened.last_active == opened.issued_at
    assert opened.expires_at == opened.issued_at + 14 * 86400


def test_browser_session_cookie_has_no_expiry() -> None:
    """max_age=None seals a session with no absolute expiry."""
    assert unseal(KEY_A, seal(KEY_A, {"a": 1}, max_age=None, issued_at=START)).expires_at is None


def test_unseal_does_not_judge_expiry() -> None:
    """unseal opens a long-expired cookie and reports its timestamps instead of refusing it."""
    opened = unseal(KEY_A, seal(KEY_A, {"a": 1}, issued_at=1_000_000, max_age=1))
    assert opened.expires_at == 1_000_001


def test_cookie_name_and_key_ring_respected() -> None:
    """A cookie sealed for a name opens only under that name; an older key is reported as such."""
    value = seal(KEY_B, {"a": 1}, session_cookie="__Host-sid", issued_at=START)
    assert unseal([KEY_A, KEY_B], value, session_cookie="__Host-sid").sealed_with_current_key is False
    with pytest.raises(InvalidCookie) as info:
        unseal(KEY_B, value)
    assert info.value.reason == Reason.BAD_MAC
    with pytest.raises(InvalidCookie) as info:
        unseal(KEY_A, value, session_cookie="__Host-sid")
    assert info.value.reason == Reason.UNKNOWN_KEY


@pytest.mark.case("F17", "B9")
def test_default_name_is_the_host_cookie_and_context_is_bound() -> None:
    """seal and unseal default to the __Host-session name and no context; a context must be given to both."""
    value = seal(KEY_A, {"a": 1}, issued_at=START)
    assert unseal(KEY_A, value, session_cookie=COOKIE).data == {"a": 1}
    shop = seal(KEY_A, {"a": 1}, issued_at=START, context="shop")
    assert unseal(KEY_A, shop, context="shop").data == {"a": 1}
    for name, context in (("session", ""), (COOKIE, "shop")):
        with pytest.raises(InvalidCookie) as info:
            unseal(KEY_A, value, session_cookie=name, context=context)
        assert info.value.reason == Reason.BAD_MAC
    with pytest.raises(InvalidCookie):
        unseal(KEY_A, shop)


def test_fixed_nonce_is_deterministic() -> None:
    """With a fixed nonce and timestamps, seal gives the same value every time; without, never."""
    args: dict[str, Any] = {"issued_at": START, "nonce": bytes(24)}
    assert seal(KEY_A, {"a": 1}, **args) == seal(KEY_A, {"a": 1}, **args)
    assert seal(KEY_A, {"a": 1}, issued_at=START) != seal(KEY_A, {"a": 1}, issued_at=START)


def test_seal_refuses_bad_input() -> None:
    """seal applies the session's write checks, the key checks and the max_age checks."""
    with pytest.raises(SessionDataError):
        seal(KEY_A, {"a": {1, 2}})
    with pytest.raises(ConfigurationError):
        seal("short", {"a": 1})
    with pytest.raises(ConfigurationError):
        seal(KEY_A, {"a": 1}, max_age=1.5)  # type: ignore[arg-type]


def test_seal_refuses_a_value_that_could_never_open() -> None:
    """seal raises SessionTooLarge, with the size and limit, rather than return a value unseal refuses."""
    value = seal(KEY_A, {"blob": "x" * 2900})
    assert len(value) <= 4096
    assert unseal(KEY_A, value).data == {"blob": "x" * 2900}
    with pytest.raises(SessionTooLarge) as info:
        seal(KEY_A, {"blob": "x" * 3100}, session_cookie="sid")
    assert (info.value.limit, info.value.cookie_name) == (4096, "sid")
    assert info.value.size > 4096


def test_seal_huge_max_age_still_seals() -> None:
    """A max_age too large for the cookie's 64-bit field seals as "practically never" instead of crashing."""
    assert unseal(KEY_A, seal(KEY_A, {"a": 1}, issued_at=START, max_age=10**30)).expires_at == 2**63 - 1


@pytest.mark.case("K4")
def test_corpus_is_well_formed() -> None:
    """The corpus has unique ids, both sections, only ASCII (no hidden bidi characters), and its script's specs."""
    text = (Path(__file__).parent / "fixtures" / "cookies_v1.json").read_text("utf-8")
    assert text.isascii()
    ids = [e["id"] for e in CORPUS["opens"]] + [e["id"] for e in CORPUS["refused"]]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(spec["id"] for spec in [*OPENS, *REFUSED])  # the record of how each was made
    assert len(CORPUS["opens"]) >= 10
    assert len(CORPUS["refused"]) >= 5


@pytest.mark.case("E4", "D11")
@pytest.mark.parametrize("entry", UNDER_RANDOM_KEYS, ids=[e["id"] for e in UNDER_RANDOM_KEYS])
def test_cookies_from_released_versions_still_open(entry: dict[str, Any]) -> None:
    """Every version 1 cookie of the corpus under a random key opens to its data and timestamps, due for resealing."""
    opened = unseal(entry["open_keys"], entry["cookie"], session_cookie=entry["cookie_name"])
    assert opened == UnsealedCookie(entry["data"], entry["issued_at"], entry["expires_at"], entry["last_active"], False)


@pytest.mark.case("D11")
@pytest.mark.parametrize("entry", UNDER_TEXT_SECRETS, ids=[e["id"] for e in UNDER_TEXT_SECRETS])
def test_version_1_cookies_under_a_text_secret_are_refused(entry: dict[str, Any]) -> None:
    """A version 1 cookie sealed under a text secret (its key id a fast hash of it) is refused as of an unknown key."""
    with pytest.raises(InvalidCookie) as info:
        unseal(entry["open_keys"], entry["cookie"], session_cookie=entry["cookie_name"])
    assert info.value.reason == Reason.UNKNOWN_KEY


@pytest.mark.case("K4")
@pytest.mark.parametrize("entry", CORPUS["refused"], ids=[e["id"] for e in CORPUS["refused"]])
def test_corpus_regressions_are_still_refused(entry: dict[str, Any]) -> None:
    """Every recorded bad value (authentic but unreadable, or for another name) is refused with its reason."""
    with pytest.raises(InvalidCookie) as info:
        unseal(entry["open_keys"], entry["cookie"], session_cookie=entry["cookie_name"])
    assert info.value.reason == Reason(entry["reason"])
