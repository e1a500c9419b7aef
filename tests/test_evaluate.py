"""Evaluation: scoring, stratification, choice ranking and the paired bootstrap on hand-built
cases; one real `manyicl-eval` run on vLLM; and parity of its token ids with the server's."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from manyicl.choices import NeedNext, pick_choice
from manyicl.evaluate.report import aggregate, compare
from manyicl.evaluate.scoring import exact_match, first_answer, normalize, rank_choice, rouge_l
from manyicl.evaluate.stats import bootstrap_mean, paired_differences
from manyicl.evaluate.suite import build_suite
from manyicl.tasks.remap import Kind
from manyicl.tasks.split import largest_remainder, stratified_split
from manyicl.tasks.task import Task, TaskExample, choice_suffix

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


# choices (token ids), what is known (path -> top-k log-probs, or a picked token) -> result
_SEARCH = [[7, 1, 9], [7, 2, 9], [8, 9]]  # two choices share their first token
PICK_TABLE = [
    ([[5, 9], [6, 9]], {(): {6: -0.1, 5: -2.0}}, 1),
    ([[5, 9], [6, 9]], {(): {5: -0.5, 3: -0.1}}, 0),  # a missing candidate ranks last
    ([[5, 9], [6, 9]], {(): {3: -0.1}}, NeedNext((), (5, 6))),  # neither in the top-k
    ([[5, 9], [6, 9]], {(): 6}, 1),  # the model's pick among the candidates
    (_SEARCH, {(): {7: -0.2, 8: -1.0}, (7,): {2: -0.3, 1: -0.9}}, 1),
    (_SEARCH, {(): {7: -0.2, 8: -1.0}}, NeedNext((7,), (1, 2))),  # the branch after 7 unknown
    (_SEARCH, {(): {8: -0.2, 7: -1.0}}, 2),
    ([[4, 4, 1], [4, 4, 2]], {(4, 4): {2: -1.0, 1: -3.0}}, 1),  # shared prefix needs nothing
    ([[3, 9], [3, 9]], {}, 0),  # duplicate choices: the first
    ([[3, 9]], {}, 0),
]


@pytest.mark.parametrize("choices,known,want", PICK_TABLE)
def test_pick_choice_table(choices, known, want):
    assert pick_choice(choices, known) == want


# choices -> tokens to generate before they are told apart
DEPTH_TABLE = [
    ([[5, 9], [6, 9]], 1),
    (_SEARCH, 2),
    ([[4, 4, 1], [4, 4, 2], [3]], 3),
    ([[3, 9], [3, 9]], 1),  # duplicates: nothing to tell apart
    ([[3, 9]], 1),
]


@pytest.mark.parametrize("choices,want", DEPTH_TABLE)
def test_decision_depth_table(choices, want):
    from manyicl.choices import decision_depth

    assert decision_depth(choices) == want


# counts per label, n -> quota per label (largest remainders, ties by label)
QUOTA_TABLE = [
    ({"a": 50, "b": 50}, 10, {"a": 5, "b": 5}),
    ({"a": 75, "b": 25}, 12, {"a": 9, "b": 3}),
    ({"a": 1, "b": 1, "c": 1}, 2, {"a": 1, "b": 1, "c": 0}),
    ({"a": 60, "b": 30, "c": 10}, 7, {"a": 4, "b": 2, "c": 1}),
]


@pytest.mark.parametrize("counts,n,want", QUOTA_TABLE)
def test_largest_remainder_table(counts, n, want):
    assert largest_remainder(counts, n) == want


def test_stratified_split_keeps_label_shares_and_is_seeded():
    examples = [TaskExample(f"q{i}", "yes" if i % 4 else "no") for i in range(200)]  # 3:1
    pool, evals = stratified_split(examples, 40, ("no", "yes"), "s")
    assert Counter(e.output for e in evals) == {"yes": 30, "no": 10}
    assert len(pool) == 160 and not set(pool) & set(evals)
    assert (pool, evals) == stratified_split(examples, 40, ("no", "yes"), "s")
    assert evals != stratified_split(examples, 40, ("no", "yes"), "t")[1]


def test_suite_adds_remapped_copies_of_classification_tasks_only():
    cls = Task("c", tuple(TaskExample(f"q{i}", "yes" if i % 2 else "no") for i in range(40)))
    gen = Task("g", tuple(TaskExample(f"q{i}", f"a{i}") for i in range(40)))
    suite = build_suite([cls, gen], 10, [Kind.FLIPPED, Kind.WORDS])
    assert [t.name for t in suite] == ["c", "g", "c~flipped", "c~words"]
    assert [t.metric for t in suite] == ["choice", "exact_match", "choice", "choice"]
    flipped = suite[2]
    assert flipped.evals == suite[0].evals  # the same examples, remapped per seed
    _, evals = flipped.at_seed(0)
    assert [e.output for e in evals] == [
        "no" if e.output == "yes" else "yes" for e in suite[0].evals
    ]
    _, words = suite[3].at_seed(0)
    assert {e.output for e in words}.isdisjoint({"yes", "no"})
    assert all(set(e.choices) == {e.output for e in words} for e in words)


def test_bootstrap_of_constant_differences_is_exact():
    ci = bootstrap_mean([[0.5] * 10])
    assert (ci.mean, ci.low, ci.high) == (0.5, 0.5, 0.5) and ci.significant
    zero = bootstrap_mean([[0.0] * 10, [0.0] * 4])
    assert (zero.low, zero.high) == (0.0, 0.0) and not zero.significant


def test_bootstrap_interval_matches_scipy_for_one_group():
    from scipy.stats import bootstrap

    values = np.random.default_rng(1).normal(0.1, 0.5, size=100)
    ours = bootstrap_mean([values])
    theirs = bootstrap(
        (values,), np.mean, n_resamples=10_000, method="percentile", random_state=0
    ).confidence_interval
    assert ours.mean == pytest.approx(values.mean())
    assert ours.low == pytest.approx(theirs.low, abs=0.02)
    assert ours.high == pytest.approx(theirs.high, abs=0.02)


def test_bootstrap_averages_groups_not_examples():
    # Group means 1.0 and 0.0: the mean over groups is 0.5 whatever the group sizes.
    assert bootstrap_mean([[1.0] * 50, [0.0] * 5]).mean == pytest.approx(0.5)


def _records(task, scores_by_seed, shots="4"):
    return [
        {
            "task": task,
            "shots": shots,
            "seed": s,
            "metric": "choice",
            "shots_used": 4,
            "scores": scores,
            "score": sum(scores) / len(scores),
        }
        for s, scores in enumerate(scores_by_seed)
    ]


def test_paired_differences_average_seeds_per_example_and_refuse_unpaired_runs():
    base = _records("t", [[0, 1, 0], [0, 1, 1]])
    variant = _records("t", [[1, 1, 0], [1, 1, 1]])
    assert paired_differences(base, variant, "t", "4").tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="not paired"):
        paired_differences(base, _records("t", [[1, 1, 0]]), "t", "4")


def test_compare_reports_tasks_and_group_means():
    base = _records("a", [[0] * 20]) + _records("b~words", [[0] * 20])
    variant = _records("a", [[1] * 20]) + _records("b~words", [[0, 1] * 10])
    got = compare(base, variant)
    assert got[("a", "4")].mean == 1.0 and got[("a", "4")].significant
    assert got[("mean, natural", "4")].mean == 1.0
    assert got[("mean, remapped", "4")].mean == pytest.approx(0.5)
    (row, row2) = aggregate(variant)
    assert row["task"] == "a" and row["score"] == 1.0 and row2["score"] == pytest.approx(0.5)


def test_compare_into_a_closed_pipe_writes_its_report_and_stops_quietly(tmp_path):
    for name, scores in (("base", [[0] * 20]), ("ours", [[1] * 20])):
        result = {"name": name, "records": _records("a", scores), "scores": {}}
        (tmp_path / f"{name}.json").write_text(json.dumps(result))
    read, write = os.pipe()
    os.close(read)  # like `| head` that has already left: every write fails with EPIPE
    argv = ["compare", str(tmp_path / "base.json"), str(tmp_path / "ours.json")]
    argv += ["--out", str(tmp_path / "cmp.md")]
    code = "import sys; from manyicl.evaluate.cli import main; main(sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], stdout=write, stderr=subprocess.PIPE, text=True
    )
    os.close(write)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "ours minus base" in (tmp_path / "cmp.md").read_text()


def _jsonl_tasks(tmp_path) -> str:
    rows = [{"input": f"item {i}", "output": "even" if i % 2 == 0 else "odd"} for i in range(60)]
    (tmp_path / "parity.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    words = [a + b for a in "bcdfg" for b in "aeiou"]  # 25 distinct outputs: a generation task
    copy = [{"input": f"say {w}", "output": w} for w in words]
    (tmp_path / "copy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in copy))
    return f"{tmp_path}/parity.jsonl,{tmp_path}/copy.jsonl"


@pytest.mark.slow
def test_end_to_end_eval_on_vllm_resumes_and_compares(tmp_path, smollm2_dir):
    from manyicl.evaluate.cli import main, parse_config, run
    from manyicl.evaluate.compare import load_result, report

    argv = ["--out", str(tmp_path / "a"), "--model", smollm2_dir, "--preset", "quick"]
    argv += ["--tasks", _jsonl_tasks(tmp_path), "--shots", "0,4,500,max", "--seeds", "2"]
    argv += ["--eval-examples", "8", "--max-context", "512", "--block-size", "32"]
    cfg = parse_config(argv)
    assert cfg.enforce_eager and cfg.remap == "words"  # from the preset; flags win over it
    result = run(cfg)
    cells = {(r["task"], r["shots"], r["seed"]) for r in result["records"]}
    want = {(t, "0", 0) for t in ("parity", "copy")}
    want |= {
        (t, s, seed)
        for t in ("parity", "copy", "parity~words")
        for s in ("4", "500", "max")
        for seed in (0, 1)
    }
    assert cells == want
    by = {(r["task"], r["shots"], r["seed"]): r for r in result["records"]}
    assert all(len(r["scores"]) == 8 for r in result["records"])
    assert (
        by[("parity", "max", 0)]["shots_used"] > 4
        and by[("parity", "max", 0)]["prefix_tokens"] <= 512
    )
    # 500 shots do not fit in 512 tokens: the cell is the `max` one, scored once.
    many, most = by[("parity", "500", 1)], by[("parity", "max", 1)]
    assert many["scores"] == most["scores"] and many["block_hash"] == most["block_hash"]
    assert most["seconds"] == 0 < many["seconds"]  # 500 came first; max is its copy
    # Many shots of a label-only task: the model copies the pattern well above chance.
    assert by[("copy", "max", 0)]["score"] >= 0.75
    assert (tmp_path / "a" / "scores.png").stat().st_size > 1000
    # Resume: a second run finds every record and scores nothing again.
    lines = (tmp_path / "a" / "records.jsonl").read_text()
    again = run(cfg)
    assert (tmp_path / "a" / "records.jsonl").read_text() == lines
    assert again["scores"] == result["scores"]
    # Another config in the same folder is refused; compare pairs a run with itself.
    with pytest.raises(SystemExit):
        main([*argv, "--seeds", "1"])
    text = report(load_result(tmp_path / "a"), [load_result(tmp_path / "a")])
    assert "+0.000" in text and "mean, remapped" in text
    assert math.isfinite(result["seconds"])


@pytest.mark.slow
def test_eval_token_ids_equal_the_servers(http, smollm2_tok):
    """The prompts manyicl-eval scores are the ids manyicl-serve hands its engine."""
    from manyicl.evaluate.runner import cells_for, task_budget
    from manyicl.evaluate.suite import build_suite
    from manyicl.manifest import DEFAULT_ADAPTER, read_manifest

    fmt = read_manifest(DEFAULT_ADAPTER).prompt_format
    labels = ("book a flight", "play music", "check weather", "set alarm")
    examples = tuple(
        TaskExample(f"please {labels[i % 4]} ({i}){choice_suffix(labels)}", labels[i % 4], labels)
        for i in range(48)
    )
    task = Task("intents", examples, "Name the intent of the utterance.", "multiple_choice")
    suite = build_suite([task], 4, [Kind.WORDS])
    for t in suite:
        room, _ = task_budget(t, fmt, smollm2_tok, 1024, 8)
        (cell,) = cells_for(t, 5, 1, fmt, smollm2_tok, room)
        assert len(cell.demos) == 5
        body = {
            "model": "manyicl",
            "prompt": cell.evals[0].input,
            "max_tokens": 1,
            "demonstrations": [{"input": d.input, "output": d.output} for d in cell.demos],
            "return_token_ids": True,
        }
        if t.instruction_at:
            body["instruction"] = t.instruction_at
        r = http.post("/v1/completions", json=body)
        assert r.status_code == 200, r.text
        served = r.json()["manyicl"]["prompts"][0]["prompt_token_ids"]
        assert served == cell.block + cell.queries[0]
