"""Which catalogue rows the tests carry, read from pytest's own collection of the test tree.

A test carries a row of docs/SECURITY-CASES.md through the ``case`` marker, wherever pytest puts
it on the test: ``@pytest.mark.case("A9", "A11")`` on the function or its class, a module's
``pytestmark``, or ``pytest.param(..., marks=pytest.mark.case("A4"))`` on one parameter.

Until tests/fastapi and tests/benchmarks switch to the marker, the legacy form counts too: an
id-shaped token (a letter and digits) in the test's name, its parameter ids included, split on
anything that is not a letter or digit. ``test_a11_bit_flip`` carries A11 (not A1), and
``test_login[h10-sqlite]`` carries H10 (fixture parameters appear in the name, so an id on a
conftest fixture's ``pytest.param`` counts for every test that uses it).

A test that cannot run carries nothing: one marked ``skip`` (on itself, its class, its module or
its parameter), or whose body starts with a bare ``pytest.skip(...)`` statement. Conditional
skips count, since they run wherever the condition holds (CI sets the database URLs): every
``skipif``, ``pytest.importorskip`` or a skip inside an ``if``. A module that skips itself while
being imported has no tests to collect, so it carries nothing in that environment.

Collection runs pytest in this process (``--collect-only``, nothing is executed), so a test is
seen exactly as pytest sees it, whatever builds its markers or parameters.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "SECURITY-CASES.md"
TESTS = ROOT / "tests"

_ROW = re.compile(r"^\|\s*([A-Za-z]\d+)\s*\|", re.MULTILINE)
_ID_TOKEN = re.compile(r"^[a-z]\d+$")


def catalogue_ids(text: str) -> list[str]:
    """The row ids of the catalogue (first cell of a table row), upper-case, in document order, each once."""
    seen: dict[str, None] = {}
    for match in _ROW.finditer(text):
        seen.setdefault(match.group(1).upper(), None)
    return list(seen)


@dataclass(frozen=True)
class CollectedTest:
    """One collected test, as the guard sees it."""

    nodeid: str
    cases: frozenset[str]
    """The ids named by its ``case`` markers."""
    legacy: frozenset[str]
    """The id-shaped tokens of its name and parameter ids."""
    runnable: bool
    """False when skipped unconditionally."""


@dataclass
class Collection:
    """Every test pytest collected under some paths, and what could not be collected."""

    tests: list[CollectedTest] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Collectors that failed (an import error, say): their tests are unknown."""
    skipped: list[str] = field(default_factory=list)
    """Modules that skipped themselves at import: they carry nothing here."""


def _legacy_tokens(name: str) -> frozenset[str]:
    return frozenset(t.upper() for t in re.split(r"[^a-z0-9]+", name.lower()) if _ID_TOKEN.fullmatch(t))


@functools.cache
def _body_skips(function: Callable[..., object]) -> bool:
    """Whether the function's body has a bare ``pytest.skip(...)`` statement at its top level."""
    try:
        source = textwrap.dedent(inspect.getsource(inspect.unwrap(function)))
    except (OSError, TypeError):  # no source to read: give it the benefit of the doubt
        return False
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return any(
                isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Call)
                and isinstance(stmt.value.func, ast.Attribute)
                and stmt.value.func.attr == "skip"
                for stmt in node.body
            )
    return False


def _describe(item: pytest.Item) -> CollectedTest:
    function = getattr(item, "function", None)
    runnable = next(item.iter_markers("skip"), None) is None and not (function is not None and _body_skips(function))
    cases = frozenset(str(ident).upper() for mark in item.iter_markers("case") for ident in mark.args)
    return CollectedTest(item.nodeid, cases, _legacy_tokens(item.name), runnable)


class _Recorder:
    """A pytest plugin that records each collected test, and each collector that failed or skipped."""

    def __init__(self) -> None:
        self.collection = Collection()

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        self.collection.tests.append(_describe(item))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection.errors.append(f"{report.nodeid}: {report.longreprtext.strip().splitlines()[-1]}")
        elif report.skipped and report.nodeid.endswith(".py"):
            self.collection.skipped.append(report.nodeid)


def collect(paths: Iterable[Path], *, rootdir: Path = ROOT, inifile: Path = ROOT / "pyproject.toml") -> Collection:
    """Collect (never run) the tests under ``paths`` with pytest, in this process."""
    targets = [Path(p) for p in paths]
    recorder = _Recorder()
    before = set(sys.modules)
    args = ["--collect-only", "-qq", "-p", "no:cacheprovider", "--rootdir", str(rootdir), "-c", str(inifile)]
    code = pytest.main([*args, *map(str, targets)], plugins=[recorder])
    # Forget the modules this collection imported from those paths, so that a later collection of
    # another tree with the same file names does not find these in sys.modules.
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None)
        if file is not None and any(Path(file).is_relative_to(target) for target in targets):
            del sys.modules[name]
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED, pytest.ExitCode.INTERRUPTED):
        raise RuntimeError(f"collecting {targets} failed: pytest exit code {code}")
    return recorder.collection


@functools.cache
def collect_repository() -> Collection:
    """The collection of this repository's tests/ tree, made once per process."""
    return collect([TESTS])


def coverage(collection: Collection) -> dict[str, list[str]]:
    """Map each carried id to the node ids of the runnable tests that carry it (markers and legacy names)."""
    where: dict[str, list[str]] = {}
    for test in collection.tests:
        if test.runnable:
            for ident in sorted(test.cases | test.legacy):
                where.setdefault(ident, []).append(test.nodeid)
    return where


def missing_rows(ids: Iterable[str], collection: Collection) -> list[str]:
    """The catalogue ids, in order, that no runnable test carries."""
    where = coverage(collection)
    return [ident for ident in ids if ident not in where]
