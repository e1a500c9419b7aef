"""Aggregating sweep records over seeds, and writing the JSON, markdown table and plot."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from manyicl.evaluate.runner import primary
from manyicl.plots import axes


def _shots_key(shots) -> float:
    return math.inf if shots == "max" else float(shots)


def aggregate(records: Sequence[dict]) -> list[dict]:
    """Per (task, shots): mean of the task's headline score over seeds, with a 95% interval
    (normal approximation; half-width 0 with one seed)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["task"], r["shots"])].append(r)
    rows = []
    for (task, shots), rs in groups.items():
        name = primary(rs[0]["metric"])
        values = [r[name] for r in rs]
        half = 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0
        rows.append(
            {
                "task": task,
                "shots": shots,
                "score": statistics.fmean(values),
                "ci95": half,
                "metric": name,
                "seeds": len(values),
                "shots_used": statistics.fmean(r["shots_used"] for r in rs),
            }
        )
    return sorted(rows, key=lambda r: (r["task"], _shots_key(r["shots"])))


def task_means(rows: Sequence[dict]) -> dict:
    """Mean over tasks of each shot count's score."""
    by_shots: dict = defaultdict(list)
    for r in rows:
        by_shots[r["shots"]].append(r["score"])
    return {
        k: statistics.fmean(v)
        for k, v in sorted(by_shots.items(), key=lambda kv: _shots_key(kv[0]))
    }


def table(rows: Sequence[dict]) -> str:
    """Markdown: one row per task (score ± CI), a last row with the mean over tasks."""
    shots = sorted({r["shots"] for r in rows}, key=_shots_key)
    cells = {(r["task"], r["shots"]): r for r in rows}
    lines = [
        "| task (metric) | " + " | ".join(f"{s} shots" for s in shots) + " |",
        "| --- |" + " ---: |" * len(shots),
    ]
    for task in sorted({r["task"] for r in rows}):
        metric = next(r["metric"] for r in rows if r["task"] == task)
        vals = [cells.get((task, s)) for s in shots]
        lines.append(
            f"| {task} ({metric}) | "
            + " | ".join("-" if v is None else f"{v['score']:.3f} ± {v['ci95']:.3f}" for v in vals)
            + " |"
        )
    means = task_means(rows)
    lines.append("| **mean** | " + " | ".join(f"**{means[s]:.3f}**" for s in shots) + " |")
    return "\n".join(lines) + "\n"


def plot(curves: Mapping[str, Sequence[dict]], path: Path, title: str) -> None:
    """Mean score over tasks against shots, one line per variant ("max" plotted last)."""
    with axes(
        path, title=title, xlabel="shots (max: as many as fit)", ylabel="mean score over tasks"
    ) as ax:
        all_shots = sorted({r["shots"] for rows in curves.values() for r in rows}, key=_shots_key)
        xs = {s: i for i, s in enumerate(all_shots)}
        for name, rows in curves.items():
            means = task_means(rows)
            ax.plot([xs[s] for s in means], list(means.values()), marker="o", label=name)
        ax.set_xticks(range(len(all_shots)), [str(s) for s in all_shots])
