"""Shot budgets: how many demonstrations fit beside a query in the context, and which ones.

Selection is a prefix of one deterministic order (the given order, or a seeded shuffle of
the whole set). So requests with different queries that fit different numbers of shots
still share their demo block up to the smaller count, and the prefix cache serves it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class ShotPolicy(StrEnum):
    """The order demonstrations are taken in."""

    FIRST = "first"  # the order the set gives
    RANDOM = "random"  # a shuffle of the whole set, seeded


class ContextOverflow(ValueError):
    """The query cannot fit the context even with zero demonstrations."""


@dataclass(frozen=True)
class ShotPlan:
    """The chosen demonstrations (indices into the set, in prompt order)."""

    indices: list[int]
    available: int  # how many the set has (or the caller allowed)

    @property
    def dropped(self) -> int:
        """Demonstrations left out because the context (or max_shots) had no room."""
        return self.available - len(self.indices)


def shot_order(n: int, policy: ShotPolicy, seed: int = 0) -> list[int]:
    """The order in which a set of `n` demonstrations is taken."""
    order = list(range(n))
    if policy is ShotPolicy.RANDOM:
        random.Random(seed).shuffle(order)
    return order


def plan_shots(
    lengths: Sequence[int],
    *,
    fixed_tokens: int,
    max_context: int,
    policy: ShotPolicy = ShotPolicy.FIRST,
    seed: int = 0,
    max_shots: int | None = None,
) -> ShotPlan:
    """Take demonstrations in `shot_order` while they fit.

    `lengths[i]` is demonstration i's token count; `fixed_tokens` is what the prompt needs
    besides them (header, query, and the tokens to generate). Stops at the first one that does
    not fit, so the result is always a prefix of the order.
    """
    if fixed_tokens > max_context:
        raise ContextOverflow(
            f"the prompt needs {fixed_tokens} tokens before any demonstration (header, query "
            f"and max_tokens) but the context holds {max_context}"
        )
    if max_shots is not None and max_shots < 0:
        raise ValueError(f"max_shots must be >= 0, got {max_shots}")
    order = shot_order(len(lengths), policy, seed)
    limit = len(order) if max_shots is None else min(max_shots, len(order))
    room = max_context - fixed_tokens
    chosen: list[int] = []
    for i in order[:limit]:
        if lengths[i] > room:
            break
        chosen.append(i)
        room -= lengths[i]
    return ShotPlan(chosen, len(lengths))
