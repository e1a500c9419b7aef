"""Workloads: synthetic demo sets of a target token size, queries, and the request order.

Sets are generated from a seed (a word-classification task per set, its own vocabulary and
labels), so every variant of a benchmark sends exactly the same tokens.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from enum import StrEnum

from manyicl.prompting import (
    DemoSet,
    Example,
    PromptFormat,
    Tokenizer,
    render,
    tokenize_example,
    tokenize_header,
)

_WORDS = tuple(
    "river stone apple cloud paper engine violet market silver garden window candle "
    "harbor planet copper meadow signal forest lemon bridge rocket velvet island "
    "castle thunder pencil mirror orchard falcon lantern spiral glacier saddle "
    "compass marble puzzle ribbon canyon tablet cactus beacon anchor walnut quartz "
    "prairie ".split()
)


class Order(StrEnum):
    ROUND_ROBIN = "round-robin"  # set 0, set 1, ..., set 0, set 1, ...
    RANDOM = "random"  # a seeded shuffle
    BURSTY = "bursty"  # every query of set 0, then of set 1, ...


class Mode(StrEnum):
    DEMO_SET = "demo-set"  # register each set once; requests name it
    INLINE = "inline"  # each request carries its demonstrations
    TEXT = "text"  # each request is the full rendered prompt string (any OpenAI server)


@dataclass(frozen=True)
class Workload:
    name: str
    num_sets: int = 4
    block_tokens: int = 2048  # tokens per demo block (header + demonstrations), at least
    queries_per_set: int = 8
    order: Order = Order.ROUND_ROBIN
    concurrency: int = 1
    rate: float | None = None  # requests/s (Poisson arrivals) instead of fixed concurrency
    max_tokens: int = 8
    seed: int = 0
    warm: bool = False  # send each set's first query once before the clock (steady state)

    @property
    def num_requests(self) -> int:
        return self.num_sets * self.queries_per_set


# Each workload has its own seed, so its demo sets share no tokens with another workload's:
# several workloads can run on one server without warming each other's cache.
WORKLOADS = {
    "fit-2k-c1": Workload("fit-2k-c1", 4, 2048, 6, concurrency=1, seed=1),
    "fit-2k-c8": Workload("fit-2k-c8", 4, 2048, 8, concurrency=8, seed=2),
    "fit-6k": Workload("fit-6k", 2, 6144, 6, concurrency=2, seed=3),
    # Demo blocks that together exceed a shrunken KV cache (16 x 2K against 20K tokens), the
    # sets' requests shuffled, 32 clients: enough outstanding requests for a scheduler to
    # group them.
    "pressure": Workload("pressure", 16, 2048, 3, Order.RANDOM, concurrency=32, seed=4),
    # The reference case of issue 7: 80 sets round-robin, 8 closed-loop clients (the server
    # never sees two requests of one set at once; ~12 min per variant on a 2-core CPU).
    "pressure-80": Workload("pressure-80", 80, 2300, 3, Order.ROUND_ROBIN, concurrency=8, seed=5),
    # Steady state: every set's block is prefilled before the clock starts (its first query,
    # untimed), then many queries per set: what a long-running server mostly serves.
    "steady-2k-c1": Workload("steady-2k-c1", 2, 2048, 12, concurrency=1, seed=6, warm=True),
    "steady-2k-c8": Workload("steady-2k-c8", 2, 2048, 24, concurrency=8, seed=7, warm=True),
    "steady-2k-c32": Workload("steady-2k-c32", 2, 2048, 48, concurrency=32, seed=8, warm=True),
    "steady-8k-c1": Workload("steady-8k-c1", 1, 7800, 8, concurrency=1, seed=9, warm=True),
    "steady-8k-c8": Workload("steady-8k-c8", 1, 7800, 16, concurrency=8, seed=10, warm=True),
}


def get_workload(name: str, **overrides) -> Workload:
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; choose from {sorted(WORKLOADS)}")
    return replace(WORKLOADS[name], **{k: v for k, v in overrides.items() if v is not None})


def make_demo_sets(w: Workload, fmt: PromptFormat, tok: Tokenizer) -> list[DemoSet]:
    """`num_sets` sets, each with just enough demonstrations to reach `block_tokens`."""
    sets = []
    for k in range(w.num_sets):
        rng = random.Random(f"{w.seed}:set:{k}")
        vocab = rng.sample(_WORDS, 16)
        labels = rng.sample(["north", "south", "east", "west", "up", "down"], 3)
        rule = {word: rng.choice(labels) for word in vocab}
        instruction = f"Task {k}: label the sentence by its first word."
        examples, size = [], len(tokenize_header(fmt, tok, instruction))
        while size < w.block_tokens:
            words = rng.choices(vocab, k=rng.randint(5, 10))
            ex = Example(input=" ".join(words), output=rule[words[0]])
            examples.append(ex)
            size += len(tokenize_example(fmt, tok, ex))
        sets.append(DemoSet(examples=examples, instruction=instruction, name=f"set-{k}"))
    return sets


def make_queries(w: Workload, sets: list[DemoSet]) -> list[tuple[int, int, str]]:
    """(set index, query index, query text) in the workload's order."""
    per_set = []
    for k, ds in enumerate(sets):
        rng = random.Random(f"{w.seed}:queries:{k}")
        vocab = sorted({word for ex in ds.examples for word in ex.input.split()})
        per_set.append(
            [(k, q, " ".join(rng.choices(vocab, k=7))) for q in range(w.queries_per_set)]
        )
    if w.order is Order.BURSTY:
        return [item for queries in per_set for item in queries]
    interleaved = [per_set[k][q] for q in range(w.queries_per_set) for k in range(len(sets))]
    if w.order is Order.RANDOM:
        random.Random(f"{w.seed}:order").shuffle(interleaved)
    return interleaved


def payload(
    mode: Mode,
    model: str,
    ds: DemoSet,
    set_id: str | None,
    query: str,
    max_tokens: int,
    fmt: PromptFormat,
    tok: Tokenizer,
) -> dict:
    """The request body for one query in one mode (greedy, streamed, with usage)."""
    body = {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if mode is Mode.DEMO_SET:
        return {**body, "prompt": query, "demo_set": set_id}
    if mode is Mode.INLINE:
        demos = [e.model_dump() for e in ds.examples]
        return {**body, "prompt": query, "demonstrations": demos, "instruction": ds.instruction}
    text = tok.decode(render(fmt, tok, ds, query).token_ids)
    return {**body, "prompt": text, "stop": list(fmt.stop)}
