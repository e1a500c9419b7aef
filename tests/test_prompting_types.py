"""Validation, JSON round trips, shot budgets and content ids."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from manyicl.prompting import (
    PLAIN,
    ContextOverflow,
    DemoSet,
    Example,
    PromptFormat,
    ShotPolicy,
    demo_set_id,
    get_format,
    plan_shots,
    render,
    shot_order,
)
from manyicl.serve.demo_set_protocol import DemoSetCreate

from chartok import CharTokenizer


@pytest.mark.parametrize(
    "payload",
    [
        {"examples": [{"input": 1, "output": "a"}]},
        {"examples": [{"input": "a", "output": None}]},
        {"examples": [{"input": "a"}]},
        {"examples": [{"input": "a", "output": "b", "label": "c"}]},
        {"examples": [{"input": "a", "output": "b"}], "instruction": 3},
    ],
)
def test_bad_demo_sets_are_rejected(payload):
    with pytest.raises(ValidationError):
        DemoSet.model_validate(payload)


def test_an_empty_set_is_a_zero_shot_prompt_but_cannot_be_registered():
    assert DemoSet.model_validate({"examples": []}).examples == []  # `demonstrations: []`
    with pytest.raises(ValidationError):
        DemoSetCreate.model_validate({"examples": []})


def test_demo_set_and_format_json_round_trip(tmp_path):
    demos = DemoSet(examples=[Example(input="a", output="b")], instruction="i", name="n")
    demos.save(tmp_path / "d.json")
    assert DemoSet.load(tmp_path / "d.json") == demos
    PLAIN.save(tmp_path / "f.json")
    assert PromptFormat.load(tmp_path / "f.json") == PLAIN


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"input": "Q: no field"}, "{input} exactly once"),
        ({"input": "{input} {input}"}, "{input} exactly once"),
        ({"output": "{answer}"}, "{output} exactly once"),
        ({"header": "{x}"}, "header takes no fields"),
    ],
)
def test_bad_formats_say_what_is_wrong(fields, message):
    with pytest.raises(ValidationError, match=message):
        PromptFormat(name="bad", **fields)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown prompt format"):
        get_format("fancy")


# lengths, fixed, max_context, policy, seed, max_shots -> chosen indices
# fmt: off
PLAN_TABLE = [
    ([3, 3, 3], 1, 10, ShotPolicy.FIRST, 0, None, [0, 1, 2]),
    ([3, 3, 3], 2, 10, ShotPolicy.FIRST, 0, None, [0, 1]),
    ([3, 9, 1], 0, 10, ShotPolicy.FIRST, 0, None, [0]),  # stops at the first misfit
    ([3, 3, 3], 0, 100, ShotPolicy.FIRST, 0, 2, [0, 1]),
    ([3, 3, 3], 0, 100, ShotPolicy.FIRST, 0, 0, []),
    ([5], 6, 10, ShotPolicy.FIRST, 0, None, []),
    ([1] * 6, 0, 100, ShotPolicy.RANDOM, 7, None, shot_order(6, ShotPolicy.RANDOM, 7)),
    ([1] * 6, 0, 3, ShotPolicy.RANDOM, 7, None, shot_order(6, ShotPolicy.RANDOM, 7)[:3]),
]
# fmt: on


@pytest.mark.parametrize("lengths,fixed,ctx,policy,seed,max_shots,want", PLAN_TABLE)
def test_plan_shots_table(lengths, fixed, ctx, policy, seed, max_shots, want):
    plan = plan_shots(
        lengths, fixed_tokens=fixed, max_context=ctx, policy=policy, seed=seed, max_shots=max_shots
    )
    assert plan.indices == want
    assert plan.dropped == len(lengths) - len(want)


def test_random_order_is_a_seeded_permutation():
    a = shot_order(50, ShotPolicy.RANDOM, 1)
    assert sorted(a) == list(range(50))
    assert a == shot_order(50, ShotPolicy.RANDOM, 1)
    assert a != shot_order(50, ShotPolicy.RANDOM, 2)
    assert shot_order(5, ShotPolicy.FIRST, 9) == [0, 1, 2, 3, 4]


def test_query_that_alone_overflows_is_a_clear_error():
    with pytest.raises(ContextOverflow, match="needs 11 tokens"):
        plan_shots([1], fixed_tokens=11, max_context=10)


@pytest.mark.parametrize("align", [0, 16])
def test_plan_fits_the_rendered_prompt(align):
    # As the server fits shots: the filler's most (align - 1) is kept free.
    tok, fmt = CharTokenizer(), PLAIN.model_copy(update={"align": align, "pad_end": "\n"})
    demos = DemoSet(examples=[Example(input=f"in{i}", output=f"out{i}") for i in range(10)])
    full = render(fmt, tok, demos, "query")
    lengths = [e.end - e.start for e in full.examples]
    query = len(full.token_ids) - full.demo_block_end
    fixed = full.header_len + max(align - 1, 0) + query + 5
    plan = plan_shots(lengths, fixed_tokens=fixed, max_context=100)
    chosen = render(fmt, tok, [demos.examples[i] for i in plan.indices], "query")
    assert len(chosen.token_ids) + 5 <= 100
    assert fixed + sum(lengths[: len(plan.indices) + 1]) > 100


def test_demo_set_id_depends_on_content_not_name():
    demos = DemoSet(examples=[Example(input="a", output="b")], name="one")
    unaligned = PLAIN.model_copy(update={"align": 0})
    same = demo_set_id(demos, unaligned, "tok")
    assert same == demo_set_id(demos.model_copy(update={"name": "two"}), unaligned, "tok")
    assert same.startswith("ds-") and len(same) == 27
    other_ex = DemoSet(examples=[Example(input="a", output="c")])
    other_fmt = unaligned.model_copy(update={"output": " {output}\n"})
    assert (
        len(
            {
                same,
                demo_set_id(other_ex, unaligned, "tok"),
                demo_set_id(demos, other_fmt, "tok"),
                demo_set_id(demos, unaligned, "other-tok"),
                demo_set_id(demos, PLAIN, "tok"),  # aligned: other block tokens
            }
        )
        == 5
    )
    # Ids are stored on disk by the server: the scheme must not drift between versions.
    assert same == "ds-07c79640e60627aee8ffb6be"
