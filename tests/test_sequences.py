"""Packing, determinism and step planning of training sequences."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from manyicl.finetune.mixing import MixedPlan, short_inputs
from manyicl.finetune.mixture import MixtureTask, Remapping
from manyicl.finetune.sequences import (
    SequenceStream,
    ShotRange,
    StepPlanner,
    eval_sequences,
    materialise,
    plan_length,
    render_sequence,
)
from manyicl.finetune.tokenized import tokenize_tasks
from manyicl.prompting import PLAIN, assemble
from manyicl.tasks.task import Task, TaskExample, choice_suffix

from chartok import CharTokenizer

UNALIGNED = PLAIN.model_copy(update={"align": 0})
ALIGN16 = PLAIN.model_copy(update={"align": 16, "pad_end": "\n"})


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


def _tasks(max_seq_len=120, n=(30, 12), weights=(1.0, 2.0), fmt=UNALIGNED):
    mixture = []
    for t, (count, w) in enumerate(zip(n, weights, strict=True)):
        examples = tuple(TaskExample(f"t{t}q{i}", f"a{i}") for i in range(count))
        mixture.append(MixtureTask(Task(f"task{t}", examples), w, examples[4:], examples[:4]))
    return tokenize_tasks(mixture, fmt, CharTokenizer(), max_seq_len)


@pytest.mark.parametrize("fmt", [UNALIGNED, ALIGN16], ids=["unaligned", "aligned"])
def test_stream_is_deterministic_and_packs_within_the_length(fmt):
    tasks = _tasks(fmt=fmt)
    a = list(itertools.islice(SequenceStream(tasks, 120, ShotRange(1, None), 3), 40))
    b = list(itertools.islice(SequenceStream(tasks, 120, ShotRange(1, None), 3), 40))
    c = list(itertools.islice(SequenceStream(tasks, 120, ShotRange(1, None), 4), 40))
    assert a == b and a != c
    for plan in a:
        assert len(set(plan.examples)) == len(plan.examples)  # no repeats in a sequence
        assert plan_length(tasks, plan) <= 120
        seq = materialise(tasks, plan)
        assert len(seq.prompt.token_ids) == plan_length(tasks, plan)
        assert seq.prompt.num_shots == len(plan.examples) and not seq.unpredictable


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
    assert all(s.prompt.num_shots == 4 for s in seqs)


def test_an_aligned_sequence_renders_its_last_example_as_the_server_renders_a_query():
    (task,) = _tasks(n=(30,), weights=(1.0,), fmt=ALIGN16)
    tok = CharTokenizer()
    for k in (1, 2, 3, 5):
        seq = render_sequence(task.header, task.train[:k], task.padding)
        last = seq.examples[-1]
        assert last.start % 16 == 0 if k > 1 else last.start == len(task.header)
        filler = seq.token_ids[len(task.header) : seq.examples[0].start]
        assert filler == task.padding.tokens(seq.pad_len) and (k > 1 or not filler)
        for (a, b), ex in zip(seq.answer_spans, task.train[:k], strict=True):
            assert tuple(seq.token_ids[a:b]) == ex.answer
        # The server's prompt for "the last example's input" is this sequence up to its answer.
        served = assemble(task.header, task.train[: k - 1], task.train[k - 1].context, task.padding)
        assert seq.token_ids[: last.answer_start] == served.token_ids
        assert tok.decode(seq.token_ids).count("Input:") == k


def test_examples_too_long_for_a_sequence_are_dropped_and_counted():
    examples = (TaskExample("x" * 200, "y"), *(TaskExample("q", "a") for _ in range(5)))
    mt = MixtureTask(Task("t", examples), 1.0, examples, ())
    (task,) = tokenize_tasks([mt], UNALIGNED, CharTokenizer(), 100)
    assert task.dropped == 1 and len(task.train) == 5


def _classification_tasks(remapping):
    """A 3-label classification task with its choices listed, and a generation task."""
    labels = ("neg", "neu", "pos")
    cls = tuple(
        TaskExample(f"w{i}" + choice_suffix(labels), labels[i % 3], labels) for i in range(40)
    )
    gen = tuple(TaskExample(f"g{i}", f"r{i}") for i in range(40))
    mixture = [
        MixtureTask(Task("cls", cls, instruction="Say neg, neu or pos."), 1.0, cls[4:], cls[:4]),
        MixtureTask(Task("gen", gen), 1.0, gen[4:], gen[:4]),
    ]
    return tokenize_tasks(mixture, UNALIGNED, CharTokenizer(), 200, remapping)


def test_remapped_sequences_use_fresh_labels_and_skip_first_occurrences():
    remapping = Remapping(prob=1.0, flip_prob=0.3)
    tasks = _classification_tasks(remapping)
    assert tasks[0].remap is not None and tasks[1].remap is None
    stream = SequenceStream(tasks, 200, ShotRange(1, None), 0, remapping)
    plans = list(itertools.islice(stream, 30))
    again = SequenceStream(tasks, 200, ShotRange(1, None), 0, remapping)
    assert plans == list(itertools.islice(again, 30))
    remapped = [p for p in plans if p.task == 0]
    assert remapped and all(p.labels is not None and len(set(p.labels)) == 3 for p in remapped)
    assert all(p.labels is None for p in plans if p.task == 1)
    tok = CharTokenizer()
    for plan in remapped:
        seq = materialise(tasks, plan)
        assert len(seq.prompt.token_ids) == plan_length(tasks, plan) <= 200
        text = tok.decode(seq.prompt.token_ids)
        assert "choice:" not in text and "Say neg" not in text  # no hint of the natural labels
        answers = [
            tok.decode(seq.prompt.token_ids[a:b]).strip() for a, b in seq.prompt.answer_spans
        ]
        assert set(answers) <= set(plan.labels)
        assert list(seq.unpredictable) == [a not in answers[:k] for k, a in enumerate(answers)]


def test_without_remapping_the_stream_is_unchanged():
    tasks = _classification_tasks(Remapping(prob=0.0))
    assert all(t.remap is None for t in tasks)
    off = list(itertools.islice(SequenceStream(tasks, 200, ShotRange(1, None), 5), 20))
    none = list(itertools.islice(SequenceStream(tasks, 200, ShotRange(1, None), 5, None), 20))
    assert off == none and all(p.labels is None for p in off)


def _family_tasks(remapping, max_seq_len=300):
    """Three families (one with two subtasks that share their inputs' look), short inputs, and a
    task whose inputs are all too long to identify."""
    specs = [("alpha", "a"), ("beta/one", "b"), ("beta/two", "b"), ("gamma", "c"), ("long", "L")]
    mixture = []
    for name, letter in specs:
        width = 40 if name == "long" else 2
        examples = tuple(TaskExample(letter * width + str(i), f"o{i}") for i in range(24))
        mixture.append(MixtureTask(Task(name, examples), 1.0, examples, ()))
    return tokenize_tasks(mixture, UNALIGNED, CharTokenizer(), max_seq_len, remapping)


def test_task_identification_sequences_label_each_task_by_its_own_arbitrary_label():
    remapping = Remapping(mix_prob=1.0, mix_max_tasks=3, mix_max_input=30)
    tasks = _family_tasks(remapping)
    assert [bool(s) for s in short_inputs(tasks, 30)] == [True, True, True, True, False]
    plans = list(itertools.islice(SequenceStream(tasks, 300, ShotRange(1, None), 0, remapping), 30))
    again = SequenceStream(tasks, 300, ShotRange(1, None), 0, remapping)
    assert plans == list(itertools.islice(again, 30))
    tok = CharTokenizer()
    for plan in plans:
        assert isinstance(plan, MixedPlan)
        used = {t for t, _ in plan.picks}
        assert 4 not in used and not {1, 2} <= used  # no long inputs; one task per family
        label_of = {t: label for (t, _), label in zip(plan.picks, plan.labels, strict=True)}
        assert len(set(label_of.values())) == len(label_of)  # a label per task, all distinct
        assert len(set(plan.picks)) == len(plan.picks)  # no input twice
        seq = materialise(tasks, plan)
        assert len(seq.prompt.token_ids) == plan_length(tasks, plan) <= 300
        answers = [
            tok.decode(seq.prompt.token_ids[a:b]).strip() for a, b in seq.prompt.answer_spans
        ]
        assert answers == list(plan.labels)
        assert list(seq.unpredictable) == [a not in answers[:k] for k, a in enumerate(answers)]
    assert {len({t for t, _ in p.picks}) for p in plans} == {2, 3}


def test_mixing_draws_a_share_of_the_stream_and_leaves_streams_without_it_unchanged():
    mixing = Remapping(prob=0.5, mix_prob=0.25, mix_max_input=30)
    tasks = _family_tasks(mixing)
    plans = list(itertools.islice(SequenceStream(tasks, 300, ShotRange(1, None), 1, mixing), 400))
    share = sum(isinstance(p, MixedPlan) for p in plans) / len(plans)
    assert 0.18 < share < 0.32
    off = Remapping(prob=0.5)
    plain = _family_tasks(off)
    a = list(itertools.islice(SequenceStream(plain, 300, ShotRange(1, None), 1, off), 50))
    b = list(
        itertools.islice(
            SequenceStream(plain, 300, ShotRange(1, None), 1, replace(mixing, mix_prob=0.0)), 50
        )
    )
    assert a == b
