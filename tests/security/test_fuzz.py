"""The atheris fuzz target (fuzz/fuzz_cookie.py): its corpus replayed always, a short run when atheris is installed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "fuzz" / "fuzz_cookie.py"


def _fuzz_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sealed_fuzz_cookie", FUZZ)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.case("K4")
def test_regressions_and_seeds_are_replayed() -> None:
    """Every kept regression input, seed cookie and fixture cookie satisfies the fuzz property."""
    fuzz = _fuzz_module()
    target = fuzz.Target()
    regressions = [p for p in (ROOT / "fuzz" / "regressions").iterdir() if p.is_file()]
    assert len(regressions) >= 5
    inputs = [p.read_bytes() for p in regressions]
    inputs += [v.encode() for v in target.valid] + [v.encode() for v in fuzz.fixture_cookies()]
    for data in inputs:
        target.check(data)
    opened = [target.opener.open(value) for value in target.seeds]
    assert len(opened) >= 8
    assert {"user_id": 1, "token": "x" * 22} in opened


@pytest.mark.case("K3")
def test_fuzz_property_catches_an_unknown_valid_cookie() -> None:
    """The fuzz property can fail: a cookie that opens but is not a known seed is reported as a crash."""
    fuzz = _fuzz_module()
    target = fuzz.Target()
    forged = target.seeds[0]
    target.valid.discard(forged)
    with pytest.raises(AssertionError, match="unknown value opened"):
        target.check(forged.encode())


@pytest.mark.case("K1")
def test_short_atheris_run_finds_no_crash(tmp_path: Path) -> None:
    """A short atheris run of the cookie opener finds no crash (skipped when atheris is not installed)."""
    pytest.importorskip("atheris")
    seconds = os.environ.get("SEALED_FUZZ_SECONDS", "5")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZ),
            f"-max_total_time={seconds}",
            "-rss_limit_mb=1024",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=int(seconds) + 120,
        cwd=ROOT,
        check=False,
    )
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert "Done" in proc.stderr and "runs in" in proc.stderr, tail
    assert len(list(corpus.iterdir())) >= 8  # seeded, then grown by the fuzzer
