"""`python -m sealed_sessions`: keygen and inspect, their exit codes, and that keys and session strings stay unprinted.

Catalogue M4: ``inspect`` redacts every string value unless asked, and escapes control and bidi
characters whatever it prints.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sealed_sessions import KeyRing
from sealed_sessions._cli import KEYS_ENV, main
from sealed_sessions.testing import seal
from tests.helpers import COOKIE, KEY_A, KEY_B, START

GOOD = seal(KEY_A, {"a": 1}, issued_at=START, nonce=bytes(24))
TAMPERED = GOOD[:50] + ("B" if GOOD[50] != "B" else "C") + GOOD[51:]  # a character of the MAC


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keygen_subprocess_prints_an_accepted_key() -> None:
    """`python -m sealed_sessions keygen` prints one line that KeyRing accepts, and exits 0."""
    env = {k: v for k, v in os.environ.items() if k != KEYS_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "sealed_sessions", "keygen"], capture_output=True, text=True, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert len(lines[0]) == 43
    assert len(KeyRing(lines[0])) == 1


def test_keygen_in_process_gives_fresh_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """main(["keygen"]) returns 0 and prints a different valid key on each call."""
    first = run(capsys, "keygen")
    second = run(capsys, "keygen")
    assert first[0] == second[0] == 0
    assert first[1] != second[1]
    assert len(KeyRing([first[1].strip(), second[1].strip()])) == 2  # both valid, and distinct keys


def test_inspect_prints_data_and_timestamps(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """inspect opens a cookie with the keys in the environment and prints data, timestamps and key status."""
    monkeypatch.setenv(KEYS_ENV, f" {KEY_B} , {KEY_A} ,")
    cookie = seal(KEY_A, {"user_id": 42, "name": "Zoë"}, issued_at=START, max_age=3600, last_active=START + 60)
    code, out, err = run(capsys, "inspect", cookie)
    assert code == 0, err
    assert '"user_id": 42' in out
    assert '"name": "<redacted: 3 characters>"' in out
    assert "issued at:   2027-01-15T08:00:00+00:00 (1800000000)" in out
    assert "expires at:  2027-01-15T09:00:00+00:00 (1800003600)" in out  # "(expired)" follows once it has passed
    assert "last active: 2027-01-15T08:01:00+00:00 (1800000060)" in out
    assert "older key in the ring" in out
    assert KEY_A not in out + err
    assert KEY_B not in out + err


def test_inspect_browser_session_and_cookie_name(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--cookie-name selects the subkey; a browser-session cookie shows "never" as its expiry."""
    monkeypatch.setenv(KEYS_ENV, KEY_A)
    cookie = seal(KEY_A, {"a": 1}, session_cookie="sid", issued_at=START, max_age=None)
    code, out, _ = run(capsys, "inspect", "--cookie-name", "sid", cookie)
    assert code == 0
    assert "expires at:  never" in out
    assert "key:         current" in out
    assert run(capsys, "inspect", cookie)[0] == 1  # default name __Host-session: another subkey


@pytest.mark.case("F17", "B9")
def test_inspect_defaults_to_the_host_cookie_and_takes_a_context(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --cookie-name a __Host-session cookie opens; one sealed under a context opens only with --context."""
    monkeypatch.setenv(KEYS_ENV, KEY_A)
    assert run(capsys, "inspect", seal(KEY_A, {"a": 1}, session_cookie=COOKIE))[0] == 0
    shop = seal(KEY_A, {"a": 1}, context="shop")
    assert run(capsys, "inspect", "--context", "shop", shop)[0] == 0
    code, out, err = run(capsys, "inspect", shop)
    assert (code, out, err.strip()) == (1, "", "does not open: bad_mac")


def test_inspect_marks_expired(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An expired cookie still opens, and its expiry line says (expired)."""
    monkeypatch.setenv(KEYS_ENV, KEY_A)
    code, out, _ = run(capsys, "inspect", seal(KEY_A, {"a": 1}, issued_at=1_000_000, max_age=60))
    assert code == 0
    assert "(1000060) (expired)" in out


@pytest.mark.parametrize(
    ("cookie", "reason"),
    [
        ("garbage", "malformed"),
        ("A" * 5000, "too_large"),
        (seal(KEY_B, {"a": 1}), "unknown_key"),
        (TAMPERED, "bad_mac"),
    ],
)
def test_inspect_bad_cookie_exits_1_with_reason(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cookie: str, reason: str
) -> None:
    """A cookie that does not open prints the reason on stderr and exits 1, printing nothing else."""
    monkeypatch.setenv(KEYS_ENV, KEY_A)
    code, out, err = run(capsys, "inspect", cookie)
    assert code == 1
    assert out == ""
    assert err.strip() == f"does not open: {reason}"


@pytest.mark.parametrize("value", [None, "", " , ,"])
def test_inspect_without_keys_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """Without keys in the environment, inspect explains what to set and exits 2."""
    if value is None:
        monkeypatch.delenv(KEYS_ENV, raising=False)
    else:
        monkeypatch.setenv(KEYS_ENV, value)
    code, out, err = run(capsys, "inspect", seal(KEY_A, {"a": 1}))
    assert code == 2
    assert out == ""
    assert KEYS_ENV in err


def test_inspect_bad_key_exits_2_without_printing_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A weak key in the environment gives the configuration error (how to make a key), not the key."""
    weak = "my-weak-secret-123"
    monkeypatch.setenv(KEYS_ENV, weak)
    code, out, err = run(capsys, "inspect", seal(KEY_A, {"a": 1}))
    assert code == 2
    assert "keygen" in err
    assert weak not in out + err


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Running without a command exits with argparse's usage error (2)."""
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "keygen" in capsys.readouterr().err


def test_inspect_reads_the_cookie_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``inspect -`` reads the cookie from standard input, keeping it out of argv and shell history."""
    import io

    monkeypatch.setenv(KEYS_ENV, KEY_A)
    monkeypatch.setattr(sys, "stdin", io.StringIO(seal(KEY_A, {"cart": [1, 2]}) + "\n"))
    code, out, _ = run(capsys, "inspect", "-")
    assert code == 0
    assert '"cart"' in out


SECRETS = {"csrf": "csrf-123456", "api_key": "key-987654", "oauth_state": "state-24680", "_auth_token": "tok-13579"}
HOSTILE = {"note": "\x1b]0;pwned\x07\x1b[2J\u202egnp.exe\x9b31m", "\x1b[31mkey": "\u202ename"}
"""A terminal title change, a screen clear, a right-to-left override and a C1 CSI, in a value and in keys."""
RAW_CONTROLS = ("\x1b", "\x07", "\u202e", "\x9b")


@pytest.mark.case("M4")
def test_inspect_redacts_every_string_unless_asked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every string value, whatever its key and at any depth, shows only its length; --show-secrets shows it."""
    monkeypatch.setenv(KEYS_ENV, KEY_A)
    cookie = seal(KEY_A, {**SECRETS, "user": 7, "nested": {"list": ["a-secret-in-a-list"]}})
    code, out, _ = run(capsys, "inspect", cookie)
    assert code == 0
    for value in [*SECRETS.values(), "a-secret-in-a-list"]:
        assert value not in out
        assert f"<redacted: {len(value)} characters>" in out
    assert '"user": 7' in out and '"csrf": "<redacted' in out
    code, out, _ = run(capsys, "inspect", "--show-secrets", cookie)
    assert all(value in out for value in SECRETS.values())


@pytest.mark.case("M4")
@pytest.mark.parametrize("show_secrets", [False, True], ids=["redacted", "shown"])
def test_inspect_escapes_control_and_bidi_characters(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, show_secrets: bool
) -> None:
    """ANSI escapes, BEL, a U+202E override and C1 controls in a session are printed escaped, never raw."""
    monkeypatch.setenv(KEYS_ENV, KEY_A)
    args = ["--show-secrets"] if show_secrets else []
    code, out, err = run(capsys, "inspect", *args, seal(KEY_A, HOSTILE))
    assert code == 0, err
    assert not any(c in out + err for c in RAW_CONTROLS)
    assert "\\u001b[31mkey" in out  # a key is never redacted, only escaped
    if show_secrets:
        assert "\\u001b]0;pwned\\u0007\\u001b[2J\\u202egnp.exe\\u009b31m" in out
    else:
        assert f"<redacted: {len(HOSTILE['note'])} characters>" in out
