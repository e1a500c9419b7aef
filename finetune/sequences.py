"""Many-shot training sequences: one task's demonstrations packed up to --max-seq-len.

The stream is deterministic: sequence n is the same on every run and every rank, so training
resumes by replaying the (cheap, length-only) plan, and data-parallel ranks split one stream.
Packing plans with token lengths only; ids are assembled just for the sequences a rank uses.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from manyicl.finetune.mixture import MixtureTask
from manyicl.prompting import (
    PromptFormat,
    RenderedPrompt,
    TokenizedExample,
    Tokenizer,
    assemble,
    tokenize_example,
    tokenize_header,
)


@dataclass(frozen=True)
class ShotRange:
    """Demonstrations per sequence: `max` (as many as fit), `K`, or `A-B` (uniform per sequence)."""

    low: int
    high: int | None  # None: as many as fit

    @classmethod
    def parse(cls, text: str) -> ShotRange:
        if text == "max":
            return cls(1, None)
        if m := re.fullmatch(r"(\d+)(?:-(\d+))?", text):
            low, high = int(m[1]), int(m[2] or m[1])
            if 1 <= low <= high:
                return cls(low, high)
        raise ValueError(f"--shots must be 'max', K or A-B with 1 <= A <= B, got {text!r}")


@dataclass(frozen=True)
class TokenizedTask:
    name: str
    weight: float
    header: tuple[int, ...]
    train: tuple[TokenizedExample, ...]
    eval: tuple[TokenizedExample, ...]
    dropped: int  # examples longer than a whole sequence


@dataclass(frozen=True)
class SequencePlan:
    """Which task and which of its training examples (in order) make one sequence."""

    task: int
    examples: tuple[int, ...]


def tokenize_tasks(
    tasks: Sequence[MixtureTask], fmt: PromptFormat, tok: Tokenizer, max_seq_len: int
) -> list[TokenizedTask]:
    """Tokenise every example once; drop those that cannot fit a sequence on their own."""
    out = []
    for mt in tasks:
        header = tuple(tokenize_header(fmt, tok, mt.task.instruction))
        room = max_seq_len - len(header)

        def fits(examples, room=room):
            toks = [tokenize_example(fmt, tok, ex.as_demo()) for ex in examples]
            return tuple(t for t in toks if len(t) <= room), sum(len(t) > room for t in toks)

        train, dropped = fits(mt.train)
        evals, _ = fits(mt.eval)
        if not train:
            raise ValueError(f"task {mt.task.name!r}: no example fits in {max_seq_len} tokens")
        out.append(TokenizedTask(mt.task.name, mt.weight, header, train, evals, dropped))
    return out


class SequenceStream:
    """An endless, seeded stream of `SequencePlan`s over a weighted mixture of tasks."""

    def __init__(
        self, tasks: Sequence[TokenizedTask], max_seq_len: int, shots: ShotRange, seed: int
    ):
        self.tasks, self.max_seq_len, self.shots, self.seed = tasks, max_seq_len, shots, seed
        self.rng = random.Random(seed)
        self.weights = [t.weight for t in tasks]
        self.cursors = [0] * len(tasks)
        self.epochs = [0] * len(tasks)
        self.orders = [self._order(i) for i in range(len(tasks))]

    def _order(self, i: int) -> list[int]:
        order = list(range(len(self.tasks[i].train)))
        random.Random(f"{self.seed}:{self.tasks[i].name}:{self.epochs[i]}").shuffle(order)
        return order

    def _next_example(self, i: int) -> int:
        if self.cursors[i] == len(self.orders[i]):  # epoch over: a fresh shuffle
            self.epochs[i] += 1
            self.orders[i], self.cursors[i] = self._order(i), 0
        return self.orders[i][self.cursors[i]]

    def __iter__(self):
        return self

    def __next__(self) -> SequencePlan:
        i = self.rng.choices(range(len(self.tasks)), self.weights)[0]
        task = self.tasks[i]
        want = self.rng.randint(self.shots.low, self.shots.high) if self.shots.high else None
        limit = min(want or len(task.train), len(task.train))  # never repeat within a sequence
        length, chosen = len(task.header), []
        while len(chosen) < limit:
            j = self._next_example(i)
            if chosen and length + len(task.train[j]) > self.max_seq_len:
                break
            chosen.append(j)
            length += len(task.train[j])
            self.cursors[i] += 1
        return SequencePlan(i, tuple(chosen))


def build(task: TokenizedTask, examples: Sequence[TokenizedExample]) -> RenderedPrompt:
    """The ids and spans of one packed sequence."""
    return assemble(task.header, examples)


def materialise(tasks: Sequence[TokenizedTask], plan: SequencePlan) -> RenderedPrompt:
    task = tasks[plan.task]
    return build(task, [task.train[j] for j in plan.examples])


def eval_sequences(
    tasks: Sequence[TokenizedTask], max_seq_len: int, shots: ShotRange, limit: int
) -> list[RenderedPrompt]:
    """Fixed eval sequences from each task's held-back examples, round-robin over tasks."""
    per_task = []
    for task in tasks:
        seqs, current, length = [], [], len(task.header)
        cap = shots.high or len(task.eval)
        for ex in task.eval:
            if current and (length + len(ex) > max_seq_len or len(current) == cap):
                seqs.append(build(task, current))
                current, length = [], len(task.header)
            current.append(ex)
            length += len(ex)
        if current:
            seqs.append(build(task, current))
        per_task.append(seqs)
    out: list[RenderedPrompt] = []
    for rnd in range(max((len(s) for s in per_task), default=0)):
        out += [s[rnd] for s in per_task if rnd < len(s)]
    return out[:limit]


def plan_length(tasks: Sequence[TokenizedTask], plan: SequencePlan) -> int:
    task = tasks[plan.task]
    return len(task.header) + sum(len(task.train[j]) for j in plan.examples)


class StepPlanner:
    """Cuts the stream into optimizer steps: per rank, `grad_accum` micro-batches of at most
    `micro_batch_tokens` padded tokens each. Every rank runs the same planner and takes its
    own share, so no rank needs another's state."""

    def __init__(
        self, stream: SequenceStream, world: int, grad_accum: int, micro_batch_tokens: int
    ):
        self.stream, self.world, self.grad_accum = stream, world, grad_accum
        self.budget = micro_batch_tokens
        self.pending: SequencePlan | None = None

    def _micro_batch(self) -> list[SequencePlan]:
        batch: list[SequencePlan] = []
        longest = 0
        while True:
            plan = self.pending or next(self.stream)
            self.pending = None
            n = plan_length(self.stream.tasks, plan)
            if batch and max(longest, n) * (len(batch) + 1) > self.budget:
                self.pending = plan
                return batch
            batch.append(plan)
            longest = max(longest, n)

    def next_step(self) -> list[list[list[SequencePlan]]]:
        """[rank][micro-batch] -> the sequence plans of that micro-batch."""
        return [[self._micro_batch() for _ in range(self.grad_accum)] for _ in range(self.world)]
