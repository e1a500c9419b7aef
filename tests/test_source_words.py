"""The words source (lemminflect's English lexicon, num2words): which forms are kept, that the
real tasks hold the English and the number words they should, and that a task is a pure
function of its name and seed."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from collections import Counter

import pytest

from manyicl.tasks import words
from manyicl.tasks.remap import label_set
from manyicl.tasks.task import TaskExample


@pytest.mark.parametrize(
    ("form", "tag", "kept"),
    [
        ("mice", "NNS", True),
        ("went", "VBD", True),
        ("goes", "VBZ", True),
        ("torpedo", "VBZ", False),  # a lexicon slip: an -s form without -s
        ("running", "VBG", True),
        ("runnin", "VBG", False),
        ("freeer", "JJR", False),  # three e's
        ("cave men", "NNS", False),
        ("Aarons", "NNS", False),
    ],
)
def test_sane(form, tag, kept):
    assert words.sane(form, tag) is kept


@pytest.mark.parametrize(
    ("base", "form", "tag", "is_regular"),
    [
        ("cat", "cats", "NNS", True),
        ("box", "boxes", "NNS", True),
        ("city", "cities", "NNS", True),
        ("mouse", "mice", "NNS", False),
        ("knife", "knives", "NNS", False),
        ("walk", "walked", "VBD", True),
        ("bake", "baked", "VBD", True),
        ("try", "tried", "VBD", True),
        ("stop", "stopped", "VBD", True),
        ("picnic", "picnicked", "VBD", True),
        ("feed", "fed", "VBD", False),  # ends in -ed all the same
        ("go", "went", "VBD", False),
        ("write", "written", "VBN", False),
    ],
)
def test_regular(base, form, tag, is_regular):
    assert words.regular(base, form, tag) is is_regular


def test_unambiguous_drops_identities_and_inputs_with_two_answers():
    pairs = [("lay", "lie"), ("lay", "lay"), ("lay", "laid"), ("cat", "cats"), ("cat", "cats")]
    pairs += [("sheep", "sheep"), ("went", "go")]
    assert words.unambiguous(pairs) == [("cat", "cats"), ("went", "go")]


def test_balanced_takes_an_equal_share_of_each_label():
    items = (*((f"v{n}", "regular") for n in range(10)), ("go", "irregular"), ("be", "irregular"))
    chosen = words.balanced(items, random.Random(0), 6)
    assert Counter(label for _, label in chosen) == {"regular": 2, "irregular": 2}
    assert set(chosen) <= set(items)
    assert Counter(label for _, label in words.balanced(items, random.Random(0), 2)) == {
        "regular": 1,
        "irregular": 1,
    }


def test_draw_is_uniform_over_digit_counts():
    rng = random.Random(0)
    drawn = [words.draw(rng, 0, 9999) for _ in range(4000)]
    assert min(drawn) >= 0 and max(drawn) <= 9999
    digits = Counter(len(str(n)) for n in drawn)
    assert all(800 < digits[d] < 1200 for d in (1, 2, 3, 4)), digits
    assert {words.draw(rng, 1100, 2099) for _ in range(200)} <= set(range(1100, 2100))


@pytest.mark.parametrize(
    ("family", "lang", "value", "item"),
    [
        ("cardinal", "en", 427, ("427", "four hundred and twenty-seven")),
        ("cardinal", "fr", 80, ("80", "quatre-vingts")),
        ("cardinal", "de", 21, ("21", "einundzwanzig")),
        ("ordinal", "en", 3, ("3", "third")),
        ("ordinal", "fr", 21, ("21", "vingt et unième")),
        ("ordinal_num", "en", 22, ("22", "22nd")),
        ("year", "en", 1987, ("1987", "nineteen eighty-seven")),
        ("year", "de", 1987, ("1987", "neunzehnhundertsiebenundachtzig")),
        ("currency", "de", 1250, ("12.50", "zwölf Euro und fünfzig Cent")),
        ("currency", "en", 101, ("1.01", "one euro, one cent")),
        ("words_to_number", "en", 427, ("four hundred and twenty-seven", "427")),
        ("words_to_number", "es", 1515, ("mil quinientos quince", "1515")),
    ],
)
def test_number_item(monkeypatch, family, lang, value, item):
    monkeypatch.setattr(words, "draw", lambda rng, low, high: value)
    assert words.number_item(family, lang, random.Random(0)) == item


@pytest.mark.parametrize(
    ("name", "item"),
    [
        ("noun/plural", ("mouse", "mice")),
        ("noun/plural", ("city", "cities")),
        ("noun/irregular_plural", ("child", "children")),
        ("noun/singular", ("mice", "mouse")),
        ("verb/past", ("go", "went")),
        ("verb/past", ("stop", "stopped")),
        ("verb/irregular_past", ("go", "went")),
        ("verb/past_participle", ("write", "written")),
        ("verb/irregular_participle", ("see", "seen")),
        ("verb/gerund", ("run", "running")),
        ("verb/third_person", ("fly", "flies")),
        ("verb/past_to_present", ("went", "goes")),
        ("verb/regularity", ("go", "irregular")),
        ("verb/regularity", ("walk", "regular")),
        ("adjective/comparative", ("good", "better")),
        ("adjective/superlative", ("big", "biggest")),
        ("adjective/comparative_to_superlative", ("better", "best")),
        ("word/lemma", ("went", "go")),
        ("word/lemma", ("mice", "mouse")),
        ("word/inflection_type", ("went", "past")),
        ("word/inflection_type", ("written", "participle")),
        ("word/inflection_type", ("walking", "gerund")),
        ("word/inflection_type", ("biggest", "superlative")),
    ],
)
def test_real_lexicon_items(name, item):
    assert item in words.english_items(name)


def test_real_lexicon_leaves_out_what_has_two_answers():
    kinds = dict(words.english_items("word/inflection_type"))
    assert "walks" not in kinds  # a plural noun and a verb's -s form
    assert "walked" in kinds and kinds["walked"] == "past"  # past and participle: "past"
    assert "going" not in kinds  # "going" is also a noun in the lexicon
    irregular = dict(words.english_items("verb/irregular_past"))
    assert "walk" not in irregular and "can" not in irregular and "feed" in irregular
    assert {label for _, label in words.english_items("verb/regularity")} == {
        "regular",
        "irregular",
    }


def test_names_and_instruction(tmp_path):
    task = words.load_task("cardinal/fr?size=5", tmp_path)
    assert task.name == "words:cardinal/fr?size=5"
    assert task.instruction == "Write the number in words in French."
    assert task.metric == "exact_match" and len(task.examples) == 5
    assert words.load_task("noun/plural?size=5", tmp_path).instruction == "Give the plural."


def test_classifications_are_balanced(tmp_path):
    regularity = Counter(ex.output for ex in words.load_task("verb/regularity", tmp_path).examples)
    assert regularity["regular"] == regularity["irregular"] >= 100
    kinds = words.load_task("word/inflection_type", tmp_path).examples
    assert label_set([ex.output for ex in kinds], 20)
    assert len(set(Counter(ex.output for ex in kinds).values())) == 1  # as many of each
    assert len(kinds) >= 7 * 100


def test_unknown_task_names_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="adjective/comparative"):
        words.load_task("cardinal/xx", tmp_path)
    with pytest.raises(ValueError, match="unknown parameter"):
        words.load_task("noun/plural?count=3", tmp_path)


def test_a_task_is_a_pure_function_of_name_and_seed(tmp_path):
    for name in ("noun/plural", "cardinal/de", "verb/regularity"):
        first = words.load_task(name, tmp_path / "a").examples
        random.seed(12345)  # the global random state must play no part
        again = words.load_task(name, tmp_path / "b").examples
        assert first == again == words.load_task(name, tmp_path / "a").examples
        assert words.load_task(f"{name}?seed=0", tmp_path / "a").examples == first
        assert words.load_task(f"{name}?seed=1", tmp_path / "a").examples != first


_NAMES = ("word/inflection_type?seed=3", "currency/fr", "noun/irregular_plural")
_DIGEST = (
    "import hashlib, sys; from pathlib import Path; from manyicl.tasks import words; "
    f"t = [words.load_task(n, Path(sys.argv[1])).examples for n in {_NAMES!r}]; "
    "print(hashlib.sha256(repr(t).encode()).hexdigest())"
)


def test_same_examples_in_other_processes_and_hash_seeds(tmp_path):
    here = [words.load_task(n, tmp_path / "here").examples for n in _NAMES]
    digests = set()
    for hash_seed in ("0", "1"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", _DIGEST, str(tmp_path / hash_seed)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(out.stdout.strip())
    assert digests == {hashlib.sha256(repr(here).encode()).hexdigest()}


@pytest.mark.slow
def test_every_real_task_loads_bare_and_short(tmp_path):
    names = words.list_tasks(tmp_path)
    assert 30 <= len(names) <= 60
    for name in names:
        task = words.load_task(name, tmp_path)
        assert task.name == f"words:{name}" and task.metric == "exact_match"
        assert len(task.examples) >= 100, name
        assert len({ex.input for ex in task.examples}) == len(task.examples), name
        for ex in task.examples:
            assert isinstance(ex, TaskExample) and ex.choices is None
            assert ex.input == ex.input.strip() and ex.output == ex.output.strip()
            assert 0 < len(ex.input) <= 64 and "\n" not in ex.input, (name, ex.input)
            assert 0 < len(ex.output) <= 64 and "\n" not in ex.output, (name, ex.output)
