"""The catalogue guard: every row of docs/SECURITY-CASES.md is carried by at least one runnable test.

A test carries rows through ``@pytest.mark.case("A9", ...)`` (on the test, its class, its module
or one parameter). The legacy form, a row id in the test's name or parameter ids
(``test_a11_bit_flip``, ``[h10-sqlite]``), is still accepted until tests/fastapi and
tests/benchmarks switch to the marker. Tests skipped unconditionally carry nothing. The exact
rules are in tests/security/catalogue.py; the guard reads pytest's own collection of tests/, and
the tests below collect small trees written for them, to show each rule (and the guard) can fail.
"""

from __future__ import annotations

import secrets
import textwrap
from pathlib import Path

from .catalogue import (
    CATALOGUE,
    Collection,
    catalogue_ids,
    collect,
    collect_repository,
    coverage,
    missing_rows,
)

# --- the guard ----------------------------------------------------------------------------------


def test_every_catalogue_row_is_carried_by_a_runnable_test() -> None:
    """Every row id of docs/SECURITY-CASES.md is carried by a test that is not skipped unconditionally."""
    ids = catalogue_ids(CATALOGUE.read_text(encoding="utf-8"))
    collection = collect_repository()
    missing = missing_rows(ids, collection)
    print(f"security catalogue: {len(ids) - len(missing)}/{len(ids)} cases carried by tests")
    assert len(ids) >= 90, f"the catalogue parser found only {len(ids)} rows: has the table format changed?"
    assert len(collection.tests) >= 500, f"only {len(collection.tests)} tests collected: is collection broken?"
    unseen = [*collection.errors, *(f"{m}: skipped at import" for m in collection.skipped)]
    assert not missing, f"{len(missing)} catalogue case(s) have no test: {', '.join(missing)}" + (
        f" (not collected: {'; '.join(unseen)})" if unseen else ""
    )


def test_case_markers_name_rows_of_the_catalogue() -> None:
    """Every id in a ``case`` marker is a row of the catalogue, so a typo cannot pass for coverage."""
    ids = set(catalogue_ids(CATALOGUE.read_text(encoding="utf-8")))
    unknown = sorted(f"{t.nodeid}: {c}" for t in collect_repository().tests for c in t.cases if c not in ids)
    assert not unknown, "case markers naming no catalogue row: " + ", ".join(unknown)


# --- the rules, on small trees (so the guard can be trusted to fail) ------------------------------

INI = """\
[pytest]
addopts = --strict-markers --import-mode=importlib
asyncio_default_fixture_loop_scope = function
markers =
    case(*ids): catalogue rows
"""


def collect_tree(tmp_path: Path, files: dict[str, str]) -> Collection:
    """Write ``files`` into a fresh folder of ``tmp_path`` and collect it as the guard does."""
    (tmp_path / "pytest.ini").write_text(INI)
    tree = tmp_path / f"tree_{secrets.token_hex(4)}"  # a unique module prefix for this tree
    tree.mkdir()
    for name, source in files.items():
        (tree / name).write_text(textwrap.dedent(source))
    return collect([tree], rootdir=tmp_path, inifile=tmp_path / "pytest.ini")


def carried(tmp_path: Path, source: str, conftest: str = "") -> set[str]:
    """The ids that the tests of one module (and an optional conftest) carry."""
    files = {"test_module.py": source} | ({"conftest.py": conftest} if conftest else {})
    return set(coverage(collect_tree(tmp_path, files)))


def test_catalogue_parser_reads_row_ids() -> None:
    """Row ids come from the first cell of table rows only, upper-cased, in order, once each."""
    text = "| id | case |\n|---|---|\n| A1 | no cookie |\n| a11 | flip |\nsee A2 in prose\n| A1 | again |\n"
    assert catalogue_ids(text) == ["A1", "A11"]


def test_guard_reports_a_row_without_a_test(tmp_path: Path) -> None:
    """A catalogue row that no test carries is reported missing: the guard can fail."""
    collection = collect_tree(tmp_path, {"test_one.py": "import pytest\n@pytest.mark.case('A1')\ndef test_x(): pass\n"})
    assert missing_rows(["A1", "A2"], collection) == ["A2"]
    assert missing_rows(["A1"], collection) == []


def test_case_markers_count_wherever_pytest_applies_them(tmp_path: Path) -> None:
    """A case marker on a function (several ids), a class, a module or one parameter carries its ids."""
    source = """
        import pytest
        pytestmark = pytest.mark.case("M1")

        @pytest.mark.case("A9", "a11")
        def test_function(): pass

        @pytest.mark.case("B2")
        class TestGroup:
            def test_method(self): pass

        @pytest.mark.parametrize("v", [pytest.param(1, marks=pytest.mark.case("C4")), 2])
        def test_rows(v): pass
    """
    assert carried(tmp_path, source) == {"M1", "A9", "A11", "B2", "C4"}


def test_legacy_ids_in_names_and_parameter_ids_count(tmp_path: Path) -> None:
    """``test_a11_x`` carries A11 but not A1; parameter ids and conftest fixture parameter ids count too."""
    source = """
        import pytest

        def test_a11_bit_flip(): pass

        def test_a2_a3_garbage(): pass

        @pytest.mark.parametrize("v", [pytest.param(1, id="a15-1mb")])
        def test_sizes(v): pass

        @pytest.mark.parametrize("v", [1], ids=["a4_plus"])
        def test_more(v): pass

        def test_uses_db(db): pass

        def helper_a1(): pass
    """
    conftest = """
        import pytest

        @pytest.fixture(params=[pytest.param("sqlite", id="h10-sqlite")])
        def db(request): return request.param
    """
    assert carried(tmp_path, source, conftest) == {"A11", "A2", "A3", "A15", "A4", "H10"}


def test_unconditional_skips_carry_nothing(tmp_path: Path) -> None:
    """Tests skipped by mark (on them, their class, their module or a parameter) or by a bare skip carry nothing."""
    source = """
        import pytest

        @pytest.mark.skip
        @pytest.mark.case("A1")
        def test_marked(): pass

        @pytest.mark.skip(reason="later")
        class TestLater:
            @pytest.mark.case("A2")
            def test_method(self): pass

        @pytest.mark.case("A3")
        def test_body_skip():
            "doc"
            pytest.skip("todo")

        @pytest.mark.parametrize("v", [pytest.param(1, marks=[pytest.mark.skip, pytest.mark.case("A4")])])
        def test_a5_param(v): pass
    """
    assert carried(tmp_path, source) == set()
    module_skipped = "import pytest\npytestmark = pytest.mark.skip\n@pytest.mark.case('A6')\ndef test_x(): pass\n"
    assert carried(tmp_path, module_skipped) == set()


def test_conditional_skips_still_count(tmp_path: Path) -> None:
    """A skip that depends on the environment (a database URL, an optional package) still counts."""
    source = """
        import os
        import pytest

        @pytest.mark.skipif(not os.environ.get("NEVER_SET_X"), reason="r")
        @pytest.mark.case("H1")
        def test_down(): pass

        @pytest.mark.case("H2")
        def test_pool():
            if not os.environ.get("NEVER_SET_X"):
                pytest.skip("r")

        @pytest.mark.case("K1")
        def test_fuzz():
            pytest.importorskip("a_package_that_is_not_installed")
    """
    assert carried(tmp_path, source) == {"H1", "H2", "K1"}


def test_uncollectable_module_is_reported(tmp_path: Path) -> None:
    """A module that fails to import carries nothing and is named in the collection's errors."""
    collection = collect_tree(tmp_path, {"test_broken.py": "import a_module_that_does_not_exist\n"})
    assert collection.tests == []
    assert len(collection.errors) == 1
    assert "test_broken.py" in collection.errors[0]
