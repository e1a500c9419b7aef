"""The CLDR source (babel's locale data): what an item becomes, that the real tasks carry
the facts CLDR states, and that a task is a pure function of its name and seed."""

from __future__ import annotations

import hashlib
import os
import random
import re
import subprocess
import sys

import pytest

from manyicl.tasks import cldr
from manyicl.tasks.task import TaskExample


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("1\u202f234,50\xa0€", "1 234,50 €"),  # narrow NBSP and NBSP become spaces
        ("\u200f1,234.50\xa0\u200f€", "1,234.50 €"),  # right-to-left marks are dropped
        ("\u061c-12", "-12"),  # so is the Arabic letter mark
        ("  Allemagne ", "Allemagne"),
        ("ミャンマー (ビルマ)", "ミャンマー (ビルマ)"),
    ],
)
def test_clean(text, cleaned):
    assert cldr.clean(text) == cleaned


def test_names_sorts_strips_and_drops_ambiguous_and_empty_items():
    pairs = [
        ("Germany", "Allemagne"),
        (" France", "France\xa0"),
        ("Moldavian", "moldave"),
        ("Moldavian", "roumain"),  # one input, two answers: left out
        ("Germany", "Allemagne"),  # a repeat is one item
        ("Nowhere", " "),
        ("", "rien"),
    ]
    assert cldr.names(pairs) == [("France", "France"), ("Germany", "Allemagne")]


def test_balanced_takes_an_equal_share_of_each_label():
    items = [(str(n), "many") for n in range(20)] + [("1", "one"), ("2", "few"), ("3", "few")]
    chosen = cldr.balanced(items, random.Random(0), 9)
    # three of each label at most: the one "one", both "few", three "many"
    assert sorted(label for _, label in chosen) == ["few", "few", "many", "many", "many", "one"]
    assert set(chosen) <= set(items) and len(set(chosen)) == 6
    assert sorted(n for n, label in chosen if label == "many") == ["0", "1", "2"]  # the first


@pytest.mark.parametrize(
    ("family", "locale", "item"),
    [
        ("territory_name", "fr", ("Germany", "Allemagne")),
        ("territory_name", "ja", ("Japan", "日本")),
        ("language_name", "de", ("French", "Französisch")),
        ("currency_name", "fr", ("Japanese Yen", "yen japonais")),
        ("territory_code", "", ("Germany", "DE")),
        ("territory_currency", "", ("Japan", "JPY")),
        ("territory_currency", "", ("Germany", "EUR")),
        ("territory_language", "", ("Brazil", "Portuguese")),
        ("timezone_region", "", ("France", "Europe")),
        ("timezone_region", "", ("Russia", "Asia")),  # most of its zones
        ("language_code", "", ("German", "de")),
        ("language_script", "", ("Russian", "Cyrillic")),
        ("currency_code", "", ("Euro", "EUR")),
    ],
)
def test_real_lookups_hold_what_cldr_says(family, locale, item):
    assert item in cldr.lookup_items(family, locale)


def test_real_lookups_leave_out_groupings_and_split_currencies():
    inputs = {source for source, _ in cldr.lookup_items("territory_code")}
    assert "European Union" not in inputs and "world" not in inputs
    assert "Zimbabwe" not in {s for s, _ in cldr.lookup_items("territory_currency")}  # USD, ZWG
    regions = {label for _, label in cldr.lookup_items("timezone_region")}
    assert regions == {"Africa", "America", "Asia", "Atlantic", "Europe", "Indian", "Pacific"}


def _russian_plural(text: str) -> str:
    """CLDR's Russian rule, written out by hand."""
    if "." in text:
        return "other"
    n = int(text)
    if n % 10 == 1 and n % 100 != 11:
        return "one"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "few"
    return "many"


def test_real_formatting_follows_the_locale(tmp_path):
    for ex in cldr.load_task("decimal/de", tmp_path).examples:
        assert ex.output.replace(".", "").replace(",", ".") == ex.input
    for ex in cldr.load_task("decimal/fr", tmp_path).examples:
        assert ex.output.replace(" ", "").replace(",", ".") == ex.input
    for ex in cldr.load_task("date/ja", tmp_path).examples:
        year, month, day = (int(part) for part in ex.input.split("-"))
        assert ex.output == f"{year}年{month}月{day}日"
    plural = cldr.load_task("plural_category/ru", tmp_path).examples
    assert all(ex.output == _russian_plural(ex.input) for ex in plural)
    assert {"one", "few", "many", "other"} == {ex.output for ex in plural}
    kilometers = {"one": "километр", "few": "километра", "many": "километров"}
    units = cldr.load_task("unit/ru?size=2000", tmp_path).examples
    for ex in units:
        number, _, unit = ex.input.partition(" ")
        number = number.replace(",", "")  # English writes "1,000 kilograms"
        assert re.sub(r"\D", "", ex.output) == number, ex
        if unit in ("kilometer", "kilometers"):
            assert ex.output == f"{number} {kilometers[_russian_plural(number)]}", ex
    assert sum(ex.input.endswith(" kilometers") for ex in units) >= 50


def test_names_and_instruction(tmp_path):
    task = cldr.load_task("territory_name/fr?size=5", tmp_path)
    assert task.name == "cldr:territory_name/fr?size=5"
    assert task.instruction == "Name the country or territory in French."
    assert task.metric == "exact_match" and len(task.examples) == 5
    assert cldr.load_task("territory_code?size=5", tmp_path).instruction is None


def test_unknown_task_names_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="compact/ar"):
        cldr.load_task("territory_name/xx", tmp_path)
    with pytest.raises(ValueError, match="unknown parameter"):
        cldr.load_task("date/fr?count=3", tmp_path)


def test_a_task_is_a_pure_function_of_name_and_seed(tmp_path):
    for name in ("date/fr", "territory_name/de", "plural_category/pl"):
        first = cldr.load_task(name, tmp_path / "a").examples
        random.seed(12345)  # the global random state must play no part
        again = cldr.load_task(name, tmp_path / "b").examples
        assert first == again == cldr.load_task(name, tmp_path / "a").examples
        assert cldr.load_task(f"{name}?seed=0", tmp_path / "a").examples == first
        assert cldr.load_task(f"{name}?seed=1", tmp_path / "a").examples != first


_DIGEST = (
    "import hashlib, sys; from pathlib import Path; from manyicl.tasks import cldr; "
    "t = [cldr.load_task(n, Path(sys.argv[1])).examples "
    "for n in ('unit/ru?seed=3', 'territory_language', 'plural_category/ar')]; "
    "print(hashlib.sha256(repr(t).encode()).hexdigest())"
)


def test_same_examples_in_other_processes_and_hash_seeds(tmp_path):
    here = [
        cldr.load_task(n, tmp_path / "here").examples
        for n in ("unit/ru?seed=3", "territory_language", "plural_category/ar")
    ]
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
    names = cldr.list_tasks(tmp_path)
    assert 150 <= len(names) <= 250
    for name in names:
        task = cldr.load_task(name, tmp_path)
        assert task.name == f"cldr:{name}" and task.metric == "exact_match"
        assert len(task.examples) >= 100, name
        assert len({ex.input for ex in task.examples}) == len(task.examples), name
        for ex in task.examples:
            assert isinstance(ex, TaskExample) and ex.choices is None
            assert ex.input == ex.input.strip() and ex.output == ex.output.strip()
            assert 0 < len(ex.input) <= 60 and "\n" not in ex.input, (name, ex.input)
            assert 0 < len(ex.output) <= 64 and "\n" not in ex.output, (name, ex.output)
            assert cldr.clean(ex.output) == ex.output, (name, ex.output)
