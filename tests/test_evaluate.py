"""Scoring on hand-built cases, the cached-prefix scorer against plain forwards, and a tiny
end-to-end `manyicl-eval` run that writes its JSON, table and plot."""

from __future__ import annotations

import json
import math

import pytest
import torch

from manyicl.evaluate.cli import EvalConfig, run
from manyicl.evaluate.engine import PrefixScorer
from manyicl.evaluate.report import aggregate
from manyicl.evaluate.scoring import exact_match, first_answer, normalize, rank_choice, rouge_l

# fmt: off
NORMALIZE = [
    ("The Cat!", "cat"),
    ("  an  apple , a pear ", "apple pear"),
    ("Yes.", "yes"),
    ("42", "42"),
]
# fmt: on


@pytest.mark.parametrize("text,want", NORMALIZE)
def test_normalize_table(text, want):
    assert normalize(text) == want


def test_exact_match_and_rouge_l():
    assert exact_match("The answer.", "answer") == 1.0
    assert exact_match("answers", "answer") == 0.0
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    # LCS "the cat on the mat" = 5 of 6 and 5 of 5 tokens: F1 = 2 * (5/6 * 1) / (5/6 + 1)
    assert rouge_l("the cat on the mat", "the cat sat on the mat") == pytest.approx(10 / 11)
    assert rouge_l("dog", "the cat") == 0.0


def test_rank_choice_takes_the_lowest_mean_nll():
    assert rank_choice([[2.0, 2.0], [0.6], [1.0, 0.1]]) == 2  # means 2.0, 0.6, 0.55
    assert rank_choice([[1.0], [1.0]]) == 0  # ties: the first
    assert rank_choice([[3.0, 0.0], [1.6]]) == 0  # mean, not sum


def test_first_answer_cuts_at_the_stop():
    assert first_answer(" positive\n\nInput: x", ["\n\n"]) == "positive"
    assert first_answer(" no stop here", ["\n\n"]) == "no stop here"


def test_prefix_scorer_matches_plain_forwards(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    scorer = PrefixScorer(model, torch.device("cpu"))
    prefix, query, choices = [5, 6, 7, 8], [9, 10], [[11], [12, 13, 14]]
    scorer.set_prefix(prefix)
    got = scorer.choice_nlls(query, choices)
    for choice, nlls in zip(choices, got, strict=True):
        ids = torch.tensor([prefix + query + choice])
        with torch.no_grad():
            logp = model(ids).logits[0].log_softmax(-1)
        start = len(prefix) + len(query)
        want = [-float(logp[start - 1 + i, t]) for i, t in enumerate(choice)]
        assert nlls == pytest.approx(want, abs=1e-4)
    assert scorer.cache.get_seq_length() == len(prefix)  # rolled back
    greedy = scorer.generate(query, 5, set(), lambda ids: "", [])
    with torch.no_grad():
        full = model.generate(torch.tensor([prefix + query]), max_new_tokens=5, do_sample=False)
    assert greedy == full[0, len(prefix) + len(query) :].tolist()


def test_aggregate_means_and_intervals_over_seeds():
    recs = [
        {
            "task": "t",
            "metric": "exact_match",
            "shots": 4,
            "shots_used": 4,
            "seed": s,
            "exact_match": v,
        }
        for s, v in enumerate([0.2, 0.4, 0.6])
    ]
    (row,) = aggregate(recs)
    assert row["score"] == pytest.approx(0.4)
    assert row["ci95"] == pytest.approx(1.96 * 0.2 / math.sqrt(3))


def test_tiny_end_to_end_eval(tmp_path, tiny_llama_dir):
    rows = [{"input": f"item {i}", "output": "even" if i % 2 == 0 else "odd"} for i in range(30)]
    (tmp_path / "parity.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    copy = [{"input": f"say {w}", "output": w} for w in "ab cd ef gh ij kl mn op qr st".split()]
    (tmp_path / "copy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in copy * 2))
    tasks = f"{tmp_path}/parity.jsonl,{tmp_path}/copy.jsonl"
    cfg = EvalConfig(
        out=tmp_path / "out",
        model=tiny_llama_dir,
        tasks=tasks,
        shots="0,2,max",
        seeds=2,
        eval_examples=4,
        max_new_tokens=4,
        max_context=256,
    )
    result = run(cfg)
    assert {(r["task"], r["shots"]) for r in result["scores"]} == {
        (t, s) for t in ("parity", "copy") for s in (0, 2, "max")
    }
    zero = [r for r in result["records"] if r["shots"] == 0]
    assert len(zero) == 2  # zero shots: one "seed" per task
    maxed = [r for r in result["records"] if r["shots"] == "max"]
    assert all(r["shots_used"] > 2 and r["prefix_tokens"] <= 256 for r in maxed)
    assert (tmp_path / "out" / "results.md").read_text().count("|") > 10
    assert (tmp_path / "out" / "scores.png").stat().st_size > 1000
    assert json.loads((tmp_path / "out" / "results.json").read_text())["scores"]
