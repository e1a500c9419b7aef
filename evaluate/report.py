"""Scores and comparisons from sweep records: per-task tables, group means, paired differences
from a base model with bootstrap intervals, and the score-vs-shots plot (log axis).

Groups: `natural` tasks keep their labels; `remapped` copies (`task~flipped`, `task~words`)
can only be solved from the demonstrations.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from manyicl.evaluate.stats import Interval, bootstrap_mean, paired_differences, per_example
from manyicl.plots import axes

GROUPS = ("natural", "remapped")


def group_of(task: str) -> str:
    return "remapped" if "~" in task else "natural"


def shots_order(shots: str) -> float:
    return float("inf") if shots == "max" else float(shots)


def cells(records: Sequence[dict]) -> list[tuple[str, str]]:
    """Every (task, shots) with records, natural tasks first, shots ascending."""
    keys = {(r["task"], r["shots"]) for r in records}
    return sorted(keys, key=lambda k: (group_of(k[0]), k[0], shots_order(k[1])))


def aggregate(records: Sequence[dict]) -> list[dict]:
    """Per (task, shots): the mean score over seeds and examples, with a 95 % interval from
    resampling examples (each example's score averaged over seeds first)."""
    rows = []
    for task, shots in cells(records):
        rs = [r for r in records if r["task"] == task and r["shots"] == shots]
        ci = bootstrap_mean([per_example(records, task, shots)], resamples=2000)
        rows.append(
            {
                "task": task,
                "shots": shots,
                "metric": rs[0]["metric"],
                "score": ci.mean,
                "low": ci.low,
                "high": ci.high,
                "seeds": len(rs),
                "examples": len(rs[0]["scores"]),
                "shots_used": statistics.fmean(r["shots_used"] for r in rs),
            }
        )
    return rows


def group_means(rows: Sequence[dict]) -> dict[str, dict[str, float]]:
    """{group: {shots: mean over the group's tasks}}."""
    out: dict[str, dict[str, float]] = {}
    for group in GROUPS:
        by_shots: dict[str, list[float]] = {}
        for r in rows:
            if group_of(r["task"]) == group:
                by_shots.setdefault(r["shots"], []).append(r["score"])
        if by_shots:
            ordered = sorted(by_shots, key=shots_order)
            out[group] = {s: statistics.fmean(by_shots[s]) for s in ordered}
    return out


def table(rows: Sequence[dict]) -> str:
    """Markdown: one row per task (score and 95 % interval), then each group's mean."""
    shots = sorted({r["shots"] for r in rows}, key=shots_order)
    at = {(r["task"], r["shots"]): r for r in rows}
    lines = [
        "| task (metric) | " + " | ".join(f"{s} shots" for s in shots) + " |",
        "| --- |" + " ---: |" * len(shots),
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        metric = next(r["metric"] for r in rows if r["task"] == task)
        cells_ = [at.get((task, s)) for s in shots]
        lines.append(f"| {task} ({metric}) | " + " | ".join(_cell(c) for c in cells_) + " |")
    for group, means in group_means(rows).items():
        vals = [f"**{means[s]:.3f}**" if s in means else "-" for s in shots]
        lines.append(f"| **mean, {group}** | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    return f"{row['score']:.3f} [{row['low']:.2f}, {row['high']:.2f}]"


def compare(base: Sequence[dict], variant: Sequence[dict], task_list: Sequence[str] | None = None):
    """{(task or 'mean, <group>', shots): Interval} of variant minus base, paired by example."""
    out: dict[tuple[str, str], Interval] = {}
    common = [k for k in cells(base) if k in set(cells(variant))]
    if task_list is not None:
        common = [k for k in common if k[0] in task_list]
    diffs = {k: paired_differences(base, variant, *k) for k in common}
    for k, d in diffs.items():
        out[k] = bootstrap_mean([d])
    for group in GROUPS:
        for shots in sorted({s for _, s in common}, key=shots_order):
            parts = [d for (t, s), d in diffs.items() if s == shots and group_of(t) == group]
            if parts:
                out[(f"mean, {group}", shots)] = bootstrap_mean(parts)
    return out


def compare_table(results: Mapping[tuple[str, str], Interval], shots: Sequence[str]) -> str:
    """Markdown of paired differences: mean [95 % interval], bold where significant."""
    names = list(dict.fromkeys(k[0] for k in results))
    names.sort(key=lambda n: (not n.startswith("mean"), group_of(n), n))
    lines = [
        "| task | " + " | ".join(f"{s} shots" for s in shots) + " |",
        "| --- |" + " ---: |" * len(shots),
    ]
    for name in names:
        cells_ = []
        for s in shots:
            ci = results.get((name, s))
            text = "-" if ci is None else f"{ci.mean:+.3f} [{ci.low:+.2f}, {ci.high:+.2f}]"
            cells_.append(f"**{text}**" if ci is not None and ci.significant else text)
        lines.append(f"| {name} | " + " | ".join(cells_) + " |")
    return "\n".join(lines) + "\n"


def plot(curves: Mapping[str, Sequence[dict]], path: Path, title: str, group: str) -> None:
    """Mean score of one group against shots on a log axis (0 shots at the origin; `max`
    plotted at the mean number of shots it used), one line per model."""
    with axes(path, title=title, xlabel="shots (log scale)", ylabel=f"mean score, {group}") as ax:
        for name, rows in curves.items():
            rows = [r for r in rows if group_of(r["task"]) == group]
            means = group_means(rows).get(group, {})
            used = {
                s: statistics.fmean(r["shots_used"] for r in rows if r["shots"] == s) for s in means
            }
            xs = sorted(means, key=lambda s: used[s])
            ax.plot([used[s] for s in xs], [means[s] for s in xs], marker="o", label=name)
        ax.set_xscale("symlog", linthresh=1)
