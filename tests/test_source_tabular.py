"""The tabular source: how a row becomes a bare input, and that a task is a pure function of
its name and seed (checked on the real bundled tables)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys

import pytest

from manyicl.tasks import tabular
from manyicl.tasks.remap import label_set
from manyicl.tasks.task import TaskExample


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1184, "0.118"),
        (0.07871, "0.0787"),
        (14.23, "14.2"),
        (18.0, "18"),
        (2.8, "2.8"),
        (122.8, "123"),
        (1065.0, "1065"),  # the integer part is never rounded away
        (3750.0, "3750"),
        (0.0, "0"),
        (-1.234, "-1.23"),
        (" Torgersen ", "Torgersen"),
    ],
)
def test_fmt(value, text):
    assert tabular.fmt(value) == text


@pytest.mark.parametrize(
    ("feature", "name"),
    [
        ("sepal length (cm)", "sepal length"),
        ("mean radius", "radius"),
        ("malic_acid", "malic acid"),
        ("alcalinity_of_ash", "alcalinity"),
        ("total_phenols", "phenols"),
        ("alcohol", "alcohol"),
    ],
)
def test_column_name(feature, name):
    assert tabular.column_name(feature) == name


SPEC = tabular.Spec("penguins", ("bill length", "flipper", "island"), "species", "")
ROWS = [
    {"species": "Adelie", "bill length": 39.1, "flipper": 181.0, "island": "Torgersen"},
    {"species": "Adelie", "bill length": "NA", "flipper": "NA", "island": "Torgersen"},
    {"species": "Gentoo", "bill length": 46.13, "flipper": 211.0, "island": "Biscoe"},
    {"species": "", "bill length": 50.0, "flipper": 200.0, "island": "Dream"},
    {"species": "Chinstrap", "bill length": 49.0, "flipper": 195.0, "island": "Dream", "sex": "NA"},
]


def test_examples_render_bare_rows_and_drop_missing_cells():
    assert tabular.examples(ROWS, SPEC) == [
        TaskExample("bill length 39.1, flipper 181, island Torgersen", "Adelie"),
        TaskExample("bill length 46.1, flipper 211, island Biscoe", "Gentoo"),
        # a missing cell in a column the task does not show keeps the row
        TaskExample("bill length 49, flipper 195, island Dream", "Chinstrap"),
    ]


def test_unknown_task_names_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="iris/species"):
        tabular.load_task("iris/petals", tmp_path)
    with pytest.raises(ValueError, match="unknown parameter"):
        tabular.load_task("iris/species?size=3", tmp_path)


def test_every_real_task_loads_as_a_bare_classification_task(tmp_path):
    names = tabular.list_tasks(tmp_path)
    assert len(names) >= 6
    for name in names:
        task = tabular.load_task(name, tmp_path)
        assert task.name == f"tabular:{name}"
        assert task.metric == "exact_match"
        assert len(task.examples) >= 100, name
        assert label_set([ex.output for ex in task.examples], 20), name
        for ex in task.examples:
            assert ex.input == ex.input.strip() and ex.output == ex.output.strip()
            assert len(ex.input) <= 120 and "\n" not in ex.input, ex.input
            assert 0 < len(ex.output) <= 12 and " " not in ex.output, ex.output
            assert "nan" not in ex.input.lower() and ", NA" not in ex.input


def test_real_rows_render_as_documented(tmp_path):
    inputs = {
        ex.input: ex.output for ex in tabular.load_task("penguins/species", tmp_path).examples
    }
    first = "bill length 39.1, bill depth 18.7, flipper 181, mass 3750, island Torgersen, sex male"
    assert inputs[first] == "Adelie"
    wine = tabular.load_task("wine/cultivar", tmp_path).examples
    assert {ex.output for ex in wine} == {"A", "B", "C"}
    cancer = tabular.load_task("breast_cancer/diagnosis", tmp_path).examples
    assert {ex.output for ex in cancer} == {"malignant", "benign"}
    assert all(ex.input.startswith("radius ") for ex in cancer)


def test_a_task_is_a_pure_function_of_name_and_seed(tmp_path):
    first = tabular.load_task("penguins/sex", tmp_path / "a").examples
    random.seed(12345)  # the global random state must play no part
    again = tabular.load_task("penguins/sex", tmp_path / "b").examples
    cached = tabular.load_task("penguins/sex", tmp_path / "a").examples
    assert first == again == cached
    reseeded = tabular.load_task("penguins/sex?seed=1", tmp_path / "a")
    assert reseeded.name == "tabular:penguins/sex?seed=1"
    assert reseeded.examples != first  # another order: other rows held back
    assert sorted(reseeded.examples, key=repr) == sorted(first, key=repr)
    assert tabular.load_task("penguins/sex?seed=0", tmp_path / "a").examples == first


_DIGEST = (
    "import hashlib, sys; from pathlib import Path; from manyicl.tasks import tabular; "
    "t = tabular.load_task('iris/sepal?seed=7', Path(sys.argv[1])); "
    "print(hashlib.sha256(repr(t.examples).encode()).hexdigest())"
)


def test_same_examples_in_other_processes_and_hash_seeds(tmp_path):
    here = tabular.load_task("iris/sepal?seed=7", tmp_path / "here").examples
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
