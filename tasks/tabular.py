"""Tabular classification tasks from tables that ship inside packages: scikit-learn's bundled
iris, wine and breast-cancer tables, and the Palmer penguins (`palmerpenguins`).

    load_task("iris/species")    # "sepal length 5.1, sepal width 3.5, ..." -> "setosa"
    load_task("penguins/sex?seed=3")

A row is rendered bare and compact ("name value, name value"), so the label can only be learnt
from the demonstrations: nothing in the input names the classes. Numbers keep 3 significant
digits but never lose their integer part (0.1184 -> 0.118, 14.23 -> 14.2, 1065 -> 1065). Wide
tables keep their first `WIDE_COLUMNS` columns in the table's own order, a rule fixed without
looking at how well any column predicts the label (breast cancer's first columns are its
"mean" measurements). The rows of a task are shuffled by its seed: a pure function of the name,
the seed and the version of the package the table came from.
"""

from __future__ import annotations

import csv
import importlib.metadata
import importlib.resources
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from manyicl.tasks.generated import GeneratedKey, cached, sampler, split_params
from manyicl.tasks.task import Task, TaskExample

# Bump when the rendering changes, so that a cached file of the old rendering is not read.
FORMAT = 1
WIDE_COLUMNS = 7
MISSING = ("", "NA")  # how the penguins table marks a missing value

Record = dict[str, str | float]


@dataclass(frozen=True)
class Spec:
    """One task: which table, which columns the input shows (in order), which is the label."""

    table: str
    features: tuple[str, ...]
    label: str
    instruction: str


_PENGUIN_SIZE = ("bill length", "bill depth", "flipper", "mass")
TASKS: dict[str, Spec] = {
    "iris/species": Spec(
        "iris",
        ("sepal length", "sepal width", "petal length", "petal width"),
        "species",
        "Name the iris species.",
    ),
    # Only the sepals: setosa stands apart, versicolor and virginica overlap (noisy labels).
    "iris/sepal": Spec(
        "iris", ("sepal length", "sepal width"), "species", "Name the iris species."
    ),
    "wine/cultivar": Spec(
        "wine",
        ("alcohol", "malic acid", "ash", "alcalinity", "magnesium", "phenols", "flavanoids"),
        "cultivar",
        "Name the wine's cultivar.",
    ),
    "breast_cancer/diagnosis": Spec(
        "breast_cancer",
        ("radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity"),
        "diagnosis",
        "Diagnose the tumour.",
    ),
    "penguins/species": Spec(
        "penguins", (*_PENGUIN_SIZE, "island", "sex"), "species", "Name the penguin species."
    ),
    "penguins/bill": Spec(
        "penguins", ("bill length", "bill depth"), "species", "Name the penguin species."
    ),
    "penguins/sex": Spec("penguins", ("species", *_PENGUIN_SIZE), "sex", "Name the penguin's sex."),
    # Species left out: it would decide the island of two species out of three outright.
    "penguins/island": Spec(
        "penguins", (*_PENGUIN_SIZE, "sex"), "island", "Name the penguin's island."
    ),
}


def fmt(value: str | float) -> str:
    """A cell as the input shows it: text as it is, a number to 3 significant digits but
    never fewer than its integer digits, without trailing zeros (18.0 -> "18")."""
    if isinstance(value, str):
        return value.strip()
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def render(record: Record, features: tuple[str, ...]) -> str:
    """'bill length 39.1, bill depth 18.7, island Torgersen'."""
    return ", ".join(f"{name} {fmt(record[name])}" for name in features)


def examples(records: list[Record], spec: Spec) -> list[TaskExample]:
    """The task's examples in the table's order; a row missing any shown column or its label
    is dropped (the penguins table has a few)."""
    out = []
    for record in records:
        cells = [record[c] for c in (*spec.features, spec.label)]
        if any(isinstance(c, str) and c.strip() in MISSING for c in cells):
            continue
        out.append(TaskExample(render(record, spec.features), fmt(record[spec.label])))
    return out


def column_name(feature: str) -> str:
    """scikit-learn's feature name as the input shows it: short, no units, no underscores."""
    short = {"alcalinity_of_ash": "alcalinity", "total_phenols": "phenols"}
    name = short.get(feature, feature).removesuffix(" (cm)").removeprefix("mean ")
    return name.replace("_", " ")


def _sklearn(loader: str, label: str, names: dict[str, str] | None = None) -> list[Record]:
    """A bundled scikit-learn table (no download): its first WIDE_COLUMNS columns and the
    label, a class name renamed by `names` where given."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)()
    columns = [column_name(str(f)) for f in bunch.feature_names[:WIDE_COLUMNS]]
    classes = [str(c) for c in bunch.target_names]
    records = []
    for row, target in zip(bunch.data.tolist(), bunch.target.tolist(), strict=True):
        record: Record = dict(zip(columns, row[:WIDE_COLUMNS], strict=True))
        cls = classes[target]
        record[label] = (names or {}).get(cls, cls)
        records.append(record)
    return records


def _penguins() -> list[Record]:
    """The cleaned penguins table, read as text from the package's CSV (the package's own
    loader would import pandas only to hand back the same cells)."""
    data = importlib.resources.files("palmerpenguins").joinpath("data", "penguins.csv")
    columns = {
        "bill_length_mm": "bill length",
        "bill_depth_mm": "bill depth",
        "flipper_length_mm": "flipper",
        "body_mass_g": "mass",
    }
    with data.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{columns.get(k, k): _number(v) for k, v in row.items()} for row in rows]


def _number(cell: str) -> str | float:
    """A CSV cell as a number where it is one, so it is rounded like the other tables'."""
    try:
        return float(cell)
    except ValueError:
        return cell


# table -> (the package it ships in, its reader, about how many rows: for the progress bar)
TABLES: dict[str, tuple[str, Callable[[], list[Record]], int]] = {
    "iris": ("scikit-learn", lambda: _sklearn("load_iris", "species"), 150),
    "wine": (
        "scikit-learn",
        # The cultivars are unnamed in the data ("class_0"); letters keep the labels short.
        lambda: _sklearn("load_wine", "cultivar", {f"class_{i}": "ABC"[i] for i in range(3)}),
        178,
    ),
    "breast_cancer": ("scikit-learn", lambda: _sklearn("load_breast_cancer", "diagnosis"), 569),
    "penguins": ("palmerpenguins", _penguins, 344),
}


def list_tasks(cache: Path | None = None) -> list[str]:
    """Every task name (the tables are inside installed packages: nothing to download)."""
    return sorted(TASKS)


def load_task(name: str, cache: Path | None = None) -> Task:
    """One table task, e.g. "penguins/species" or "iris/sepal?seed=2"; its rows are shuffled
    by the seed so that each seed holds back different rows for evaluation."""
    base, params = split_params(name, {"seed": 0})
    if base not in TASKS:
        raise ValueError(f"no tabular task {base!r}; known: {', '.join(sorted(TASKS))}")
    spec = TASKS[base]
    package, read, rows = TABLES[spec.table]
    version = f"{package}=={importlib.metadata.version(package)}+format{FORMAT}"
    key = GeneratedKey("tabular", base, params, version)

    def make() -> list[TaskExample]:
        made = examples(read(), spec)
        sampler(key).shuffle(made)
        return made

    return Task(f"tabular:{name}", cached(key, make, rows, cache), spec.instruction)
