"""`python -m sealed_sessions`: keygen and inspect, their exit codes, and that keys are never printed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sealed_sessions import KeyRing
from sealed_sessions._cli import KEYS_ENV, main
from sealed_sessions.testing import seal
from tests.helpers import KEY_A, KEY_B, START

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
    assert '"name": "Zoë"' in out
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
    assert run(capsys, "inspect", cookie)[0] == 1  # default name "session": another subkey


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


def test_inspect_redacts_tokens_unless_asked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values under token, password or secret keys (at any depth) are redacted; --show-secrets shows them."""
    monkeypatch.setenv(KEYS_ENV, KEY_A)
    cookie = seal(KEY_A, {"_auth_token": "tok-123456", "user": 7, "nested": {"apiSecret": "s-987"}})
    code, out, _ = run(capsys, "inspect", cookie)
    assert code == 0
    assert "tok-123456" not in out and "s-987" not in out
    assert out.count("<redacted>") == 2 and '"user": 7' in out
    code, out, _ = run(capsys, "inspect", "--show-secrets", cookie)
    assert "tok-123456" in out and "s-987" in out
