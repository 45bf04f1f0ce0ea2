"""Hypothesis properties of everything that parses untrusted input (K1-K4).

Opening only ever says "invalid" for input we did not seal; any JSON-able session round-trips;
no change to a valid cookie yields a session, let alone a different one. The corpus of version 1
cookies in tests/fixtures/cookies_v1.json, and the same sessions sealed as version 2, are the
valid cookies, replayed as explicit examples (K4).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sealed_sessions import InvalidCookie, Opened, Reason, Sealer, SessionDataError, SessionTooLarge
from sealed_sessions._box import MAC_SIZE
from sealed_sessions._envelope import HEADER_SIZE, MAX_COOKIE_VALUE
from sealed_sessions.testing import seal, unseal
from tests.helpers import CORPUS_V1, KEY_A, KEY_B, KEY_C, PLAIN_COOKIE, START, b64, unb64

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SEALER = Sealer([KEY_A, KEY_B, KEY_C], PLAIN_COOKIE)  # the corpus's cookie name

OPENS = [
    e for e in CORPUS_V1["opens"] if e["cookie_name"] == PLAIN_COOKIE and set(e["open_keys"]) <= {KEY_A, KEY_B, KEY_C}
]
V2 = {
    SEALER.seal(e["data"], issued_at=e["issued_at"], expires_at=e["expires_at"], last_active=e["last_active"]): e
    for e in OPENS
}
"""The same sessions sealed in the current format (version 2), so that both formats are mutated."""
GOOD = {e["cookie"]: e for e in OPENS} | V2
SEEDS = [e["cookie"] for e in CORPUS_V1["opens"]] + [e["cookie"] for e in CORPUS_V1["refused"]] + list(V2)
assert len(OPENS) >= 5

FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def with_seeds(**fixed: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Add every corpus cookie as an explicit example for the ``value`` argument (K4)."""

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        for seed in SEEDS:
            test = example(value=seed, **fixed)(test)
        return test

    return decorate


def open_or_reason(value: str) -> Opened | Reason:
    """Open and decode as the middleware does; any exception but InvalidCookie fails the test."""
    try:
        return SEALER.peek(value)
    except InvalidCookie as exc:
        return exc.reason


def assert_only_invalid(value: str) -> None:
    """``value`` is refused with a reason (any other exception fails the test), unless we sealed it."""
    if isinstance(open_or_reason(value), Opened):
        assert value in GOOD, "a value we never sealed opened"


# -- K1: arbitrary input only ever comes out as "invalid" --------------------------------------


@pytest.mark.case("K1")
@FAST
@with_seeds()
@given(value=st.text(max_size=300))
def test_arbitrary_text_is_only_ever_invalid(value: str) -> None:
    """Any text, including non-ASCII and control characters, opens or raises InvalidCookie, nothing else."""
    assert_only_invalid(value)


@pytest.mark.case("K1")
@FAST
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_as_latin1_are_only_ever_invalid(raw: bytes) -> None:
    """Any bytes as a Cookie header would carry them (latin-1) raise only InvalidCookie."""
    assert_only_invalid(raw.decode("latin-1"))


@pytest.mark.case("K1")
@FAST
@given(value=st.text(alphabet=ALPHABET, min_size=55, max_size=400))
def test_base64url_text_is_only_ever_invalid(value: str) -> None:
    """Text in the base64url alphabet, long enough to pass the length check, raises only InvalidCookie."""
    assert_only_invalid(value)


KEY_IDS = [(2, key_id) for key_id in SEALER.keys.key_ids] + [(1, k) for k in SEALER.keys.v1_subkeys(PLAIN_COOKIE)]
"""(version, key id) of every key that opens, in both formats."""


@pytest.mark.case("K1")
@FAST
@given(version_and_key_id=st.sampled_from(KEY_IDS), body=st.binary(min_size=24 + MAC_SIZE, max_size=300))
def test_well_formed_envelopes_with_random_contents_fail_the_mac(
    version_and_key_id: tuple[int, bytes], body: bytes
) -> None:
    """A well-formed envelope of either version with one of its key ids, but random contents, is BAD_MAC."""
    version, key_id = version_and_key_id
    assert open_or_reason(b64(bytes([version]) + key_id + body)) == Reason.BAD_MAC


@pytest.mark.case("K1")
@settings(max_examples=10, deadline=None)
@given(size=st.integers(MAX_COOKIE_VALUE + 1, 50_000), char=st.sampled_from("A_-!é"))
def test_oversized_text_is_too_large(size: int, char: str) -> None:
    """Anything longer than MAX_COOKIE_VALUE is TOO_LARGE."""
    assert open_or_reason(char * size) == Reason.TOO_LARGE


# -- K2: any JSON-able session round-trips -----------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"))
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@pytest.mark.case("K2")
@FAST
@given(data=st.dictionaries(st.text(max_size=12), json_values, max_size=6), issued_at=st.integers(1, 2**40))
def test_any_json_session_round_trips(data: dict[str, Any], issued_at: int) -> None:
    """Any dict of JSON values comes back equal with the same JSON types, or is refused as too large."""
    try:
        value = seal(KEY_A, data, issued_at=issued_at, max_age=3600)
    except SessionTooLarge as exc:
        assert exc.size > MAX_COOKIE_VALUE
        return
    opened = unseal([KEY_B, KEY_A], value)  # not the current key of this ring
    assert opened.data == data
    assert json.dumps(opened.data) == json.dumps(data)  # 1 stays 1, 1.0 stays 1.0, True stays True
    assert (opened.issued_at, opened.expires_at, opened.sealed_with_current_key) == (issued_at, issued_at + 3600, False)


any_char = st.characters() | st.characters(categories=["Cs"])  # lone surrogates included
awkward = st.sampled_from([float("nan"), float("-inf"), (1,), {1}, b"x", frozenset(), 1j])
anything = st.recursive(
    json_scalars | st.text(any_char, max_size=5) | awkward | st.from_type(object),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(any_char, max_size=4) | st.integers(), children, max_size=3)
    ),
    max_leaves=10,
)


@pytest.mark.case("K2")
@FAST
@given(data=st.dictionaries(st.text(any_char, max_size=5), anything, max_size=4))
def test_any_python_value_round_trips_or_fails_at_write(data: dict[str, Any]) -> None:
    """Arbitrary Python values (including lone surrogates) either round-trip or raise SessionDataError at seal time."""
    try:
        value = seal(KEY_A, data, issued_at=START)
    except (SessionDataError, SessionTooLarge):
        return
    opened = unseal(KEY_A, value).data
    assert json.dumps(opened, sort_keys=False) == json.dumps(data, sort_keys=False)


# -- K3: mutations of valid cookies ------------------------------------------------------------


@pytest.mark.case("K3")
@FAST
@with_seeds(position=0, replacement="A")
@given(value=st.sampled_from(sorted(GOOD)), position=st.integers(0, 10_000), replacement=st.sampled_from(ALPHABET))
def test_single_character_change_rejected(value: str, position: int, replacement: str) -> None:
    """Replacing any one character of a valid cookie with another base64url character is rejected."""
    position %= len(value)
    if value[position] == replacement:
        replacement = ALPHABET[(ALPHABET.index(replacement) + 1) % len(ALPHABET)]
    changed = value[:position] + replacement + value[position + 1 :]
    assert isinstance(open_or_reason(changed), Reason)


@pytest.mark.case("K3")
def test_every_single_character_change_rejected_exhaustively() -> None:
    """For one valid cookie, all 63 replacements at every position are rejected (no sampling)."""
    value = seal(KEY_A, {"user_id": 42}, session_cookie=PLAIN_COOKIE, issued_at=START, nonce=bytes(range(24)))
    assert not isinstance(open_or_reason(value), Reason)
    for position, original in enumerate(value):
        for replacement in ALPHABET:
            if replacement != original:
                changed = value[:position] + replacement + value[position + 1 :]
                assert isinstance(open_or_reason(changed), Reason), (position, replacement)


mutation = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.characters(codec="latin-1")),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just("")),
    st.tuples(st.just("replace"), st.integers(0, 10_000), st.characters(codec="latin-1")),
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 7).map(str)),
)


def mutate(value: str, steps: list[tuple[str, int, str]]) -> str:
    for kind, where, what in steps:
        if kind == "flip":  # a bit of the decoded bytes while the value is still base64url, else of the text
            is_b64 = len(value) % 4 != 1 and all(c in ALPHABET for c in value)
            raw = bytearray(unb64(value) if is_b64 else value.encode("latin-1"))
            if raw:
                raw[where % len(raw)] ^= 1 << int(what)
            value = b64(bytes(raw)) if is_b64 else raw.decode("latin-1")
            continue
        where %= len(value) + (kind == "insert")
        if kind == "insert":
            value = value[:where] + what + value[where:]
        elif kind == "delete" and value:
            value = value[:where] + value[where + 1 :]
        elif kind == "replace" and value:
            value = value[:where] + what + value[where + 1 :]
    return value


@pytest.mark.case("K3")
@FAST
@with_seeds(steps=[("flip", 3, "0")])
@given(value=st.sampled_from(sorted(GOOD)), steps=st.lists(mutation, min_size=1, max_size=5))
def test_random_mutations_never_give_another_session(value: str, steps: list[tuple[str, int, str]]) -> None:
    """Inserting, deleting or replacing characters, or flipping bits, never yields a session other than the original."""
    mutated = mutate(value, steps)
    result = open_or_reason(mutated)
    if isinstance(result, Opened):
        assert mutated in GOOD
        if value in GOOD:
            assert result.data == GOOD[value]["data"]
            assert mutated == value


# -- K4: the corpus itself ---------------------------------------------------------------------


@pytest.mark.case("K4")
@pytest.mark.parametrize(
    ("value", "entry"), [pytest.param(v, e, id=f"v{unb64(v)[0]}-{e['id']}") for v, e in GOOD.items()]
)
def test_corpus_seeds_open_in_the_property_harness(value: str, entry: dict[str, Any]) -> None:
    """The valid seeds above, of both versions, open with the harness's ring, so the seeds exercise success too."""
    result = open_or_reason(value)
    assert isinstance(result, Opened)
    assert result.data == entry["data"]
    assert len(unb64(value)) >= HEADER_SIZE + MAC_SIZE
