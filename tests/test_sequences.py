"""Packing, determinism and step planning of training sequences."""

from __future__ import annotations

import itertools

import pytest

from manyicl.finetune.mixture import MixtureTask
from manyicl.finetune.sequences import (
    SequenceStream,
    ShotRange,
    StepPlanner,
    eval_sequences,
    materialise,
    plan_length,
    tokenize_tasks,
)
from manyicl.finetune.tasks import Task, TaskExample
from manyicl.prompting import PLAIN

from chartok import CharTokenizer


@pytest.mark.parametrize(
    "text,want",
    [("max", ShotRange(1, None)), ("8", ShotRange(8, 8)), ("2-16", ShotRange(2, 16))],
)
def test_shot_range_parse(text, want):
    assert ShotRange.parse(text) == want


@pytest.mark.parametrize("text", ["0", "5-2", "many", "1-", "-3"])
def test_shot_range_rejects(text):
    with pytest.raises(ValueError, match="--shots"):
        ShotRange.parse(text)


def _tasks(max_seq_len=120, n=(30, 12), weights=(1.0, 2.0)):
    mixture = []
    for t, (count, w) in enumerate(zip(n, weights, strict=True)):
        examples = tuple(TaskExample(f"t{t}q{i}", f"a{i}") for i in range(count))
        mixture.append(MixtureTask(Task(f"task{t}", examples), w, examples[4:], examples[:4]))
    return tokenize_tasks(mixture, PLAIN, CharTokenizer(), max_seq_len)


def test_stream_is_deterministic_and_packs_within_the_length():
    tasks = _tasks()
    a = list(itertools.islice(SequenceStream(tasks, 120, ShotRange(1, None), 3), 40))
    b = list(itertools.islice(SequenceStream(tasks, 120, ShotRange(1, None), 3), 40))
    c = list(itertools.islice(SequenceStream(tasks, 120, ShotRange(1, None), 4), 40))
    assert a == b and a != c
    for plan in a:
        assert len(set(plan.examples)) == len(plan.examples)  # no repeats in a sequence
        assert plan_length(tasks, plan) <= 120
        seq = materialise(tasks, plan)
        assert len(seq.token_ids) == plan_length(tasks, plan)
        assert seq.num_shots == len(plan.examples)


def test_each_example_is_used_once_per_epoch():
    tasks = _tasks(n=(30,), weights=(1.0,))
    stream = SequenceStream(tasks, 120, ShotRange(1, None), 0)
    seen: list[int] = []
    while len(seen) < len(tasks[0].train):
        seen += next(stream).examples
    assert sorted(seen[: len(tasks[0].train)]) == list(range(len(tasks[0].train)))


def test_shot_range_bounds_the_shots():
    tasks = _tasks(max_seq_len=10_000)
    for plan in itertools.islice(SequenceStream(tasks, 10_000, ShotRange(2, 3), 0), 30):
        assert 2 <= len(plan.examples) <= 3


def test_step_planner_respects_the_token_budget_and_splits_ranks():
    tasks = _tasks()
    planner = StepPlanner(SequenceStream(tasks, 120, ShotRange(1, 1), 0), 2, 3, 100)
    step = planner.next_step()
    assert len(step) == 2 and all(len(ranks) == 3 for ranks in step)
    for rank in step:
        for micro in rank:
            longest = max(plan_length(tasks, p) for p in micro)
            assert len(micro) * longest <= 100 and len(micro) > 1  # short ones share a batch
    # Ranks get different sequences from one stream.
    again = StepPlanner(SequenceStream(tasks, 120, ShotRange(1, 1), 0), 2, 3, 100).next_step()
    assert again == step and step[0] != step[1]


def test_eval_sequences_are_fixed_and_cover_every_task():
    tasks = _tasks()
    seqs = eval_sequences(tasks, 120, ShotRange(1, None), 10)
    assert seqs == eval_sequences(tasks, 120, ShotRange(1, None), 10)
    assert len(seqs) == 2  # 4 short eval examples per task fit one sequence each
    assert all(s.num_shots == 4 for s in seqs)


def test_examples_too_long_for_a_sequence_are_dropped_and_counted():
    examples = (TaskExample("x" * 200, "y"), *(TaskExample("q", "a") for _ in range(5)))
    mt = MixtureTask(Task("t", examples), 1.0, examples, ())
    (task,) = tokenize_tasks([mt], PLAIN, CharTokenizer(), 100)
    assert task.dropped == 1 and len(task.train) == 5
