"""The stratified split of a task into a demonstration pool and evaluation examples.

    pool, evals = stratified_split(examples, n=100, labels=("no", "yes"), seed="eval:boolq")

Generated tasks may repeat an input; every copy of an evaluation input leaves the pool, so a
demonstration never gives an evaluated answer away.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from manyicl.tasks.task import TaskExample


def stratified_split(
    examples: Sequence[TaskExample], n: int, labels: Sequence[str], seed: str
) -> tuple[list[TaskExample], list[TaskExample]]:
    """(pool, evals): `n` evaluation examples whose label counts follow the task's (largest
    remainders), drawn by a seeded shuffle within each label; the rest is the pool, less any
    example whose input is also evaluated. Without labels, the first `n` of a seeded shuffle."""
    rng = random.Random(seed)
    if not labels:
        shuffled = rng.sample(list(examples), len(examples))
        pool, evals = shuffled[n:], shuffled[:n]
    else:
        groups: dict[str, list[TaskExample]] = defaultdict(list)
        for ex in examples:
            groups[ex.output].append(ex)
        quota = largest_remainder({k: len(v) for k, v in groups.items()}, n)
        pool, evals = [], []
        for label in sorted(groups):
            group = rng.sample(groups[label], len(groups[label]))
            evals += group[: quota[label]]
            pool += group[quota[label] :]
        pool = rng.sample(pool, len(pool))
    asked = {ex.input for ex in evals}
    return [ex for ex in pool if ex.input not in asked], evals


def largest_remainder(counts: dict[str, int], n: int) -> dict[str, int]:
    """Split `n` over the keys in proportion to `counts`, rounding by largest remainders (ties:
    key order)."""
    total = sum(counts.values())
    exact = {k: n * c / total for k, c in counts.items()}
    quota = {k: int(v) for k, v in exact.items()}
    short = n - sum(quota.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - quota[k]), k))[:short]:
        quota[k] += 1
    return quota
