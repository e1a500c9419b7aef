"""Many-shot gain per task: the pure pieces on hand-built values, and the command on the real
default model, where a task learnable from its demonstrations must outscore one that is not."""

from __future__ import annotations

import json
import random

import pytest

from manyicl.finetune.cli import main as finetune_main
from manyicl.finetune.learnability import few_and_many, read_scores, split_at, task_score


@pytest.mark.parametrize(
    "nll, few, want",
    [
        ([9.0, 2.0, 2.0, 1.0, 1.0], 1, (2.0, 4 / 3)),  # the last half of 5: answers 2..4
        ([9.0, 2.0, 1.0], 1, None),  # 3 answers < 4
        ([9.0, 2.0, 1.0, 1.0], 1, (2.0, 1.0)),  # answer 1 vs the last half (answers 2, 3)
        ([9.0, 3.0, 1.0, 0.5, 0.5, 0.5], 2, (2.0, 0.5)),  # answer 0 (no demos) left out
        ([9.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0], 2, (1.0, 2.0)),  # worse with shots: negative
    ],
)
def test_few_and_many(nll, few, want):
    got = few_and_many(nll, few)
    if want is None:
        assert got is None
    else:
        assert got == pytest.approx(want)


@pytest.mark.parametrize(
    "per_sequence, want",
    [
        ([[5, 2, 1, 1]], {"answers": 4, "few_nll": 2.0, "many_nll": 1.0, "gain": 1.0}),
        # a short sequence counts its answers but not toward the means
        ([[5, 2, 1, 1], [5, 1]], {"answers": 6, "few_nll": 2.0, "many_nll": 1.0, "gain": 1.0}),
        (
            [[5, 2, 1, 1], [5, 4, 1, 0]],
            {"answers": 8, "few_nll": 3.0, "many_nll": 0.75, "gain": 2.25},
        ),
        ([[5, 1]], {"answers": 2, "few_nll": None, "many_nll": None, "gain": None}),
    ],
)
def test_task_score(per_sequence, want):
    assert task_score(per_sequence, few=1) == want


def test_split_at_puts_measured_gains_on_either_side_of_the_bar():
    scores = {"a": {"gain": 0.3}, "b": {"gain": 0.1}, "c": {"gain": None}, "d": {"gain": -0.2}}
    assert split_at(scores, 0.1) == ({"a", "b"}, {"d"})
    assert split_at(scores, -1.0) == ({"a", "b", "d"}, set())
    assert split_at(scores, 1.0) == (set(), {"a", "b", "d"})


def test_read_scores_rejects_another_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"config": {}}')
    with pytest.raises(ValueError, match="not a file of manyicl-finetune learnability"):
        read_scores(bad)


def _write_task(path, rows):
    path.write_text("".join(json.dumps({"input": i, "output": o}) + "\n" for i, o in rows))


def test_a_task_learnable_in_context_outscores_random_labels(tmp_path, smollm2_dir, capsys):
    """Same inputs and label set; in `rule` the label follows from the input (learnable from
    the demonstrations), in `coin` it is a coin flip (nothing to learn past the label set)."""
    rng = random.Random(0)
    words = ["apple", "avocado", "banana", "blueberry", "cherry", "apricot", "bean", "almond"]
    inputs = [rng.choice(words) for _ in range(120)]
    _write_task(tmp_path / "rule.jsonl", [(w, "yes" if w[0] == "a" else "no") for w in inputs])
    _write_task(tmp_path / "coin.jsonl", [(w, rng.choice(["yes", "no"])) for w in inputs])
    entries = [
        f'[[task]]\nname = "{n}"\nsource = "jsonl"\npath = "{n}.jsonl"\n' for n in ("rule", "coin")
    ]
    settings = "[settings]\neval_examples = 8\nmin_examples = 32\n"
    (tmp_path / "mix.toml").write_text(settings + "".join(entries))
    out = tmp_path / "scores.json"
    argv = ["learnability", "--out", str(out), "--model", smollm2_dir, "--max-seq-len", "512"]
    finetune_main([*argv, "--mixture", str(tmp_path / "mix.toml"), "--dtype", "float32"])
    scores = read_scores(out)
    assert set(scores) == {"rule", "coin"}
    assert scores["rule"]["answers"] >= 40 and scores["coin"]["answers"] >= 40
    assert scores["rule"]["gain"] > scores["coin"]["gain"] + 0.1, scores
    assert scores["rule"]["many_nll"] < scores["coin"]["many_nll"], scores
    assert "2 tasks, 2 with a gain" in capsys.readouterr().out


def test_bad_mixture_exits_with_a_reason(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        finetune_main(["learnability", "--out", str(tmp_path / "s.json"), "--mixture", "nope.toml"])
    assert e.value.code == 2
    assert "cannot read mixture" in capsys.readouterr().err
