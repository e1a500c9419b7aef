"""benchmarks/icl_curve.py's pure parts, on hand-built cases: which bucket an answer falls in,
how one forward pass becomes per-bucket accuracies and losses, and how sequences are grouped
per task before the paired comparison."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch


@pytest.fixture(scope="module")
def icl_curve(benchmark_module):
    return benchmark_module("icl_curve")


@pytest.mark.parametrize(
    ("k", "name"),
    [(0, None), (1, "1-3"), (3, "1-3"), (4, "4-15"), (15, "4-15"), (16, "16-63"),
     (63, "16-63"), (64, "64-255"), (255, "64-255"), (256, "256+"), (5000, "256+")],
)  # fmt: skip
def test_bucket(icl_curve, k, name):
    assert icl_curve.bucket(k) == name


class TableModel:
    """A causal LM whose next-token logits are a fixed table row per position: enough to check
    the arithmetic of `score` by hand."""

    def __init__(self, table: torch.Tensor):  # (T, V)
        self.table = table

    def __call__(self, input_ids, logits_to_keep):
        assert input_ids.shape == (1, self.table.shape[0])
        return SimpleNamespace(logits=self.table[logits_to_keep][None])  # (1, K, V)


def test_score_by_hand(icl_curve):
    # Vocabulary 5; labels are tokens 3 and 4. Answers at positions 1 (k=0), 3 (k=1, right),
    # 5 (k=2, wrong), 6-7 (k=3, two tokens, not a label answer), 8 (k=4, skipped).
    ids = [0, 3, 1, 4, 2, 3, 1, 2, 4]
    spans = [(1, 2, [3, 4], False), (3, 4, [3, 4], False), (5, 6, [3, 4], False),
             (6, 8, None, False), (8, 9, [3, 4], True)]  # fmt: skip
    table = torch.zeros(len(ids), 5)
    table[2, 4] = 2.0  # predicts position 3: token 4 ranked first, right
    table[4, 4] = 1.0  # predicts position 5 (token 3): token 4 ranked first, wrong
    out = icl_curve.score(TableModel(table), {"ids": ids, "spans": spans})

    def nll(row: int, target: int) -> float:
        return -float(torch.log_softmax(table[row], -1)[target])

    assert set(out) == {"1-3"}  # k=0 has no bucket, and k=4 is skipped
    acc, losses = out["1-3"]
    assert acc == [1.0, 0.0]  # the two-token answer has no label set, so no accuracy
    expected = [nll(2, 4), nll(4, 3), (nll(5, 1) + nll(6, 2)) / 2]
    assert losses == pytest.approx(expected)


def test_by_task_groups_and_averages(icl_curve):
    seqs = [
        {"group": "heldout", "kind": "words", "task": "a"},
        {"group": "heldout", "kind": "words", "task": "a"},
        {"group": "heldout", "kind": "natural", "task": "a"},
        {"group": "heldout", "kind": "words", "task": "b"},
    ]
    scored = [
        {"1-3": ([1.0, 0.0], [0.5, 1.5]), "4-15": ([1.0], [0.2])},
        {"1-3": ([1.0], [2.0])},
        {"1-3": ([0.0], [9.0])},  # another kind: left out
        {"1-3": ([], [3.0])},  # no accuracy: left out of accuracy, kept for loss
    ]
    acc = icl_curve.by_task(seqs, scored, ("heldout", "words"), 0)
    loss = icl_curve.by_task(seqs, scored, ("heldout", "words"), 1)
    assert {b: dict(t) for b, t in acc.items()} == {"1-3": {"a": [0.5, 1.0]}, "4-15": {"a": [1.0]}}
    assert dict(loss["1-3"]) == {"a": [1.0, 2.0], "b": [3.0]}
    assert math.isclose(loss["4-15"]["a"][0], 0.2)
