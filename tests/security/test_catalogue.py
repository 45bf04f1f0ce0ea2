"""The catalogue guard: every row of docs/SECURITY-CASES.md is carried by at least one test.

Matching rule (precise, so anyone can predict it):

- Catalogue ids are read from table rows of ``docs/SECURITY-CASES.md`` whose first cell is a
  letter and a number (``| A11 | ... |``).
- Every ``test_*.py`` file under ``tests/`` is parsed with :mod:`ast` (never imported). A test is
  a function named ``test_*`` at module level or inside a class named ``Test*``.
- An id is *carried* by a test when, split on ``_`` (function names) or on any character that is
  not a letter or digit (parametrize ids), one whole token equals the id, case-insensitively:
  ``test_a11_bit_flip`` carries A11 (and not A1); ``test_a2_a3_garbage`` carries A2 and A3;
  ``pytest.param(..., id="a15-1mb")`` and ``ids=["a4_plus", "a5"]`` in a ``parametrize`` decorator
  of a test carry A15, A4 and A5.
- A test that is skipped unconditionally carries nothing: ``@pytest.mark.skip``,
  ``@pytest.mark.skipif(True, ...)``, a bare ``pytest.skip(...)`` statement at the top of the
  test body, the same marks on its class, or a module-level ``pytestmark`` holding one.
  ``pytest.param(..., marks=pytest.mark.skip)`` takes that one parameter out.
- Fixture parameters count too: a ``pytest.param(..., id="h10-postgres")`` anywhere in a
  ``conftest.py`` carries H10, since every test using that fixture has the id in its node id.
  Conditional skips (``skipif(<expr>)``, ``pytest.importorskip``, a skip inside an ``if``) count,
  because they run wherever the condition holds (CI sets the database URLs).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "SECURITY-CASES.md"
TESTS = ROOT / "tests"

_ROW = re.compile(r"^\|\s*([A-Za-z]\d+)\s*\|", re.MULTILINE)
_ID_TOKEN = re.compile(r"^[a-z]\d+$")


def catalogue_ids(text: str) -> list[str]:
    """The row ids of the catalogue, upper-case, in document order, each once."""
    seen: dict[str, None] = {}
    for match in _ROW.finditer(text):
        seen.setdefault(match.group(1).upper(), None)
    return list(seen)


def _tokens(text: str, separators: str) -> set[str]:
    return {t.upper() for t in re.split(separators, text.lower()) if _ID_TOKEN.fullmatch(t)}


def _mark_name(node: ast.expr) -> str | None:
    """``pytest.mark.skip`` / ``pytest.mark.skip(...)`` / ``mark.skip`` -> ``"skip"``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute) and (
        (isinstance(node.value, ast.Attribute) and node.value.attr == "mark")
        or (isinstance(node.value, ast.Name) and node.value.id == "mark")
    ):
        return node.attr
    return None


def _is_unconditional_skip(node: ast.expr) -> bool:
    name = _mark_name(node)
    if name == "skip":
        return True
    if name == "skipif" and isinstance(node, ast.Call) and node.args:
        condition = node.args[0]
        return isinstance(condition, ast.Constant) and bool(condition.value) and not isinstance(condition.value, str)
    return False


def _marks_skip(nodes: Iterable[ast.expr]) -> bool:
    for node in nodes:
        if isinstance(node, ast.List | ast.Tuple):
            if _marks_skip(node.elts):
                return True
        elif _is_unconditional_skip(node):
            return True
    return False


def _body_skips(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A ``pytest.skip(...)`` statement at the top level of the body (after the docstring)."""
    for stmt in func.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            target = stmt.value.func
            if isinstance(target, ast.Attribute) and target.attr == "skip":
                return True
    return False


def _param_ids(decorator: ast.expr) -> set[str]:
    """Ids carried by the non-skipped parameters of a ``parametrize`` decorator."""
    if _mark_name(decorator) != "parametrize" or not isinstance(decorator, ast.Call):
        return set()
    found: set[str] = set()
    for kw in decorator.keywords:
        if kw.arg == "ids" and isinstance(kw.value, ast.List | ast.Tuple):
            for elt in kw.value.elts:
                if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                    found |= _tokens(elt.value, r"[^a-z0-9]+")
    for node in ast.walk(decorator):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "param"):
            continue
        keywords = {kw.arg: kw.value for kw in node.keywords}
        marks = keywords.get("marks")
        if marks is not None and _marks_skip([marks]):
            continue
        ident = keywords.get("id")
        if isinstance(ident, ast.Constant) and isinstance(ident.value, str):
            found |= _tokens(ident.value, r"[^a-z0-9]+")
    return found


def _module_skipped(tree: ast.Module) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in stmt.targets):
            return _marks_skip([stmt.value])
    return False


def _tests(tree: ast.Module) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, list[ast.expr]]]:
    """Each test function with the decorators of its enclosing class."""
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name.startswith("test"):
            yield stmt, []
        elif isinstance(stmt, ast.ClassDef) and stmt.name.startswith("Test"):
            for item in stmt.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                    yield item, stmt.decorator_list


def carried_ids(source: str) -> set[str]:
    """The catalogue ids that the tests in one test module carry, by the rule in the docstring."""
    tree = ast.parse(source)
    if _module_skipped(tree):
        return set()
    found: set[str] = set()
    for func, class_decorators in _tests(tree):
        if _marks_skip(class_decorators) or _marks_skip(func.decorator_list) or _body_skips(func):
            continue
        found |= _tokens(func.name, r"_+")
        for decorator in [*class_decorators, *func.decorator_list]:
            found |= _param_ids(decorator)
    return found


def fixture_param_ids(source: str) -> set[str]:
    """The ids carried by the non-skipped ``pytest.param(id=...)`` calls of a ``conftest.py``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "param":
            keywords = {kw.arg: kw.value for kw in node.keywords}
            marks = keywords.get("marks")
            ident = keywords.get("id")
            if (marks is None or not _marks_skip([marks])) and isinstance(ident, ast.Constant):
                if isinstance(ident.value, str):
                    found |= _tokens(ident.value, r"[^a-z0-9]+")
    return found


def coverage(test_root: Path = TESTS) -> dict[str, list[str]]:
    """Map each id to the test files (relative to the repository) that carry it."""
    where: dict[str, list[str]] = {}
    for path in sorted(test_root.rglob("*.py")):
        if path.name.startswith("test_"):
            found = carried_ids(path.read_text(encoding="utf-8"))
        elif path.name == "conftest.py":
            found = fixture_param_ids(path.read_text(encoding="utf-8"))
        else:
            continue
        for ident in found:
            where.setdefault(ident, []).append(str(path.relative_to(ROOT)))
    return where


# --- the guard ----------------------------------------------------------------------------------


def test_catalogue_every_id_has_a_test() -> None:
    """Every row id of docs/SECURITY-CASES.md is carried by a test that is not skipped unconditionally."""
    ids = catalogue_ids(CATALOGUE.read_text(encoding="utf-8"))
    where = coverage()
    covered = [i for i in ids if i in where]
    missing = [i for i in ids if i not in where]
    print(f"security catalogue: {len(covered)}/{len(ids)} cases carried by tests")
    assert len(ids) >= 90, f"the catalogue parser found only {len(ids)} rows: has the table format changed?"
    assert not missing, f"{len(missing)} catalogue case(s) have no test: {', '.join(missing)}"


# --- the matching rule itself (so the guard can be trusted to fail) ----------------------------


def test_catalogue_parser_reads_row_ids() -> None:
    """Row ids come from the first cell of table rows only, upper-cased, in order, once each."""
    text = "| id | case |\n|---|---|\n| A1 | no cookie |\n| a11 | flip |\nsee A2 in prose\n| A1 | again |\n"
    assert catalogue_ids(text) == ["A1", "A11"]


def test_catalogue_function_name_tokens_are_whole() -> None:
    """``test_a11_x`` carries A11 but not A1; several ids in one name all count."""
    assert carried_ids("def test_a11_bit_flip(): pass\n") == {"A11"}
    assert carried_ids("async def test_a2_a3_garbage(): pass\n") == {"A2", "A3"}
    assert carried_ids("def helper_a1(): pass\ndef test_nothing(): pass\n") == set()


def test_catalogue_parametrize_ids_count() -> None:
    """``pytest.param(id=...)`` and ``ids=[...]`` in parametrize decorators carry ids; skipped params do not."""
    source = (
        "import pytest\n"
        "@pytest.mark.parametrize('v', [pytest.param(1, id='a15-1mb'),"
        " pytest.param(2, id='a9', marks=pytest.mark.skip)])\n"
        "def test_sizes(v): pass\n"
        "@pytest.mark.parametrize('v', [1, 2], ids=['a4_plus', 'b7'])\n"
        "def test_more(v): pass\n"
    )
    assert carried_ids(source) == {"A15", "A4", "B7"}


def test_catalogue_unconditional_skips_carry_nothing() -> None:
    """Tests skipped by mark, by ``skipif(True)``, by a bare ``pytest.skip()`` or by module mark carry no id."""
    assert carried_ids("import pytest\n@pytest.mark.skip\ndef test_a1_x(): pass\n") == set()
    assert carried_ids("import pytest\n@pytest.mark.skip(reason='later')\ndef test_a1_x(): pass\n") == set()
    assert carried_ids("import pytest\n@pytest.mark.skipif(True, reason='r')\ndef test_a1_x(): pass\n") == set()
    assert carried_ids("import pytest\ndef test_a1_x():\n    'doc'\n    pytest.skip('todo')\n") == set()
    assert carried_ids("import pytest\npytestmark = pytest.mark.skip\ndef test_a1_x(): pass\n") == set()
    assert carried_ids("import pytest\n@pytest.mark.skip\nclass TestX:\n    def test_a1_x(self): pass\n") == set()


def test_catalogue_conditional_skips_still_count() -> None:
    """A skip that depends on the environment (a database URL, an optional package) still counts."""
    source = (
        "import os, pytest\n"
        "@pytest.mark.skipif(not os.environ.get('X'), reason='r')\ndef test_h1_down(): pass\n"
        "def test_h2_pool():\n    if not os.environ.get('X'):\n        pytest.skip('r')\n"
    )
    assert carried_ids(source) == {"H1", "H2"}


def test_catalogue_fixture_params_in_conftest_count() -> None:
    """A fixture parameter id in a conftest.py carries its catalogue id; a skipped one does not."""
    source = (
        "import pytest\n"
        "DBS = [pytest.param('sqlite', id='h10-sqlite'), pytest.param('pg', id='j9-pg', marks=pytest.mark.skip)]\n"
        "@pytest.fixture(params=DBS)\ndef db(request): return request.param\n"
    )
    assert fixture_param_ids(source) == {"H10"}
