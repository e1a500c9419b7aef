"""Paired comparisons of two models evaluated on the same examples and demonstrations.

Each evaluation example contributes one paired difference: the mean over seeds of (variant
score - base score). Resampling examples with replacement (within each task, when tasks are
averaged) gives the bootstrap distribution of the mean difference; its 2.5 and 97.5
percentiles are the 95 % interval, and a difference is significant when that interval excludes
0.

    diff = paired_differences(base_records, variant_records, task, shots)   # (examples,)
    result = bootstrap_mean([diff_task1, diff_task2, ...])   # mean over tasks, with its CI
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """The 95 % interval excludes zero."""
        return self.low > 0 or self.high < 0


def bootstrap_mean(
    groups: Sequence[Sequence[float]], resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """Mean over groups of each group's mean, with a 95 % percentile interval from resampling
    the values within each group (a stratified bootstrap: each task keeps its size)."""
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError("every group needs at least one value")
    rng = np.random.default_rng(seed)
    draws = np.zeros(resamples)
    for g in groups:
        values = np.asarray(g, dtype=float)
        idx = rng.integers(0, len(values), size=(resamples, len(values)))
        draws += values[idx].mean(axis=1)
    draws /= len(groups)
    mean = float(np.mean([np.mean(g) for g in groups]))
    low, high = np.percentile(draws, [2.5, 97.5])
    return Interval(mean, float(low), float(high))


def per_example(records: Sequence[dict], task: str, shots: str) -> np.ndarray:
    """(examples,) each example's score averaged over the seeds of one (task, shots)."""
    rows = sorted(
        (r for r in records if r["task"] == task and r["shots"] == shots), key=lambda r: r["seed"]
    )
    if not rows:
        raise KeyError(f"no records for {task} at {shots} shots")
    return np.mean([r["scores"] for r in rows], axis=0)


def paired_differences(
    base: Sequence[dict], variant: Sequence[dict], task: str, shots: str
) -> np.ndarray:
    """(examples,) variant minus base, per example; the two must hold the same cells."""
    b, v = per_example(base, task, shots), per_example(variant, task, shots)
    seeds = {
        name: sorted(r["seed"] for r in recs if r["task"] == task and r["shots"] == shots)
        for name, recs in (("base", base), ("variant", variant))
    }
    if b.shape != v.shape or seeds["base"] != seeds["variant"]:
        raise ValueError(
            f"{task} at {shots} shots: not paired (examples {b.shape} vs {v.shape}, "
            f"seeds {seeds['base']} vs {seeds['variant']}); evaluate both with the same settings"
        )
    return v - b
