"""Results as plain data, rendered as a text table, a JSON file and a PNG chart.

A result is a list of sections; a section is one comparison (competitors measured side by side
against one baseline), each row a competitor with its median, range and ratio to the baseline.
Everything here is deterministic: given the same data it renders the same text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .stats import Summary, TargetResult, paired_ratios, summarize

__all__ = ["Row", "Section", "render_section", "render_targets", "sections_to_json", "write_chart", "write_json"]

Unit = Literal["us/op", "req/s"]


@dataclass
class Row:
    name: str
    detail: str
    value: Summary
    """Median and range of the per-round measurement (microseconds per op, or requests per second)."""
    ratio: Summary | None
    """Per-round ratio to the baseline row; ``None`` for the baseline itself or when not comparable."""
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    note: str = ""


@dataclass
class Section:
    key: str
    title: str
    unit: Unit
    baseline: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ratio_medians(self) -> dict[str, float]:
        """``{"<section key>.<row name>": median ratio}`` for every row that has a ratio."""
        return {f"{self.key}.{r.name}": r.ratio.median for r in self.rows if r.ratio is not None}


def section_from_samples(
    key: str,
    title: str,
    unit: Unit,
    baseline: str,
    samples: dict[str, list[float]],
    details: dict[str, str],
    *,
    scale: float = 1.0,
) -> Section:
    """Build a section from per-round samples; ratios are paired per round against ``baseline``."""
    base = samples[baseline]
    rows = []
    for name, values in samples.items():
        scaled = [v * scale for v in values]
        ratio = None if name == baseline else summarize(paired_ratios(values, base))
        rows.append(Row(name, details.get(name, ""), summarize(scaled), ratio))
    return Section(key, title, unit, baseline, rows)


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render_section(section: Section) -> str:
    """A fixed-width table: name, median, min-max, ratio to baseline (median and min-max)."""
    has_latency = any(r.p50_ms is not None for r in section.rows)
    header = ["", f"median {section.unit}", "min-max", f"x {section.baseline}", "ratio min-max"]
    if has_latency:
        header += ["p50 ms", "p99 ms"]
    lines: list[list[str]] = []
    for row in section.rows:
        cells = [
            row.name,
            _fmt(row.value.median),
            f"{_fmt(row.value.low)}-{_fmt(row.value.high)}",
            "1.00 (base)"
            if row.ratio is None and row.name == section.baseline
            else ("-" if row.ratio is None else f"{row.ratio.median:.2f}"),
            "" if row.ratio is None else f"{row.ratio.low:.2f}-{row.ratio.high:.2f}",
        ]
        if has_latency:
            cells += [
                "-" if row.p50_ms is None else f"{row.p50_ms:.2f}",
                "-" if row.p99_ms is None else f"{row.p99_ms:.2f}",
            ]
        if row.errors:
            cells[0] += f" ({row.errors} errors)"
        lines.append(cells)
    widths = [max(len(c[i]) for c in [header, *lines]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    out = [f"== {section.title}", fmt(header), fmt(["-" * w for w in widths])]
    out += [fmt(c) for c in lines]
    out += [f"   note: {n}" for n in section.notes]
    return "\n".join(out)


def render_targets(results: Sequence[TargetResult]) -> str:
    lines = ["== Targets"]
    lines += [f"  [{r.status:^7}] {r.describe()}" for r in results]
    return "\n".join(lines)


def sections_to_json(
    sections: Sequence[Section], targets: Sequence[TargetResult], meta: dict[str, Any]
) -> dict[str, Any]:
    def row(r: Row) -> dict[str, Any]:
        return {
            "name": r.name,
            "detail": r.detail,
            "value": r.value.as_dict(),
            "ratio": None if r.ratio is None else r.ratio.as_dict(),
            "p50_ms": r.p50_ms,
            "p99_ms": r.p99_ms,
            "errors": r.errors,
            "note": r.note,
        }

    return {
        "meta": meta,
        "sections": [
            {
                "key": s.key,
                "title": s.title,
                "unit": s.unit,
                "baseline": s.baseline,
                "rows": [row(r) for r in s.rows],
                "notes": s.notes,
            }
            for s in sections
        ],
        "targets": [
            {
                "key": t.target.key,
                "description": t.target.description,
                "comparison": t.target.comparison,
                "threshold": t.target.threshold,
                "measured": t.measured,
                "status": t.status,
                "margin": t.margin,
            }
            for t in targets
        ],
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _is_ours(section: Section, row: Row) -> bool:
    """Rows measuring sealed-sessions are drawn in blue, the alternatives in orange."""
    return row.name.startswith("ours") or " ours" in row.name or section.key in ("server.scaleout", "inprocess.keyring")


CHART_EXCLUDED = ("server.ceiling", "server.wrk")
"""Sections about the load generator itself: in the table and JSON, not in the chart."""


def write_chart(path: Path, sections: Sequence[Section], title: str) -> None:
    """A grid of horizontal bar charts, one per section: median ratio to the baseline, min-max bars."""
    import matplotlib  # imported here: the in-process run and the tests need no plotting backend

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in sections if s.key not in CHART_EXCLUDED and any(r.ratio is not None for r in s.rows)]
    if not shown:
        return
    columns = 2 if len(shown) > 1 else 1
    grid_rows = -(-len(shown) // columns)
    tallest = max(len(s.rows) for s in shown)
    fig, axes = plt.subplots(
        grid_rows,
        columns,
        figsize=(7 * columns, grid_rows * (0.32 * tallest + 1.3) + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for index, ax in enumerate(axes.flat):
        if index >= len(shown):
            ax.set_visible(False)
            continue
        section = shown[index]
        names = [r.name for r in section.rows]
        medians = [1.0 if r.ratio is None else r.ratio.median for r in section.rows]
        lows = [0.0 if r.ratio is None else r.ratio.median - r.ratio.low for r in section.rows]
        highs = [0.0 if r.ratio is None else r.ratio.high - r.ratio.median for r in section.rows]
        colors = [
            "#888888"
            if r.name == section.baseline or r.name.startswith("none")
            else ("#1f77b4" if _is_ours(section, r) else "#ff7f0e")
            for r in section.rows
        ]
        y = list(range(len(names)))
        ax.barh(y, medians, xerr=[lows, highs], color=colors, capsize=2, error_kw={"linewidth": 0.8})
        ax.set_yticks(y, names)
        ax.set_ylim(tallest - 0.5, -0.5)  # same bar height in every panel, first row on top
        ax.axvline(1.0, color="black", linewidth=0.8)
        better = "higher is better" if section.unit == "req/s" else "lower is better"
        ax.set_title(f"{section.title}\nx {section.baseline} ({section.unit}; {better})", fontsize=8)
        for yi, m in zip(y, medians, strict=True):
            ax.text(m, yi, f" {m:.2f}", va="center", fontsize=7)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
