"""The reasoning-gym source: bare items from hand-built generator rows, and the real package's
tasks (every one generated small), their determinism across processes and hash seeds."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from manyicl.tasks import gym
from manyicl.tasks.generated import GeneratedKey
from manyicl.tasks.gym_extract import (
    ACRE,
    CUBE,
    SYLLOGISM,
    family,
    field,
    fill,
    filtering,
    letter_count,
    lists,
    matrix,
    polygon,
    regex,
    when,
)
from manyicl.tasks.task import TaskExample


def _item(question: str = "", answer: str = "", **metadata) -> dict:
    return {"question": question, "answer": answer, "metadata": metadata}


SYLLOGISM_Q = (
    "Consider these statements:\n1. All adults are grandparents\n2. No grandparents are fish\n\n"
    "Does it logically follow that:\nSome adults are not fish?\n(Answer Yes or No)"
)
ACRE_Q = (
    "You are a researcher studying causal relationships ...\n\nPrevious experimental results:\n"
    "brown rubber cube → off\ngray rubber cube, brown rubber cube → on\n\n"
    "New test case:\ngray rubber cube\n\nWhat is the detector light status?"
)
FAMILY_Q = (
    "David is married to Barbara. They have a child called Jacob.\n\n"
    "What relation is Jacob to Barbara? Answer with a single word."
)
CUBE_Q = "A cube has:\n- a blue top side\n\nWhat is now the color of the top side of the cube?"

# (extractor, hand-built item, the bare (input, output) it must give)
EXTRACTS = [
    (field("expression"), _item("Calculate 3 + 4 * 2.", "11", expression="3 + 4 * 2"),
     ("3 + 4 * 2", "11")),
    (field("number"), _item("How many 1 bits ... 5?", "2", number=5), ("5", "2")),
    (lists("numbers"), _item("GCD of 780, 461", "1", numbers=[780, 461]), ("780, 461", "1")),
    (lists("words", sep=" "), _item("...:\nmyty hxmm\n", "False", words=["myty", "hxmm"]),
     ("myty hxmm", "False")),
    (lists("original_numbers", "sorted_numbers"),
     _item("Sort ...", "['-1', '2']", original_numbers=["2", "-1"], sorted_numbers=["-1", "2"]),
     ("2, -1", "-1, 2")),
    (fill("{} (base {}) to base {}", "source_repr", "source_base", "target_base"),
     _item("convert the base-11 number 115 to base-15", "92", source_repr="115", source_base=11,
           target_base=15),
     ("115 (base 11) to base 15", "92")),
    (regex(r"^(.+), \?$"), _item("5, 2, 1, 0, ?", "0"), ("5, 2, 1, 0", "0")),
    (regex(r"if you have (.+)\?"),
     _item("Your task is ...\n\nNow, how many legs ... if you have 2 cats, 1 bird?\n", "10"),
     ("2 cats, 1 bird", "10")),
    (when("direction", "ascending", lists("words")),
     _item("", "a, b", direction="ascending", words=["b", "a"]), ("b, a", "a, b")),
    (when("direction", "ascending", lists("words")),
     _item("", "b, a", direction="descending", words=["a", "b"]), None),
    (letter_count, _item("", "2", target_letter="h", span=["the", "hat"]),
     ("h: the hat", "2")),
    (filtering,
     _item("", "", filter_value="8.6", original_numbers=["-81.68", "67.10"], result=["-81.68"]),
     ("8.6 | -81.68, 67.10", "-81.68")),
    (polygon, _item("", "104", n_sides=4, known_angles=[155.0, 26.0, 75.5]),
     ("4 sides: 155, 26, 75.5", "104")),
    (matrix, _item("", "2 1 5 1", matrix=[[2, 1], [1, 5]]), ("2 1\n1 5", "2 1 5 1")),
    (family, _item(FAMILY_Q, "son", person1="Jacob", person2="Barbara"),
     ("David is married to Barbara. They have a child called Jacob.\nWhat is Jacob to Barbara?",
      "son")),
    (SYLLOGISM, _item(SYLLOGISM_Q, "Yes"),
     ("All adults are grandparents. No grandparents are fish. Therefore: Some adults are not fish?",
      "Yes")),
    (ACRE, _item(ACRE_Q, "on"),
     ("brown rubber cube → off\ngray rubber cube, brown rubber cube → on\ngray rubber cube → ?",
      "on")),
    (CUBE, _item(CUBE_Q + "\nProvide only the color as your final answer.", "blue"),
     (CUBE_Q, "blue")),
]  # fmt: skip


@pytest.mark.parametrize(("extract", "item", "expected"), EXTRACTS)
def test_extract_gives_the_bare_item(extract, item, expected):
    assert extract(item) == expected


def test_a_question_the_regex_does_not_match_is_an_error():
    with pytest.raises(ValueError, match="does not match"):
        CUBE(_item("A cube has a red top.", "red"))
    with pytest.raises(ValueError, match="no story"):
        family(_item("no paragraphs", "son", person1="A", person2="B"))


def test_bare_examples_strip_skip_empty_long_and_repeated_inputs():
    pairs = [
        (" 1 + 1 ", " 2\n"),
        ("", "x"),
        ("3", " "),
        ("1 + 1", "3"),  # the same input again: a demonstration must not answer an eval item
        ("long", "y" * (gym.MAX_OUTPUT + 1)),
        ("2 + 2", "4"),
        ("3 + 3", "6"),
    ]
    assert list(gym.bare_examples(pairs, size=2)) == [
        TaskExample("1 + 1", "2"),
        TaskExample("2 + 2", "4"),
    ]


def test_sorted_set_iterates_in_order_also_after_difference():
    letters = gym._SortedSet({"q", "b", "z", "a"})
    assert list(letters) == ["a", "b", "q", "z"]
    assert list(letters - {"b"}) == ["a", "q", "z"]


def test_unknown_names_and_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="basic_arithmetic/easy"):
        gym.load_task("basic_arithmetic/eazy", tmp_path)
    with pytest.raises(ValueError, match="size"):
        gym.load_task("gcd?size=0", tmp_path)
    with pytest.raises(ValueError, match="unknown parameter"):
        gym.load_task("gcd?n=3", tmp_path)


def _digest(task) -> str:
    rows = [(e.input, e.output) for e in task.examples]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def test_generation_is_a_function_of_name_and_seed_only(tmp_path):
    state = random.getstate()
    first = gym.load_task("list_functions/divisible_by_ten?size=80", tmp_path / "a")
    assert random.getstate() == state  # the global generator it seeds is restored
    random.seed(12345)
    again = gym.load_task("list_functions/divisible_by_ten?size=80", tmp_path / "b")
    cached = gym.load_task("list_functions/divisible_by_ten?size=80", tmp_path / "a")
    other = gym.load_task("list_functions/divisible_by_ten?seed=1&size=80", tmp_path / "a")
    assert first.name == "gym:list_functions/divisible_by_ten?size=80"
    assert first.examples == again.examples == cached.examples
    assert len(first.examples) == 80
    assert other.examples != first.examples
    params = {"seed": 0, "size": 80}  # written once, under the package's version
    key = GeneratedKey("gym", "list_functions/divisible_by_ten", params, gym.VERSION)
    assert key.path(tmp_path / "a").is_file() and gym.VERSION == "0.1.25"


# One task of each kind: plain generator, rule split, arc_1d, list_functions (global random),
# acre, and the generators that draw from a set of strings (hash-seed order).
KINDS = [
    "basic_arithmetic/easy", "word_sorting/ascending", "arc_1d/gravity_left",
    "list_functions/divisible_by_ten", "acre", "isomorphic_strings", "ransom_note",
]  # fmt: skip
_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
from manyicl.tasks import gym
out = {}
for name in sys.argv[2:]:
    task = gym.load_task(name + "?size=80", Path(sys.argv[1]))
    rows = [(e.input, e.output) for e in task.examples]
    out[name] = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
print(json.dumps(out))
"""


def test_same_examples_in_other_processes_and_hash_seeds(tmp_path):
    here = {n: _digest(gym.load_task(f"{n}?size=80", tmp_path / "here")) for n in KINDS}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SCRIPT, str(tmp_path / seed), *KINDS],
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "2")
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        assert json.loads(out) == here


# Phrases of reasoning-gym's instruction templates; a bare input has none of them.
PROSE = ("your task", "your output", "your answer", "final answer", "respond only", "answer with",
         "answer yes or no", "do not include units", "provide only")  # fmt: skip


def _shared_prefix(texts: list[str]) -> int:
    """How many leading characters all of `texts` share."""
    for n, chars in enumerate(zip(*texts, strict=False)):
        if len(set(chars)) > 1:
            return n
    return min(map(len, texts))


def test_every_real_task_loads_bare_and_short(tmp_path):
    names = gym.list_tasks()
    families = Counter(n.split("/")[0] for n in names)
    assert len(names) >= 60
    assert families["arc_1d"] >= 60 and families["list_functions"] == 17 and families["acre"] == 1
    assert len(families) >= 40
    for name in names:
        task = gym.load_task(f"{name}?size=80", tmp_path)
        inputs = [e.input for e in task.examples]
        assert task.name == f"gym:{name}?size=80" and task.metric == "exact_match"
        assert len(inputs) >= 64, name
        assert len(set(inputs)) == len(inputs), name
        # A preamble repeated per item would show as a long prefix or suffix they all share.
        assert _shared_prefix(inputs) < 30 and _shared_prefix([i[::-1] for i in inputs]) < 30, name
        for ex in task.examples:
            assert ex.input == ex.input.strip() and ex.output == ex.output.strip(), name
            assert ex.output and len(ex.output) <= gym.MAX_OUTPUT, (name, ex)
            assert 0 < len(ex.input) <= 700, (name, ex)
            assert not any(p in ex.input.lower() for p in PROSE), (name, ex)
