"""SECURITY.md points only at tests that exist (and are not skipped unconditionally)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY_MD = ROOT / "SECURITY.md"
_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def _is_skip_mark(node: ast.expr) -> bool:
    """``pytest.mark.skip`` or ``pytest.mark.skip(...)`` (a ``skipif`` depends on where the test runs)."""
    target = node.func if isinstance(node, ast.Call) else node
    return isinstance(target, ast.Attribute) and target.attr == "skip"


def _runnable_tests(path: Path) -> set[str]:
    """The test functions defined in ``path`` (read, not imported: a module may skip itself here)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        and not any(_is_skip_mark(d) for d in node.decorator_list)
    }


def test_security_md_references_existing_tests() -> None:
    """Every `file::test` named in SECURITY.md is a test function in that file."""
    references = _REFERENCE.findall(SECURITY_MD.read_text(encoding="utf-8"))
    assert len(references) >= 40
    missing = []
    for file, name in sorted(set(references)):
        path = ROOT / file
        if not path.is_file() or name not in _runnable_tests(path):
            missing.append(f"{file}::{name}")
    assert not missing, "SECURITY.md names tests that do not exist: " + ", ".join(missing)


def test_skipped_test_does_not_count_as_a_reference(tmp_path: Path) -> None:
    """A test marked ``skip`` is not a test SECURITY.md may point at; one marked ``skipif`` is."""
    module = tmp_path / "test_module.py"
    module.write_text(
        "import pytest\n"
        "@pytest.mark.skip(reason='x')\ndef test_off(): pass\n"
        "@pytest.mark.skipif(False, reason='x')\ndef test_sometimes(): pass\n"
        "def test_on(): pass\n"
        "def helper(): pass\n"
    )
    assert _runnable_tests(module) == {"test_sometimes", "test_on"}


def test_security_md_covers_every_asvs_requirement() -> None:
    """Each ASVS 4.0.3 V3, 5.0 V7 and 5.0 V3.3 requirement number has a row."""
    text = SECURITY_MD.read_text(encoding="utf-8")
    v4 = ["3.1.1", *(f"3.2.{i}" for i in range(1, 5)), *(f"3.3.{i}" for i in range(1, 5))]
    v4 += [*(f"3.4.{i}" for i in range(1, 6)), *(f"3.5.{i}" for i in range(1, 4)), "3.6.1", "3.7.1"]
    v7 = [f"7.1.{i}" for i in range(1, 4)] + [f"7.2.{i}" for i in range(1, 5)] + ["7.3.1", "7.3.2"]
    v7 += [f"7.4.{i}" for i in range(1, 6)] + [f"7.5.{i}" for i in range(1, 4)] + ["7.6.1"]
    for number in v4 + v7:
        assert re.search(rf"^\| {re.escape(number)}\b", text, re.MULTILINE), number
