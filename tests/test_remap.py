"""Label remapping (symbol tuning): label sets, mappings, first occurrences, held-out remaps."""

from __future__ import annotations

import random

import pytest

from manyicl.tasks.remap import (
    Kind,
    LabelPools,
    derangement,
    draw_mapping,
    first_occurrences,
    label_set,
    remap_example,
    seeded_mapping,
    strip_choices,
)
from manyicl.tasks.task import TaskExample, choice_suffix

# outputs, max_labels -> the label set (empty: not a classification task)
LABEL_SET_TABLE = [
    (["b", "a", "b", "a"], 20, ("a", "b")),
    (["b", "a", "b", "a", "c", "c"], 2, ()),  # more labels than max_labels
    (["a", "a", "a"], 20, ()),  # one label: nothing to classify
    (["a", "a", "b"], 20, ()),  # a label seen once: a generation task's stray output
    (["x1", "x2", "x3", "x4"], 20, ()),
]


@pytest.mark.parametrize("outputs,max_labels,want", LABEL_SET_TABLE)
def test_label_set(outputs, max_labels, want):
    assert label_set(outputs, max_labels) == want


# answers -> which are the first of their label
FIRST_TABLE = [
    ([], []),
    (["x"], [True]),
    (["x", "y", "x", "x", "z", "y"], [True, True, False, False, True, False]),
    (["q", "q", "q"], [True, False, False]),
]


@pytest.mark.parametrize("answers,want", FIRST_TABLE)
def test_first_occurrences(answers, want):
    assert first_occurrences(answers) == want


@pytest.mark.parametrize("n", [2, 3, 7])
def test_derangement_moves_every_label(n):
    for seed in range(20):
        perm = derangement(random.Random(seed), n)
        assert sorted(perm) == list(range(n)) and all(i != p for i, p in enumerate(perm))


def test_draw_mapping_is_seeded_and_gives_distinct_labels_of_every_kind():
    pools = LabelPools.load("train")
    labels = ("neg", "neu", "pos")
    a = [draw_mapping(random.Random(s), labels, pools, 0.2) for s in range(200)]
    assert a == [draw_mapping(random.Random(s), labels, pools, 0.2) for s in range(200)]
    assert all(len(set(m)) == 3 for m in a)
    flipped = [m for m in a if set(m) == set(labels)]
    assert all(m[i] != labels[i] for m in flipped for i in range(3))
    assert 20 <= len(flipped) <= 60  # about flip_prob of them
    kinds = {Kind.WORDS: pools.words, Kind.LETTERS: pools.letters, Kind.NUMBERS: pools.numbers}
    for kind, pool in kinds.items():
        assert any(set(m) <= set(pool) for m in a), kind


def test_pools_of_train_and_eval_share_no_label():
    train, held_out = LabelPools.load("train"), LabelPools.load("eval")
    assert not set(train.every_label) & set(held_out.every_label)
    assert len(train.words) >= 50 and len(held_out.words) >= 20


def test_strip_choices_removes_only_the_appended_list():
    choices = ("yes", "no")
    listed = TaskExample("Is it? " + choice_suffix(choices), "yes", choices)
    assert strip_choices(listed) == "Is it? "
    assert strip_choices(TaskExample("Is it?", "yes", choices)) == "Is it?"
    assert strip_choices(TaskExample("Is it?", "yes")) == "Is it?"


def test_remap_example_maps_the_answer_and_the_choices():
    ex = TaskExample("Q" + choice_suffix(("a", "b")), "b", ("a", "b"))
    assert remap_example(ex, ("a", "b"), ("cat", "dog")) == TaskExample("Q", "dog", ("cat", "dog"))


def test_seeded_mapping_is_fixed_by_task_kind_and_seed():
    pools = LabelPools.load("eval")
    labels = ("neg", "pos", "neu")
    a = seeded_mapping("t", labels, Kind.WORDS, 0, pools)
    assert a == seeded_mapping("t", labels, Kind.WORDS, 0, pools)
    assert set(a) <= set(pools.words) and len(set(a)) == 3
    assert a != seeded_mapping("u", labels, Kind.WORDS, 0, pools)
    assert len({seeded_mapping("t", labels, Kind.WORDS, s, pools) for s in range(10)}) > 1
    flipped = seeded_mapping("t", labels, Kind.FLIPPED, 0, pools)
    assert sorted(flipped) == sorted(labels) and all(
        f != n for f, n in zip(flipped, labels, strict=True)
    )
