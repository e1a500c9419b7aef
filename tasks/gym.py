"""reasoning-gym's seeded generators as bare input -> output tasks, written once to the cache.

    load_task("basic_arithmetic/easy")             # "3 + 4 * 2" -> "11"
    load_task("arc_1d/gravity_left?seed=1&size=200")

A reasoning-gym question wraps its item in a paragraph of instructions that a many-shot prompt
would repeat per demonstration; a task here keeps the item alone, rebuilt from its metadata or
cut out of the question by a regex that must match (the extractors of `gym_extract`). A
generator mixing rules (ascending or descending) is split into one task per rule, which its
demonstrations can teach. The held-out induction families `arc_1d/<rule>` and
`list_functions/<rule>` call the package's per-rule functions; `acre` keeps each item's own
observations, from which its answer follows.

A task is a pure function of (name, seed, size, package version): see `_isolated` and
`_SortedSet` for the global state and hash order some generators depend on. A repeated input
is skipped (no eval item is also a demonstration); outputs over MAX_OUTPUT are dropped.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.metadata
import io
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import reasoning_gym
from reasoning_gym.arc.arc_1d_tasks import ARC_1D_TASKS
from reasoning_gym.induction.list_functions import generators as list_generators

from manyicl.tasks.generated import GeneratedKey, cached, sampler, split_params
from manyicl.tasks.gym_extract import (
    ACRE,
    CUBE,
    SYLLOGISM,
    Extract,
    Pair,
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
from manyicl.tasks.task import Task, TaskExample

# The distribution's version: reasoning_gym.__version__ still says 0.1.19 in 0.1.25.
VERSION = importlib.metadata.version("reasoning-gym")
DEFAULTS = {"seed": 0, "size": 600}
MAX_SIZE = 2000
MAX_OUTPUT = 48  # characters; longer answers are dropped (outputs are to be short)
ARC_SIZES = (10, 20)  # grid lengths: 20 cells print as 39 characters

Make = Callable[[random.Random, int], Iterable[Pair]]  # (rng, size) -> candidate pairs

# list_functions' generate_<i>, by what each computes.
LIST_RULES = (
    "identity", "third_element", "reverse", "sum_unique_below_30", "count_fives",
    "followed_by_even", "add_index", "index_by_last", "length", "sum", "sort_ascending",
    "sort_descending", "increment_ends", "is_ascending", "divisible_by_ten", "double_last",
    "two_x_minus_four",
)  # fmt: skip


class _SortedSet(frozenset):
    """A set that iterates in sorted order, also after `-`: some generators draw with
    `rng.choice(list(letters))` from a set of strings, whose order depends on the hash seed."""

    def __iter__(self):
        return iter(sorted(frozenset.__iter__(self)))

    def __sub__(self, other):
        return _SortedSet(frozenset.__sub__(self, other))


def _dataset(generator: str, extract: Extract, tries: int = 4, **config) -> Make:
    """Items of one reasoning-gym generator (seeded from the task's rng) through `extract`;
    `tries` items per wanted example leave room for filters and duplicates."""

    def make(rng: random.Random, size: int) -> Iterator[Pair]:
        seed = rng.randrange(2**31)
        data = reasoning_gym.create_dataset(generator, seed=seed, size=tries * size, **config)
        for attr, value in vars(data).items():
            if isinstance(value, set | frozenset):
                setattr(data, attr, _SortedSet(value))
        for idx in range(len(data)):
            pair = extract(data[idx])
            if pair is not None:
                yield pair

    return make


def _arc_rule(rule: str) -> Make:
    """One ARC-1D rule's examples on grids of ARC_SIZES cells (the rule may decline a draw)."""
    func, kwargs = ARC_1D_TASKS[rule]

    def make(rng: random.Random, size: int) -> Iterator[Pair]:
        for _ in range(50 * size):
            example = func(rng, rng.randint(*ARC_SIZES), **kwargs)
            if example is not None:
                yield " ".join(map(str, example["input"])), " ".join(map(str, example["output"]))

    return make


def _list_rule(index: int) -> Make:
    """One list_functions rule: each call of its generator gives up to five input -> output."""
    generate = getattr(list_generators, f"generate_{index}")

    def make(rng: random.Random, size: int) -> Iterator[Pair]:
        for _ in range(4 * size):
            yield from generate(rng).items()

    return make


def _split(generator: str, name: str, values: tuple[str, ...], extract: Extract, **config):
    """One task per value of the metadata field `name`: rules a generator mixes in one dataset."""
    return {
        f"{generator}/{v}": _dataset(generator, when(name, v, extract), **config) for v in values
    }


ASC_DESC = ("ascending", "descending")
_EXPR = field("expression")
_TERMS = {"min_terms": 2, "max_terms": 3}
# Generators whose items have a robust bare form and a short answer: the training side.
TRAINING: dict[str, Make] = {
    "basic_arithmetic/easy": _dataset("basic_arithmetic", _EXPR, max_digits=2, **_TERMS),
    "basic_arithmetic/hard": _dataset("basic_arithmetic", _EXPR),
    "chain_sum/1digit": _dataset("chain_sum", _EXPR, max_digits=1, **_TERMS),
    "chain_sum/hard": _dataset("chain_sum", _EXPR),
    "products/1digit": _dataset("products", _EXPR, max_digits=1),
    "products/2digit": _dataset("products", _EXPR, min_digits=2, max_digits=2),
    "decimal_chain_sum": _dataset("decimal_chain_sum", _EXPR, max_terms=3),
    "complex_arithmetic": _dataset("complex_arithmetic", regex(r": (\(.+\))$")),
    "simple_equations": _dataset("simple_equations", field("equation")),
    "bitwise_arithmetic": _dataset("bitwise_arithmetic", field("problem"), difficulty=1),
    "base_conversion": _dataset(
        "base_conversion",
        fill("{} (base {}) to base {}", "source_repr", "source_base", "target_base"),
    ),
    "count_bits": _dataset("count_bits", field("number"), max_n=4095),
    "gcd": _dataset("gcd", lists("numbers")),
    "lcm": _dataset("lcm", lists("numbers")),
    "prime_factorization": _dataset("prime_factorization", field("number")),
    "fraction_simplification": _dataset(
        "fraction_simplification", fill("{}/{}", "numerator", "denominator"), styles=("plain",)
    ),
    "number_sequence": _dataset("number_sequence", regex(r"^(.+), \?$")),
    "simple_geometry": _dataset("simple_geometry", polygon),
    "leg_counting": _dataset("leg_counting", regex(r"if you have (.+)\?"), max_animals=5),
    "letter_counting": _dataset("letter_counting", letter_count, min_words=3, max_words=8),
    "spell_backward": _dataset("spell_backward", field("word")),
    # Its sentences come from one short story: few enough that all of 1..10 words are used.
    **{
        f"caesar_cipher/rot{n}": _dataset(
            "caesar_cipher", field("cipher_text"), min_words=1, max_words=10, min_rotation=n,
            max_rotation=n,
        )
        for n in (1, 3, 13)
    },
    **_split(
        "word_sorting", "direction", ASC_DESC, lists("transformed_words", "sorted_words"),
        max_words=5, max_word_length=8,
    ),
    **_split(
        "number_sorting", "direction", ASC_DESC, lists("original_numbers", "sorted_numbers"),
        max_numbers=6, max_decimals=1,
    ),
    **_split(
        "number_filtering", "operation",
        ("keep_larger", "keep_smaller", "remove_larger", "remove_smaller"), filtering,
        tries=8, max_numbers=6, max_decimals=1,
    ),
    **_split(
        "number_format", "size", ("largest", "smallest"),
        lists("formatted_candidates", sep=" "), max_num_candidates=3,
    ),
    "word_sequence_reversal": _dataset("word_sequence_reversal", lists("words"), max_words=5),
    "letter_jumble": _dataset("letter_jumble", lists("scrambled_words", sep=" "), max_words=5),
    "isomorphic_strings": _dataset("isomorphic_strings", lists("words", sep=" ")),
    "ransom_note": _dataset("ransom_note", fill("{} | {}", "ransom_note", "magazine")),
    "binary_alternation": _dataset("binary_alternation", field("string")),
    "string_insertion": _dataset("string_insertion", field("string")),
    "string_splitting": _dataset(
        "string_splitting", lists("initial_machines", sep=" "), max_initial_machines=9
    ),
    "string_synthesis": _dataset(
        "string_synthesis", lists("initial_blocks", sep=" "), max_initial_blocks=9
    ),
    "ab": _dataset("ab", regex(r"following program:\n\n(.+?)\n\nReturn"), length=8),
    "spiral_matrix": _dataset("spiral_matrix", matrix, max_n=4),
    "syllogism": _dataset("syllogism", SYLLOGISM),
    "family_relationships": _dataset("family_relationships", family),
    "aiw": _dataset("aiw", lambda it: (it["question"], it["answer"])),
    "color_cube_rotation": _dataset("color_cube_rotation", CUBE),
}  # fmt: skip


@functools.cache
def _specs() -> dict[str, Make]:
    """Every task by name: the training generators, then the held-out induction families."""
    specs = dict(TRAINING)
    specs |= {f"arc_1d/{rule}": _arc_rule(rule) for rule in ARC_1D_TASKS}
    specs |= {f"list_functions/{rule}": _list_rule(i) for i, rule in enumerate(LIST_RULES)}
    specs["acre"] = _dataset("acre", ACRE, tries=2)
    return specs


def bare_examples(pairs: Iterable[Pair], size: int) -> Iterator[TaskExample]:
    """Up to `size` examples of `pairs`: stripped, non-empty, short output, each input once."""
    seen: set[str] = set()
    for raw_input, raw_output in pairs:
        text, output = str(raw_input).strip(), str(raw_output).strip()
        if text and output and len(output) <= MAX_OUTPUT and text not in seen:
            seen.add(text)
            yield TaskExample(text, output)
            if len(seen) >= size:
                return


def _isolated(key: GeneratedKey, examples: Iterable[TaskExample]) -> Iterator[TaskExample]:
    """`examples` with the global `random` seeded from `key` (restored after) and stdout
    swallowed: some generators draw from the global module or print."""
    state = random.getstate()
    random.seed(key.digest)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield from examples
    finally:
        random.setstate(state)


def list_tasks(cache: Path | None = None) -> list[str]:
    """Every task name, without parameters (any takes `?seed=N&size=M`)."""
    return list(_specs())


def load_task(name: str, cache: Path | None = None) -> Task:
    """The task `name` ("<generator>[/<variant>][?seed=N&size=M]"), generated on first use."""
    base, params = split_params(name, DEFAULTS)
    make = _specs().get(base)
    if make is None:
        near = difflib.get_close_matches(base, _specs(), n=5) or list(_specs())[:5]
        raise ValueError(f"no reasoning-gym task {base!r}; e.g. {', '.join(near)}")
    size = params["size"]
    if not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
        raise ValueError(f"{name!r}: size must be an integer in 1..{MAX_SIZE}")
    key = GeneratedKey("gym", base, params, VERSION)

    def generate() -> Iterator[TaskExample]:
        yield from _isolated(key, bare_examples(make(sampler(key), size), size))

    return Task(f"gym:{name}", cached(key, generate, size, cache))
