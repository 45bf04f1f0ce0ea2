"""The benchmark report: sections built from samples, the text table, the JSON file and the chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.report import (
    Row,
    Section,
    render_section,
    render_targets,
    section_from_samples,
    sections_to_json,
    write_chart,
    write_json,
)
from benchmarks.stats import Summary, Target, evaluate


def _section() -> Section:
    samples = {"none": [100.0, 200.0, 100.0], "ours": [80.0, 170.0, 90.0], "theirs": [40.0, 100.0, 50.0]}
    details = {"none": "bare app", "ours": "sealed", "theirs": "signed"}
    return section_from_samples("server.mw", "Middleware", "req/s", "none", samples, details)


def test_section_ratios_are_paired_per_round() -> None:
    """Each row's ratio summarises per-round ratios to the baseline, not a ratio of medians."""
    section = _section()
    ours = next(r for r in section.rows if r.name == "ours")
    assert ours.ratio == Summary(0.85, 0.8, 0.9, 3)
    assert ours.value == Summary(90.0, 80.0, 170.0, 3)
    assert next(r for r in section.rows if r.name == "none").ratio is None
    assert section.ratio_medians() == {"server.mw.ours": 0.85, "server.mw.theirs": 0.5}


def test_section_scale_changes_values_not_ratios() -> None:
    """Scaling seconds to microseconds changes the shown values and leaves the ratios alone."""
    section = section_from_samples("ip.x", "X", "us/op", "a", {"a": [1e-6, 2e-6], "b": [2e-6, 4e-6]}, {}, scale=1e6)
    b = section.rows[1]
    assert b.value.median == pytest.approx(3.0)
    assert b.ratio is not None
    assert b.ratio.median == pytest.approx(2.0)


def test_render_section_table() -> None:
    """The table shows each row's median, range and ratio, marks the baseline, and lists notes."""
    section = _section()
    section.notes.append("machine was busy")
    text = render_section(section)
    lines = text.splitlines()
    assert lines[0] == "== Middleware"
    assert "median req/s" in lines[1]
    assert "x none" in lines[1]
    none_line = next(line for line in lines if line.startswith("none "))
    assert "1.00 (base)" in none_line
    ours_line = next(line for line in lines if line.startswith("ours "))
    assert ours_line.split() == ["ours", "90.0", "80.0-170", "0.85", "0.80-0.90"]
    assert lines[-1] == "   note: machine was busy"


def test_render_section_latency_and_errors() -> None:
    """Latency columns appear only when a row has them, and errors are flagged on the row."""
    row = Row("ours", "", Summary(5000.0, 4000.0, 6000.0, 3), None, p50_ms=1.234, p99_ms=9.5, errors=2)
    text = render_section(Section("s", "Server", "req/s", "ours", [row]))
    assert "p50 ms" in text
    assert "p99 ms" in text
    assert "ours (2 errors)" in text
    assert "1.23" in text
    assert "9.50" in text
    assert "5,000" in text
    assert "p50 ms" not in render_section(_section())


def test_render_targets_lists_each_status() -> None:
    """The targets block gives met, missed and not run, each with its numbers."""
    targets = [
        Target("server.mw.ours", "ours vs bare", ">=", 0.8),
        Target("server.mw.theirs", "theirs vs bare", ">=", 0.8),
        Target("server.gone", "gone", ">=", 1.0),
    ]
    text = render_targets(evaluate(targets, _section().ratio_medians()))
    assert "[  met  ] ours vs bare: 0.850 (target >= 0.8) MET, 6.2% inside" in text
    assert "[missed ] theirs vs bare: 0.500 (target >= 0.8) MISSED, 37.5% outside" in text
    assert "[not run] gone" in text


def test_json_round_trips(tmp_path: Path) -> None:
    """The JSON file holds every section, row and target with its status, and reads back."""
    judged = evaluate([Target("server.mw.ours", "ours vs bare", ">=", 0.8)], _section().ratio_medians())
    data = sections_to_json([_section()], judged, {"profile": "quick"})
    path = tmp_path / "deep" / "results.json"
    write_json(path, data)
    loaded = json.loads(path.read_text())
    assert loaded["meta"] == {"profile": "quick"}
    rows = loaded["sections"][0]["rows"]
    assert [r["name"] for r in rows] == ["none", "ours", "theirs"]
    assert rows[1]["ratio"] == {"median": 0.85, "min": 0.8, "max": 0.9, "n": 3}
    assert rows[0]["ratio"] is None
    assert loaded["targets"][0]["status"] == "met"
    assert loaded["targets"][0]["margin"] == pytest.approx(0.0625)


def test_chart_is_a_png(tmp_path: Path) -> None:
    """The chart is written where asked, as a PNG, creating the folder."""
    path = tmp_path / "docs" / "benchmark.png"
    write_chart(path, [_section()], "test chart")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chart_skips_sections_without_ratios(tmp_path: Path) -> None:
    """Only skipped sections (no rows) means no chart file rather than an empty figure."""
    path = tmp_path / "none.png"
    write_chart(path, [Section("s", "Skipped", "req/s", "-", notes=["skipped: no Redis"])], "t")
    assert not path.exists()
