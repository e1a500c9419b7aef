"""Scoring functions: pure, and checked against hand-built cases.

- choice: the choice the model ranks first token by token (`manyicl.choices.pick_choice`);
- rank classification: the choice whose tokens have the lowest mean NLL (MetaICL's rule);
- exact match after SQuAD-style normalisation;
- ROUGE-L F1 (the maintained `rouge-score` implementation, with stemming).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
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
