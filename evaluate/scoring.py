"""Scoring functions: pure, and checked against hand-built cases.

- choice: the choice the model ranks first token by token (`pick_choice`);
- rank classification: the choice whose tokens have the lowest mean NLL (MetaICL's rule);
- exact match after SQuAD-style normalisation;
- ROUGE-L F1 (the maintained `rouge-score` implementation, with stemming).
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, target: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize(prediction) == normalize(target))


@cache
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, target: str) -> float:
    """ROUGE-L F-measure in [0, 1]."""
    return _rouge().score(target, prediction)["rougeL"].fmeasure


def rank_choice(choice_nlls: Sequence[Sequence[float]]) -> int:
    """Index of the choice with the lowest mean per-token NLL (ties: the first)."""
    means = [sum(nll) / max(len(nll), 1) for nll in choice_nlls]
    return min(range(len(means)), key=means.__getitem__)


def first_answer(generated: str, stops: Sequence[str]) -> str:
    """The generated text up to the first stop string (the format's end of answer)."""
    cut = min((generated.find(s) for s in stops if s and s in generated), default=-1)
    return (generated if cut < 0 else generated[:cut]).strip()


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
