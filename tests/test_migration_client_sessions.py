"""ClientSessionsCookie against cookies made by the real client-sessions 0.8 under Node (catalogue S).

Known answers come from tests/fixtures/client_sessions_vectors.json, made once by
tests/fixtures/make_client_sessions_vectors.js; the live test runs that script against a fresh
``npm install`` in a temporary folder when node and npm are present. :func:`encode` rebuilds the
format in Python (it reproduces a real value byte for byte) to make the authentic-but-wrong values
client-sessions itself never writes. ``now`` is always passed explicitly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealed_sessions import ConfigurationError, InvalidCookie, Reason
from sealed_sessions._client_sessions import ClientSessionsCookie
from sealed_sessions._envelope import MAX_COOKIE_VALUE
from sealed_sessions._migration import LegacyCookie, LegacySession
from sealed_sessions.testing import seal
from tests.helpers import KEY_A, START, b64, unb64

FIXTURES = Path(__file__).parent / "fixtures"
GENERATOR = FIXTURES / "make_client_sessions_vectors.js"
CORPUS: dict[str, Any] = json.loads((FIXTURES / "client_sessions_vectors.json").read_text("utf-8"))
VECTORS = {v["id"]: v for v in CORPUS["vectors"]}
OPENS = [v for v in CORPUS["vectors"] if v["expect"] == "opens"]
SECRET = VECTORS["plain"]["secret"]
CASES = {"opens": "S2", "expired": "S5", "future": "S6", "bad_payload": "S7", "too_large": "S8"}

needs_cryptography = pytest.mark.skipif(find_spec("cryptography") is None, reason="needs sealed-sessions[migrate]")
"""On every test that builds a reader: without cryptography only the import and the error message can be tested."""


def encode(
    plaintext: bytes, *, secret: str = SECRET, created_at: int = START * 1000, duration: int = 86_400_000, iv: bytes
) -> str:
    """A client-sessions value around ``plaintext`` (already padded), built as lib/client-sessions.js builds one."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryption_key = hmac.new(secret.encode(), b"cookiesession-encryption", hashlib.sha256).digest()
    signature_key = hmac.new(secret.encode(), b"cookiesession-signature", hashlib.sha256).digest()
    encryptor = Cipher(algorithms.AES(encryption_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    mac = hmac.new(signature_key, b".".join([iv, ciphertext, b"%d" % created_at, b"%d" % duration]), "sha256").digest()
    return ".".join([b64(iv), b64(ciphertext), str(created_at), str(duration), b64(mac)])


def pkcs7(data: bytes) -> bytes:
    """``data`` padded to whole AES blocks, as OpenSSL pads."""
    size = 16 - len(data) % 16
    return data + bytes([size]) * size


def reader_for(vector: dict[str, Any], **options: Any) -> ClientSessionsCookie:
    """A reader with the secret and cookie name ``vector`` was made with."""
    return ClientSessionsCookie(vector["secret"], vector["cookie_name"], **options)


def reason(reader: ClientSessionsCookie, value: str, now: int = START) -> Reason:
    """The reason ``reader`` refuses ``value`` with (fails if it opens)."""
    with pytest.raises(InvalidCookie) as refused:
        reader.open(value, now)
    return refused.value.reason


def check_vector(vector: dict[str, Any]) -> None:
    """``vector`` opens to its content and timestamps, or is refused with its reason, as the corpus says."""
    reader = reader_for(vector)
    if vector["expect"] != "opens":
        assert reason(reader, vector["value"], vector["now"]).value == vector["expect"]
        return
    issued_at, expires_at = vector["created_at"] // 1000, (vector["created_at"] + vector["duration"]) // 1000
    assert reader.open(vector["value"], vector["now"]) == LegacySession(vector["content"], issued_at, expires_at)


def with_case(vectors: list[dict[str, Any]]) -> list[Any]:
    """``vectors`` as parameters marked with the catalogue row of their expected outcome."""
    return [pytest.param(v, id=v["id"], marks=pytest.mark.case(CASES[v["expect"]])) for v in vectors]


# -- the known answers ---------------------------------------------------------------------------------


def test_the_corpus_was_made_by_client_sessions_0_8() -> None:
    """The committed vectors name client-sessions 0.8 and the generator, and cover every outcome."""
    assert CORPUS["made_by"]["client-sessions"].startswith("0.8.")
    assert CORPUS["generator"] == "tests/fixtures/make_client_sessions_vectors.js"
    assert {v["expect"] for v in CORPUS["vectors"]} == set(CASES)
    assert {"plain", "nested", "unicode", "expired", "other_name", "other_secret", "middleware"} <= set(VECTORS)


@needs_cryptography
@pytest.mark.parametrize("vector", with_case(CORPUS["vectors"]))
def test_known_answer_vectors(vector: dict[str, Any]) -> None:
    """Each value client-sessions made opens to its content and timestamps, or is refused with the recorded reason."""
    check_vector(vector)


@needs_cryptography
@pytest.mark.case("S2")
def test_the_format_is_understood_byte_for_byte() -> None:
    """Rebuilding a real value from its IV, content and times gives exactly the value client-sessions wrote."""
    vector = VECTORS["plain"]
    iv = unb64(vector["value"].split(".")[0])
    plaintext = b"session_state=" + json.dumps(vector["content"], separators=(",", ":")).encode()
    assert encode(pkcs7(plaintext), iv=iv, duration=vector["duration"]) == vector["value"]


@needs_cryptography
@pytest.mark.case("S5")
@pytest.mark.parametrize("vector", OPENS, ids=[v["id"] for v in OPENS])
def test_expiry_is_created_at_plus_duration(vector: dict[str, Any]) -> None:
    """A second before createdAt + duration (rounded down to the second) opens; from then on it is EXPIRED."""
    reader = reader_for(vector)
    expires_at = (vector["created_at"] + vector["duration"]) // 1000
    assert reader.open(vector["value"], expires_at - 1).expires_at == expires_at
    assert reason(reader, vector["value"], expires_at) == Reason.EXPIRED


@needs_cryptography
@pytest.mark.case("S5")
def test_max_age_cuts_a_long_duration_short() -> None:
    """max_age caps the cookie's own duration, counted from createdAt; it never extends it."""
    vector = VECTORS["long_duration"]
    assert reader_for(vector, max_age=3600).open(vector["value"], START).expires_at == START + 3600
    assert reason(reader_for(vector, max_age=3600), vector["value"], START + 3600) == Reason.EXPIRED
    assert reader_for(vector, max_age=365 * 86400).open(vector["value"], START).expires_at == START + 30 * 86400


@needs_cryptography
@pytest.mark.case("S6")
def test_within_the_clock_skew_a_future_created_at_opens() -> None:
    """A createdAt up to a minute ahead of now opens (servers' clocks differ); further ahead is FUTURE."""
    vector = VECTORS["plain"]
    assert reader_for(vector).open(vector["value"], START - 60).issued_at == START
    assert reason(reader_for(vector), vector["value"], START - 61) == Reason.FUTURE


# -- forged, swapped, truncated --------------------------------------------------------------------------


@needs_cryptography
@pytest.mark.case("S3")
@pytest.mark.parametrize("vector", OPENS, ids=[v["id"] for v in OPENS])
def test_another_secret_does_not_open_it(vector: dict[str, Any]) -> None:
    """Under any other secret every real value is BAD_MAC."""
    other = "another-secret" if vector["secret"] == SECRET else SECRET
    assert reason(ClientSessionsCookie(other, vector["cookie_name"]), vector["value"], vector["now"]) == Reason.BAD_MAC


@needs_cryptography
@pytest.mark.case("S9")
@pytest.mark.parametrize("vector", OPENS, ids=[v["id"] for v in OPENS])
def test_a_value_made_for_another_cookie_name_does_not_open(vector: dict[str, Any]) -> None:
    """A value moved to another cookie name, same secret, is refused: the name is bound inside the plaintext."""
    other = "shop_cart" if vector["cookie_name"] != "shop_cart" else "session_state"
    assert reason(ClientSessionsCookie(vector["secret"], other), vector["value"], vector["now"]) == Reason.BAD_MAC


@needs_cryptography
@pytest.mark.case("S3")
@pytest.mark.parametrize("part", ["iv", "ciphertext", "created_at", "duration", "mac"])
def test_any_altered_part_is_refused(part: str) -> None:
    """Changing the IV, ciphertext, createdAt, duration (a longer life) or MAC never opens."""
    vector = VECTORS["plain"]
    parts = dict(zip(["iv", "ciphertext", "created_at", "duration", "mac"], vector["value"].split("."), strict=True))
    original = parts[part]
    for i in range(len(original)):
        replacement = "1" if original[i] == "2" else "2"
        mutated = dict(parts, **{part: original[:i] + replacement + original[i + 1 :]})
        value = ".".join(mutated.values())
        assert reason(reader_for(vector), value, vector["now"]) in {Reason.MALFORMED, Reason.BAD_MAC}, (part, i)
    longer = dict(parts, duration=str(int(parts["duration"]) * 30))
    assert reason(reader_for(vector), ".".join(longer.values()), START + 2 * 86400) == Reason.BAD_MAC


@needs_cryptography
@pytest.mark.case("S4")
def test_truncated_at_every_length_or_extended_never_opens() -> None:
    """Every prefix of a real value, and the value extended at either end, is refused by the MAC or sooner."""
    vector = VECTORS["plain"]
    value = vector["value"]
    variants = [value[:n] for n in range(len(value))] + [value + "A", value + ".", "A" + value, value + ".0"]
    for variant in variants:
        assert reason(reader_for(vector), variant, vector["now"]) in {Reason.MALFORMED, Reason.BAD_MAC}, variant


@needs_cryptography
@pytest.mark.case("S4")
@pytest.mark.parametrize(
    "value",
    ["", "invalid", "a.b.c.d.e", "....", "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.1.1", " " + "A" * 40],
)
def test_garbage_is_malformed(value: str) -> None:
    """Garbage, the wrong number of parts and empty parts are MALFORMED, before any MAC."""
    assert reason(ClientSessionsCookie(SECRET), value) == Reason.MALFORMED


@needs_cryptography
@pytest.mark.case("S4")
def test_cookies_of_other_formats_are_malformed() -> None:
    """Our own sealed cookie and a Starlette cookie are refused as malformed, never mistaken for client-sessions'."""
    starlette = "eyJ1c2VyIjogMX0=.aw17Vg.yf9sa5JOxVyfODrTlpYQWyFPIR8"
    assert reason(ClientSessionsCookie(SECRET), seal(KEY_A, {"a": 1}, issued_at=START)) == Reason.MALFORMED
    assert reason(ClientSessionsCookie(SECRET), starlette) == Reason.MALFORMED


# -- strict reading (what client-sessions' lenient parser would let through) ------------------------------


@needs_cryptography
@pytest.mark.case("S10")
@pytest.mark.parametrize("number", ["01800000000000", "+1800000000000", "1800000000000x", "1.8e12", "", " 1"])
def test_numbers_are_read_as_client_sessions_writes_them(number: str) -> None:
    """A createdAt client-sessions never writes (leading zero, sign, suffix), though parseInt reads it, is MALFORMED."""
    iv, ciphertext, _, duration, mac = VECTORS["plain"]["value"].split(".")
    assert reason(ClientSessionsCookie(SECRET), ".".join([iv, ciphertext, number, duration, mac])) == Reason.MALFORMED


@needs_cryptography
@pytest.mark.case("S10")
def test_non_canonical_base64_and_wrong_sizes_are_malformed() -> None:
    """Padding, standard-alphabet characters, a short IV or MAC and partial blocks are MALFORMED, before the MAC."""
    iv, ciphertext, created, duration, mac = VECTORS["plain"]["value"].split(".")
    for value in [
        f"{iv}==.{ciphertext}.{created}.{duration}.{mac}",
        f"{iv}.{ciphertext}.{created}.{duration}.{mac.replace('_', '/').replace('-', '+')}x",
        f"{iv[:-2]}.{ciphertext}.{created}.{duration}.{mac}",
        f"{iv}.{ciphertext}.{created}.{duration}.{mac[:-2]}",
        f"{iv}.{ciphertext[:-3]}.{created}.{duration}.{mac}",
        f"{iv}.{b64(b'')}.{created}.{duration}.{mac}",
    ]:
        assert reason(ClientSessionsCookie(SECRET), value) == Reason.MALFORMED, value


@needs_cryptography
@pytest.mark.case("S10", "S7")
@pytest.mark.parametrize(
    "padded",
    [
        b"session_state={}" + bytes(16),  # a zero pad byte
        b"session_state={}" + bytes([17]) * 16,  # longer than a block
        b'session_state={"a":1}' + bytes([10] * 10 + [11]),  # the last byte says 11, the ten before it say 10
    ],
    ids=["zero", "seventeen", "inconsistent"],
)
def test_bad_padding_after_a_valid_mac_is_bad_payload(padded: bytes) -> None:
    """Authentic values whose PKCS#7 padding OpenSSL would refuse are BAD_PAYLOAD (checked only after the MAC)."""
    assert len(padded) % 16 == 0
    assert reason(ClientSessionsCookie(SECRET), encode(padded, iv=bytes(range(16)))) == Reason.BAD_PAYLOAD


@needs_cryptography
@pytest.mark.case("S7")
@pytest.mark.parametrize(
    "plaintext",
    [b'session_state={"a":NaN}', b"session_state=\xff\xfe", b"session_state={'a': 1}", b"session_state=[1]"],
    ids=["nan", "invalid-utf-8", "not-json", "array"],
)
def test_authentic_plaintexts_that_are_not_a_json_object_are_bad_payload(plaintext: bytes) -> None:
    """Authentic values that do not hold one strict UTF-8 JSON object are BAD_PAYLOAD."""
    assert reason(ClientSessionsCookie(SECRET), encode(pkcs7(plaintext), iv=bytes(16))) == Reason.BAD_PAYLOAD


@needs_cryptography
@pytest.mark.case("S9")
@pytest.mark.parametrize(
    "plaintext",
    [b'{"a":1}', b'session_stat={"a":1}', b'session_state_x={"a":1}', b'SESSION_STATE={"a":1}', b""],
    ids=["no-name", "shorter", "longer", "case", "empty"],
)
def test_an_authentic_plaintext_for_another_name_is_bad_mac(plaintext: bytes) -> None:
    """An authentic value whose plaintext does not start with exactly our name and '=' is another cookie's: refused."""
    assert reason(ClientSessionsCookie(SECRET), encode(pkcs7(plaintext), iv=bytes(16))) == Reason.BAD_MAC


# -- size and arbitrary input -----------------------------------------------------------------------------


@needs_cryptography
@pytest.mark.case("S8")
def test_oversize_input_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 MB value is TOO_LARGE without being split, decoded or MAC-checked."""

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("work done on an oversize value")

    reader = ClientSessionsCookie(SECRET)
    monkeypatch.setattr("sealed_sessions._client_sessions.b64decode_strict", fail)
    monkeypatch.setattr("sealed_sessions._client_sessions.hmac.new", fail)
    assert reason(reader, VECTORS["plain"]["value"] * 6000) == Reason.TOO_LARGE
    assert reason(reader, "A" * (MAX_COOKIE_VALUE + 1)) == Reason.TOO_LARGE


@needs_cryptography
@pytest.mark.case("S11")
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.from_regex(r"[A-Za-z0-9_-]{0,30}(\.[A-Za-z0-9_-]{0,50}){4}", fullmatch=True))
def test_arbitrary_text_only_ever_raises_invalid_cookie(value: str) -> None:
    """Whatever text arrives, open raises InvalidCookie (never another exception) and never opens."""
    with pytest.raises(InvalidCookie):
        ClientSessionsCookie(SECRET).open(value, START)


# -- configuration -----------------------------------------------------------------------------------------


@needs_cryptography
def test_the_reader_is_a_legacy_cookie() -> None:
    """ClientSessionsCookie satisfies the LegacyCookie protocol, with the cookie's name, path and domain."""
    reader: LegacyCookie = ClientSessionsCookie(SECRET, "sid", path="/app", domain="example.com")
    assert isinstance(reader, LegacyCookie)
    assert (reader.cookie_name, reader.path, reader.domain) == ("sid", "/app", "example.com")


@needs_cryptography
@pytest.mark.case("S12")
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"secret": ""}, "secret is empty"),
        ({"secret": None}, "got a NoneType"),
        ({"cookie_name": "a=b"}, "not a valid cookie name"),
        ({"cookie_name": "a b"}, "not a valid cookie name"),
        ({"path": "app"}, "must start with '/'"),
        ({"max_age": 0}, "max_age must be"),
        ({"max_age": 1.5}, "max_age must be"),
        ({"encryption_algorithm": "aes128"}, "encryption_algorithm='aes128' is not supported"),
        ({"encryption_algorithm": "aes192"}, "is not supported"),
        ({"signature_algorithm": "sha256-drop128"}, "signature_algorithm='sha256-drop128' is not supported"),
        ({"signature_algorithm": "sha512"}, "is not supported"),
    ],
)
def test_bad_configuration_is_refused_at_construction(options: dict[str, Any], message: str) -> None:
    """Unusable settings, and algorithms other than client-sessions' defaults, raise ConfigurationError."""
    options.setdefault("secret", SECRET)
    with pytest.raises(ConfigurationError, match=message):
        ClientSessionsCookie(**options)


@needs_cryptography
def test_algorithm_names_are_case_insensitive_as_in_client_sessions() -> None:
    """client-sessions lowercases its algorithm names, so "AES256" and "SHA256" are the defaults too."""
    reader = ClientSessionsCookie(SECRET, encryption_algorithm="AES256", signature_algorithm="SHA256")
    assert reader.open(VECTORS["plain"]["value"], START).data == VECTORS["plain"]["content"]


@needs_cryptography
@pytest.mark.case("S12")
def test_the_secret_never_appears_in_repr() -> None:
    """repr shows the cookie name and max_age only."""
    assert repr(ClientSessionsCookie(SECRET, max_age=60)) == "<ClientSessionsCookie 'session_state' max_age=60>"


@pytest.mark.case("S12")
def test_without_cryptography_construction_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """When cryptography cannot be imported, building a reader raises ConfigurationError naming the extra."""
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers", None)
    with pytest.raises(ConfigurationError, match=r"sealed-sessions\[migrate\]"):
        ClientSessionsCookie(SECRET)


BLOCKED = """
import sys
sys.modules["cryptography"] = None
import sealed_sessions._client_sessions
print("imported")
"""


def test_the_module_imports_without_cryptography() -> None:
    """sealed_sessions._client_sessions imports when cryptography cannot be, so the core never needs it."""
    result = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


# -- live: fresh cookies from the real package -------------------------------------------------------------


@pytest.fixture(scope="module")
def live_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The generator's output against client-sessions@0.8 freshly installed into a temporary folder."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node or npm is not installed")
    prefix = tmp_path_factory.mktemp("client-sessions")
    install = subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--silent", "client-sessions@0.8"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if install.returncode != 0:
        pytest.skip(
            "npm install client-sessions@0.8 failed: " + (install.stderr.strip().splitlines() or ["?"])[-1][:200]
        )
    env = dict(os.environ, NODE_OPTIONS="--no-deprecation")  # client-sessions 0.8 calls new Buffer()
    run = subprocess.run(
        [node, str(GENERATOR), str(prefix)], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    corpus: dict[str, Any] = json.loads(run.stdout)
    return corpus


@needs_cryptography
@pytest.mark.parametrize(
    "vector_id", [pytest.param(i, marks=pytest.mark.case(CASES[v["expect"]])) for i, v in VECTORS.items()]
)
def test_fresh_cookies_from_the_real_package(live_corpus: dict[str, Any], vector_id: str) -> None:
    """Values made just now by client-sessions under Node (new random IVs) open or are refused as the committed ones."""
    fresh = {v["id"]: v for v in live_corpus["vectors"]}
    assert live_corpus["made_by"]["client-sessions"].startswith("0.8.")
    assert fresh[vector_id]["value"] != VECTORS[vector_id]["value"]
    check_vector(fresh[vector_id])
