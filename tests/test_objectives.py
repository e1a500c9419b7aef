"""Loss masks for every objective, against hand-built sequences."""

from __future__ import annotations

import pytest

from manyicl.finetune.objectives import (
    IGNORE,
    Objective,
    answer_index,
    block_ids,
    build_labels,
    skipped_answers,
)
from manyicl.prompting import PLAIN, DemoSet, Example, chat_format, render

from chartok import CharTokenizer

_ = IGNORE
# A hand-built 12-token sequence: header [0], then (ctx 1-3, ans 4-5), (ctx 6-8, ans 9-11).
IDS = list(range(100, 112))
SPANS = [(4, 6), (9, 12)]

# fmt: off
LABEL_TABLE = [
    (Objective.ALL_TARGETS, [_, _, _, _, 104, 105, _, _, _, 109, 110, 111]),
    (Objective.DRICL,       [_, _, _, _, 104, 105, _, _, _, 109, 110, 111]),
    (Objective.LAST_TARGET, [_, _, _, _, _,   _,   _, _, _, 109, 110, 111]),
]
INDEX_TABLE = [
    (Objective.ALL_TARGETS, [-1, -1, -1, -1, 0, 0, -1, -1, -1, 1, 1, 1]),
    (Objective.LAST_TARGET, [-1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0]),
]
# fmt: on


@pytest.mark.parametrize("objective,want", LABEL_TABLE)
def test_labels_table(objective, want):
    assert build_labels(IDS, SPANS, objective) == want


@pytest.mark.parametrize("objective,want", INDEX_TABLE)
def test_answer_index_table(objective, want):
    assert answer_index(len(IDS), SPANS, objective) == want


def test_zero_shot_masks_its_single_answer_and_refuses_more():
    assert build_labels([1, 2, 3, 4], [(2, 4)], Objective.ZERO_SHOT) == [_, _, 3, 4]
    with pytest.raises(ValueError, match="one example"):
        build_labels(IDS, SPANS, Objective.ZERO_SHOT)


def test_spans_outside_the_sequence_are_an_error():
    with pytest.raises(ValueError, match="outside"):
        build_labels([1, 2, 3], [(2, 5)], Objective.ALL_TARGETS)


def test_block_ids_put_the_header_with_the_first_demonstration():
    assert block_ids(8, [2, 5]) == [0, 0, 0, 0, 0, 1, 1, 1]
    assert block_ids(4, []) == [0, 0, 0, 0]


@pytest.mark.parametrize(
    "objective,want",
    [(Objective.ALL_TARGETS, " X\n\n YZ\n\n"), (Objective.LAST_TARGET, " YZ\n\n")],
)
def test_rendered_sequence_masks_exactly_the_answers(objective, want):
    tok = CharTokenizer()
    demos = DemoSet(examples=[Example(input="ab", output="X"), Example(input="c", output="YZ")])
    r = render(PLAIN.model_copy(update={"align": 0}), tok, demos)
    labels = build_labels(r.token_ids, r.answer_spans, objective)
    supervised = tok.decode([t for t in labels if t != IGNORE])
    assert supervised == want


@pytest.mark.parametrize("fmt_name", ["plain", "chat"])
def test_real_tokenizer_answers_decode_back_exactly(fmt_name, smollm2_tok, smollm2_hf_tokenizer):
    fmt = PLAIN if fmt_name == "plain" else chat_format(smollm2_hf_tokenizer)
    examples = [Example(input=f"What is {i} plus {i}?", output=str(2 * i)) for i in range(7)]
    r = render(fmt, smollm2_tok, DemoSet(examples=examples))
    labels = build_labels(r.token_ids, r.answer_spans, Objective.ALL_TARGETS)
    pieces, current = [], []
    for t in [*labels, IGNORE]:
        if t == IGNORE and current:
            pieces.append(smollm2_tok.decode(current))
            current = []
        elif t != IGNORE:
            current.append(t)
    assert pieces == [fmt.output.format(output=ex.output) for ex in examples]


# objective, unpredictable flags per answer -> labels of the hand-built sequence above
UNPREDICTABLE_TABLE = [
    (Objective.ALL_TARGETS, (True, False), [_, _, _, _, _, _, _, _, _, 109, 110, 111]),
    (Objective.ALL_TARGETS, (False, True), [_, _, _, _, 104, 105, _, _, _, _, _, _]),
    (Objective.ALL_TARGETS, (True, True), [_] * 12),
    (Objective.LAST_TARGET, (False, True), [_] * 12),
    (Objective.LAST_TARGET, (True, False), [_, _, _, _, _, _, _, _, _, 109, 110, 111]),
    (Objective.ALL_TARGETS, (), [_, _, _, _, 104, 105, _, _, _, 109, 110, 111]),
]


@pytest.mark.parametrize("objective,skip,want", UNPREDICTABLE_TABLE)
def test_unpredictable_answers_carry_no_loss(objective, skip, want):
    assert build_labels(IDS, SPANS, objective, skip) == want
    index = answer_index(len(IDS), SPANS, objective, skip)
    assert [i >= 0 for i in index] == [w != IGNORE for w in want]


# fmt: off
SKIP_TABLE = [
    # n answers, unpredictable flags, min_shots -> skipped
    (3, (),                    0, (False, False, False)),
    (3, (True, False, True),   0, (True,  False, True)),
    (3, (),                    2, (True,  True,  False)),
    (3, (False, False, True),  1, (True,  False, True)),
    (2, (),                    5, (True,  True)),
    (0, (),                    3, ()),
]
# fmt: on


@pytest.mark.parametrize("n,unpredictable,min_shots,want", SKIP_TABLE)
def test_skipped_answers_table(n, unpredictable, min_shots, want):
    assert skipped_answers(n, unpredictable, min_shots) == want


def test_skipped_answers_refuses_mismatched_flags_and_negative_shots():
    with pytest.raises(ValueError, match="2 unpredictable flags for 3"):
        skipped_answers(3, (True, False))
    with pytest.raises(ValueError, match="min_shots"):
        skipped_answers(3, (), -1)


def test_min_shots_masks_the_few_shot_answers_of_a_rendered_sequence():
    from manyicl.finetune.batching import collate
    from manyicl.finetune.sequences import TrainSequence

    tok = CharTokenizer()
    examples = [Example(input=c, output=c.upper()) for c in "abcd"]
    r = render(PLAIN.model_copy(update={"align": 0}), tok, DemoSet(examples=examples))
    seq = TrainSequence(r, unpredictable=(False, True, False, False))
    every = collate([seq], Objective.ALL_TARGETS, pad_id=0)
    late = collate([seq], Objective.ALL_TARGETS, pad_id=0, min_shots=2)
    assert every.n_answers.tolist() == [3] and late.n_answers.tolist() == [2]
    spans = seq.prompt.answer_spans
    for k, (start, end) in enumerate(spans):
        trained = (late.labels[0, start:end] != IGNORE).all().item()
        assert trained == (k >= 2), k
    assert (late.labels != IGNORE).sum() == sum(e - s for s, e in spans[2:])
