"""The OpenAI Evals source: chat rows -> bare examples, which files count, and the real wheel."""

from __future__ import annotations

import io
import os
import statistics
import time
import zipfile

import pytest

from manyicl.tasks import evals, evals_text
from manyicl.tasks.task import TaskExample


def _chat(*messages: tuple[str, str] | tuple[str, str, str]) -> list[dict]:
    """(role, content) or (role, content, name) tuples as chat messages."""
    return [dict(zip(("role", "content", "name"), m, strict=False)) for m in messages]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (  # the usual shape: a system instruction, the item
            {"input": _chat(("system", "Answer Y or N."), ("user", " cat ")), "ideal": "Y"},
            ("Answer Y or N.", ["cat"], "Y"),
        ),
        (  # demonstrations as earlier turns: only the last question is the item
            {
                "input": _chat(("system", "S"), ("user", "a"), ("assistant", "1"), ("user", "b")),
                "ideal": ["2", "two"],
            },
            ("S", ["b"], "2"),
        ),
        (  # demonstrations as named system messages
            {
                "input": _chat(
                    ("system", "S"),
                    ("system", "a", "example_user"),
                    ("system", "1", "example_assistant"),
                    ("user", "b"),
                ),
                "ideal": "2",
            },
            ("S", ["b"], "2"),
        ),
        (  # an item spread over several messages, an answer marked for a reasoning model
            {
                "input": _chat(("system", "S"), ("user", "1. x"), ("user", "2. y"), ("user", "? ")),
                "ideal": "ANSWER: B",
            },
            ("S", ["1. x", "2. y", "?"], "B"),
        ),
        (  # everything in one system message
            {"input": _chat(("system", "Who won?\nX0\n0Y")), "ideal": 7},
            ("Who won?\nX0\n0Y", [], "7"),
        ),
        ({"input": _chat(("user", "q")), "ideal": "a"}, ("", ["q"], "a")),
        ({"sample": "a few-shot file's row"}, None),
        ({"input": "a bare prompt", "ideal": "a"}, None),
        ({"input": _chat(("user", "q")), "ideal": ""}, None),
        ({"input": _chat(("user", "q")), "ideal": []}, None),
        ({"input": [{"role": "user", "content": [{"type": "image"}]}], "ideal": "a"}, None),
    ],
)
def test_split_row(row, expected):
    assert evals.split_row(row) == expected


@pytest.mark.parametrize(
    ("systems", "expected"),
    [
        (  # what differs between rows (the bigram to count) stays with each row
            ["Count 'ng'. Reply with a number.", "Count 'th'. Reply with a number."],
            (["Count 'ng'.", "Count 'th'."], "Reply with a number."),
        ),
        (  # a board after a shared instruction
            ["Who won? Return X or Y.\nX0\n0Y", "Who won? Return X or Y.\n0X\nY0"],
            (["X0\n0Y", "0X\nY0"], "Who won? Return X or Y."),
        ),
        (  # an instruction most rows share: a row that words it otherwise keeps its own
            ["Exam in law. Answer A-D.", "Exam in art. Answer A-D.", "Exam in law. Match 1-4."],
            (["", "Exam in art.", "Match 1-4."], ""),
        ),
        (["Same. Again.", "Same. Again."], (["", ""], "Same. Again.")),
        (["Some rows have one.", ""], (["Some rows have one.", ""], "")),
        ([], ([], "")),
    ],
)
def test_shared_sentences(systems, expected):
    assert evals_text.shared_sentences(systems) == expected


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (
            ["Convert to digits.\nseven", "Convert to digits.\nnine"],
            (["seven", "nine"], "Convert to digits."),
        ),
        (
            ["Is it red? Answer Yes or No.", "Is it big? Answer Yes or No."],
            (["Is it red?", "Is it big?"], ""),
        ),
        (  # a long lead-in that ends in a colon
            [
                "Which scale has the following notes: A B C",
                "Which scale has the following notes: C D",
            ],
            (["A B C", "C D"], "Which scale has the following notes:"),
        ),
        (["Sentence A: yes", "Sentence A: no"], (["Sentence A: yes", "Sentence A: no"], "")),
        (  # a shared last sentence after a space, with no full stop before it
            [
                "Moves: A: f4, B: Rd2 Answer with the letter.",
                "Moves: A: h8, B: Kg7 Answer with the letter.",
            ],
            (["Moves: A: f4, B: Rd2", "Moves: A: h8, B: Kg7"], ""),
        ),
        (["2.1 m (height)?", "0.6 m (height)?"], (["2.1 m (height)?", "0.6 m (height)?"], "")),
        (["apple pie", "apple tart"], (["apple pie", "apple tart"], "")),  # not between sentences
        (["Hi. a", "Hi. b"], (["Hi. a", "Hi. b"], "")),  # shorter than MIN_AFFIX
        (["Note this.\nA", "Note this."], (["Note this.\nA", "Note this."], "")),  # never empties
        (["only one"], (["only one"], "")),
    ],
)
def test_strip_affixes(items, expected):
    assert evals_text.strip_affixes(items) == expected


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["The correct option is: A", "The correct option is: B"], ["A", "B"]),
        (["the correct answer is (B)", "the correct answer is (D)"], ["(B)", "(D)"]),
        (["A: Flush", "A: One pair"], ["Flush", "One pair"]),
        (["New York", "New Delhi"], ["New York", "New Delhi"]),  # one word, no colon: an answer
        (["(stack 9 5)", "(stack 14)"], ["(stack 9 5)", "(stack 14)"]),  # not only words
        (["9. [(D,)]", "9. [(A,)]"], ["9. [(D,)]", "9. [(A,)]"]),
    ],
)
def test_strip_lead(answers, expected):
    assert evals_text.strip_lead(answers) == expected


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["[A]", "[ B ]"], ["A", "B"]),
        (["{a}", "{b}"], ["a", "b"]),
        (["[A]", "B"], ["[A]", "B"]),  # only a format that every answer follows
        (["[1, 2]", "[3]"], ["[1, 2]", "[3]"]),  # lists keep their brackets
        ([], []),
    ],
)
def test_unwrap(answers, expected):
    assert evals_text.unwrap(answers) == expected


def test_bare_examples_strip_the_shared_prompt_and_drop_duplicates_and_long_answers():
    def row(item: str, ideal: object) -> dict:
        return {
            "input": _chat(("system", "Is it a word? Answer Y or N."), ("user", item)),
            "ideal": ideal,
        }

    rows = [
        row("Word: cat", "[Y]"),
        row("Word: xqz", ["[N]", "no"]),
        row("Word: cat", "[Y]"),  # a duplicate
        row("Word: dog", "[" + " ".join(["very"] * 17) + "]"),  # too long an answer
        row("", "[Y]"),  # no item
        {"sample": "not a row"},
    ]
    examples, instruction = evals.bare_examples(rows)
    assert examples == [TaskExample("Word: cat", "Y"), TaskExample("Word: xqz", "N")]
    assert instruction == "Is it a word? Answer Y or N."


def test_bare_examples_keep_what_few_rows_have_in_the_system_message():
    rows = [
        {
            "input": _chat(("system", f"Count '{bigram}'. Reply with a number."), ("user", text)),
            "ideal": n,
        }
        for bigram, text, n in [("ng", "sing song", 2), ("th", "the moth", 2), ("ng", "cat", 0)]
    ]
    examples, instruction = evals.bare_examples(rows)
    assert examples == [  # most rows count 'ng': only the others say what they count
        TaskExample("sing song", "2"),
        TaskExample("Count 'th'.\nthe moth", "2"),
        TaskExample("cat", "0"),
    ]
    assert instruction == "Reply with a number."


def _examples(
    n: int, output=lambda i: "YN"[i % 2], item=lambda i: f"item {i}"
) -> list[TaskExample]:
    return [TaskExample(item(i), output(i)) for i in range(n)]


@pytest.mark.parametrize(
    ("examples", "usable"),
    [
        (_examples(120), True),
        (_examples(99), False),  # too few
        (_examples(120, output=lambda i: "Y"), False),  # one answer
        (_examples(120, output=lambda i: "N" if i < 10 else "Y"), False),  # 92% one answer
        (_examples(120, output=lambda i: "N" if i < 10 else ("Y" if i % 2 else "y")), False),
        (_examples(120, output=lambda i: f"item {i}"), False),  # answers copy the items
        (_examples(120, item=lambda i: f"{i} " + "x" * 700), False),  # long items
        (_examples(120, output=lambda i: f"a b c d e f {i % 2}"), False),  # long answers
    ],
)
def test_usable_task(examples, usable):
    assert evals.usable_task(examples) is usable


def test_task_names_add_the_file_stem_only_where_a_folder_has_several():
    files = [
        "evals/registry/data/pig_latin/samples.jsonl",
        "evals/registry/data/product-matching/rules/samples.jsonl",
        "evals/registry/data/word_association/related_words_2.jsonl",
        "evals/registry/data/word_association/related_words_3.jsonl",
    ]
    assert evals.task_names(files) == {
        "pig_latin": files[0],
        "product-matching/rules": files[1],
        "word_association/related_words_2": files[2],
        "word_association/related_words_3": files[3],
    }


def _wheel(files: dict[str, str]) -> zipfile.ZipFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name, text in files.items():
            out.writestr(name, text)
    return zipfile.ZipFile(buffer)


def test_basic_files_are_those_a_string_matching_eval_reads_outside_noncommercial_folders():
    spec = "{0}:\n  id: {0}.v0\n{0}.v0:\n  class: evals.elsuite.{1}\n  args:\n    {2}\n"
    wheel = _wheel(
        {
            "evals/registry/evals/a.yaml": spec.format(
                "a",
                "basic.match:Match",
                "samples_jsonl: a/samples.jsonl\n    few_shot_jsonl: a/few.jsonl",
            ),
            "evals/registry/evals/b.yaml": spec.format(
                "b", "modelgraded.classify:ModelBasedClassify", "samples_jsonl: b/samples.jsonl"
            ),
            "evals/registry/evals/c.yaml": spec.format(
                "c",
                "basic.includes:Includes",
                "samples_jsonl: [steganography/x.jsonl, c/gone.jsonl]",
            ),
            **{
                f"evals/registry/data/{path}": "{}\n"
                for path in [
                    "a/samples.jsonl",
                    "a/few.jsonl",
                    "b/samples.jsonl",
                    "steganography/x.jsonl",
                    "d/d.jsonl",
                ]
            },
        }
    )
    assert evals.basic_files(wheel) == [
        "evals/registry/data/a/few.jsonl",
        "evals/registry/data/a/samples.jsonl",
    ]


def test_read_rows_skips_what_is_not_a_json_object_and_stops_at_the_limit():
    wheel = _wheel({"r.jsonl": '{"a": 1}\n\nnot json\n[1]\n{"a": 2}\n{"a": 3}\n'})
    assert evals.read_rows(wheel, "r.jsonl") == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert evals.read_rows(wheel, "r.jsonl", limit=2) == [{"a": 1}, {"a": 2}]


@pytest.mark.slow
def test_every_task_of_the_real_wheel_loads_with_bare_inputs_and_short_answers():
    """The pinned wheel from the registry (46 MB, once): list_tasks, then every task."""
    names = evals.list_tasks()
    start = time.perf_counter()
    assert evals.list_tasks() == names and time.perf_counter() - start < 1  # cached
    assert 130 <= len(names) <= 260
    assert not {n.split("/")[0] for n in names} & set(evals.NONCOMMERCIAL)
    for name in names:
        task = evals.load_task(name)
        inputs, outputs = [ex.input for ex in task.examples], [ex.output for ex in task.examples]
        assert task.name == f"evals:{name}" and task.metric == "exact_match"
        assert evals.MIN_EXAMPLES <= len(task.examples) <= evals.MAX_EXAMPLES, name
        assert all(i and i == i.strip() and len(i) <= evals.MAX_INPUT_CHARS for i in inputs), name
        assert all(o and o == o.strip() and len(o.split()) <= 16 for o in outputs), name
        assert statistics.median(map(len, inputs)) <= 600, name
        assert evals_text.strip_affixes(inputs) == (inputs, ""), name  # no shared prompt is left
        assert len(os.path.commonprefix(inputs)) < 130, name  # noqa: RUF071 - nor a paragraph
        assert len(set(outputs)) >= 2, name
        assert not task.instruction or not any(i.startswith(task.instruction) for i in inputs)
    connect4 = evals.load_task("connect4")
    assert connect4.examples[0] == TaskExample(
        "Y000000\nX000000\nY000X00\nY0Y0XYX\nYYYXXXY\nXXYXXXY", "X"
    )
    assert connect4.instruction.startswith("Imagine a 6 tall, 7 long connect4 board")
    assert evals.load_task("sarcasm").examples == evals.load_task("sarcasm").examples  # a sample
    with pytest.raises(FileNotFoundError, match="connect4"):
        evals.load_task("connect5")
    with pytest.raises(ValueError, match="unknown parameter"):
        evals.load_task("connect4?seed=1")
