"""Choices as token tries: which choice a model ranks first, and how likely each one is.

A choice is the token sequence of its answer as the prompt format renders it (" yes\\n\\n"),
its own canonical tokens, never another spelling of the same text. Ranking walks the trie of
the choices: where they branch, the candidate next token with the highest log-probability
wins (greedy decoding constrained to the choices). A choice's probability is the product of
its tokens' conditional probabilities: one next-token distribution per proper prefix of the
choices (`prefixes`), normalised over the choices (`choice_probabilities`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class NeedNext:
    """`pick_choice` needs the model's pick among `tokens` after `path`."""

    path: tuple[int, ...]
    tokens: tuple[int, ...]


# What is known at a path: the next-token log-probabilities there (a top-k dict, as vLLM
# returns them along a generated sequence), or the token the model picked among candidates.
Known = Mapping[tuple[int, ...], Mapping[int, float] | int]


def pick_choice(choices: Sequence[Sequence[int]], known: Known) -> int | NeedNext:
    """The index of the choice the model ranks first, or what is still needed to tell.

    Descends the token trie of `choices` (each a token sequence, e.g. " yes\n\n"): where the
    choices branch, the candidate next token with the highest log-probability wins. This is
    greedy decoding constrained to the choices, on their own tokenisation; for choices that
    differ in their first token it is rank classification by that token. A branching point
    whose candidates are all missing from `known` (not in its top-k) yields NeedNext.
    """
    path: tuple[int, ...] = ()
    alive = list(range(len(choices)))
    while len(alive) > 1:
        ended = [j for j in alive if len(choices[j]) == len(path)]
        if ended:  # a choice equal to the path: duplicates, or one a prefix of the others
            return ended[0]
        nexts = {choices[j][len(path)] for j in alive}
        token = next(iter(nexts)) if len(nexts) == 1 else _best(known.get(path), nexts)
        if token is None:
            return NeedNext(path, tuple(sorted(nexts)))
        path += (token,)
        alive = [j for j in alive if choices[j][len(path) - 1] == token]
    return alive[0]


def _best(seen: Mapping[int, float] | int | None, candidates: set[int]) -> int | None:
    if isinstance(seen, int):
        return seen if seen in candidates else None
    if not seen or not any(t in seen for t in candidates):
        return None
    return max(sorted(candidates), key=lambda t: seen.get(t, -math.inf))


def decision_depth(choices: Sequence[Sequence[int]]) -> int:
    """Tokens to generate before the choices are told apart: 1 + their longest shared prefix."""
    pairs = itertools.combinations({tuple(c) for c in choices}, 2)
    return 1 + max((_shared_prefix(a, b) for a, b in pairs), default=0)


def _shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def prefixes(choices: Sequence[Sequence[int]]) -> dict[tuple[int, ...], list[int]]:
    """Every proper prefix of the choices -> the tokens that can follow it (sorted)."""
    out: dict[tuple[int, ...], set[int]] = {}
    for c in choices:
        for j in range(len(c)):
            out.setdefault(tuple(c[:j]), set()).add(c[j])
    return {p: sorted(t) for p, t in out.items()}


def choice_probabilities(
    choices: Sequence[Sequence[int]], next_logprobs: Mapping[tuple[int, ...], Mapping[int, float]]
) -> list[float]:
    """Each choice's probability, normalised over the choices; `next_logprobs[prefix][token]`
    is log p(token | prompt + prefix) for every prefix and following token of the choices."""
    scores = [sum(next_logprobs[tuple(c[:j])][c[j]] for j in range(len(c))) for c in choices]
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    return [w / sum(weights) for w in weights]
