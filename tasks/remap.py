"""Label remapping (symbol tuning): a classification task whose labels are replaced by arbitrary
ones, so that it can only be solved by reading the demonstrations.

    label_set(outputs, max_labels)               # the task's labels; () if not a classification
    draw_mapping(rng, labels, pools, flip_prob)  # what each label becomes in one sequence
    first_occurrences(answers)                   # answers that no earlier demonstration predicts
    seeded_mapping(name, labels, kind, seed, pools)  # a held-out task's fixed mapping per seed

Under a fresh mapping nothing tells the model which new label goes with which class until it
has seen one, so the first answer of each label is unpredictable; training leaves it out of
the loss (`first_occurrences`). A remapped example also loses the listed choices that BIG-bench
appends to its input (they name the natural labels), and a remapped task loses its instruction.
"""

from __future__ import annotations

import random
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from manyicl.tasks.task import TaskExample, choice_suffix

POOLS_FILE = Path(__file__).with_name("label_pools.toml")


class Kind(StrEnum):
    """What the labels of a remapped sequence are."""

    FLIPPED = "flipped"  # the natural labels, permuted so that none keeps its class
    WORDS = "words"  # arbitrary words
    LETTERS = "letters"
    NUMBERS = "numbers"


@dataclass(frozen=True)
class LabelPools:
    """Arbitrary labels of each kind."""

    words: tuple[str, ...]
    letters: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()

    @classmethod
    def load(cls, split: str, path: Path = POOLS_FILE) -> LabelPools:
        """`train` (words, letters, numbers 0-99) or `eval` (other words only)."""
        table = tomllib.loads(path.read_text())[split]
        numbers = tuple(str(n) for n in range(100)) if split == "train" else ()
        return cls(tuple(table["words"]), tuple(table.get("letters", ())), numbers)

    def of(self, kind: Kind) -> tuple[str, ...]:
        return {Kind.WORDS: self.words, Kind.LETTERS: self.letters, Kind.NUMBERS: self.numbers}[
            kind
        ]

    @property
    def every_label(self) -> tuple[str, ...]:
        return self.words + self.letters + self.numbers


# How often each arbitrary kind is drawn (when its pool is large enough for the task).
KIND_WEIGHTS = {Kind.WORDS: 0.6, Kind.LETTERS: 0.2, Kind.NUMBERS: 0.2}


def label_set(outputs: Sequence[str], max_labels: int) -> tuple[str, ...]:
    """The task's labels, sorted, when it is a classification task: between 2 and `max_labels`
    distinct outputs, each seen at least twice. Otherwise ()."""
    counts = Counter(outputs)
    if not 2 <= len(counts) <= max_labels or min(counts.values()) < 2:
        return ()
    return tuple(sorted(counts))


def derangement(rng: random.Random, n: int) -> list[int]:
    """A random permutation of range(n) that moves every element (n >= 2)."""
    while True:
        perm = rng.sample(range(n), n)
        if all(i != p for i, p in enumerate(perm)):
            return perm


def mapping(rng: random.Random, labels: Sequence[str], kind: Kind, pools: LabelPools):
    """The label each of `labels` becomes under `kind`, drawn with `rng`."""
    if kind is Kind.FLIPPED:
        return tuple(labels[j] for j in derangement(rng, len(labels)))
    return tuple(rng.sample(pools.of(kind), len(labels)))


def draw_mapping(
    rng: random.Random, labels: Sequence[str], pools: LabelPools, flip_prob: float
) -> tuple[str, ...]:
    """A fresh mapping for one training sequence: flipped with probability `flip_prob`, else
    arbitrary labels of a kind drawn by KIND_WEIGHTS among pools large enough."""
    if rng.random() < flip_prob:
        return mapping(rng, labels, Kind.FLIPPED, pools)
    kinds = [k for k in KIND_WEIGHTS if len(pools.of(k)) >= len(labels)]
    kind = rng.choices(kinds, [KIND_WEIGHTS[k] for k in kinds])[0]
    return mapping(rng, labels, kind, pools)


def first_occurrences(answers: Sequence[str]) -> list[bool]:
    """True where an answer is the first of its label in the sequence."""
    seen: set[str] = set()
    first = []
    for a in answers:
        first.append(a not in seen)
        seen.add(a)
    return first


def strip_choices(ex: TaskExample) -> str:
    """The input without the choice list BIG-bench appended to it (if it did)."""
    suffix = choice_suffix(ex.choices or ())
    return ex.input[: -len(suffix)] if suffix and ex.input.endswith(suffix) else ex.input


def remap_example(ex: TaskExample, labels: Sequence[str], mapped: Sequence[str]) -> TaskExample:
    """The example under `labels[i] -> mapped[i]`; its choices become the whole mapped set."""
    return TaskExample(strip_choices(ex), mapped[labels.index(ex.output)], tuple(mapped))


def seeded_mapping(
    name: str, labels: Sequence[str], kind: Kind, seed: int, pools: LabelPools
) -> tuple[str, ...]:
    """The mapping of an evaluation task: fixed by (task name, kind, seed), so every model is
    scored on the same remapped examples."""
    return mapping(random.Random(f"remap:{name}:{kind}:{seed}"), labels, kind, pools)
