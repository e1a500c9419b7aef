"""Many-shot training sequences: one task's demonstrations packed up to --max-seq-len.

The stream is deterministic: sequence n is the same on every run and every rank, so training
resumes by replaying the (cheap, length-only) plan, and data-parallel ranks split one stream.
Packing plans with token lengths only; ids are assembled just for the sequences a rank uses.
A classification sequence may be remapped (the mixture's `remap_prob`): its plan carries the
labels drawn for it, and its ids are assembled from pre-tokenised pieces (`tokenized.RemapTokens`).
A share `mix_prob` of sequences are task-identification sequences (`mixing.MixedPlan`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from manyicl.finetune.mixing import MixedPlan, draw_mixed, short_inputs
from manyicl.finetune.mixture import Remapping
from manyicl.finetune.tokenized import TokenizedTask
from manyicl.prompting import (
    BlockPadding,
    RenderedPrompt,
    TokenizedExample,
    assemble,
)
from manyicl.tasks.remap import (
    LabelPools,
    draw_mapping,
    first_occurrences,
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
class SequencePlan:
    """Which task and which of its training examples (in order) make one sequence, and for a
    remapped sequence the label each of the task's natural labels becomes."""

    task: int
    examples: tuple[int, ...]
    labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TrainSequence:
    """A rendered sequence and, per demonstration, whether its answer is unpredictable (the
    first of its label under a fresh mapping): such answers carry no loss."""

    prompt: RenderedPrompt
    unpredictable: tuple[bool, ...] = ()


class SequenceStream:
    """An endless, seeded stream of `SequencePlan`s over a weighted mixture of tasks."""

    def __init__(
        self,
        tasks: Sequence[TokenizedTask],
        max_seq_len: int,
        shots: ShotRange,
        seed: int,
        remapping: Remapping | None = None,
    ):
        self.tasks, self.max_seq_len, self.shots, self.seed = tasks, max_seq_len, shots, seed
        self.remapping = remapping or Remapping()
        self.pools = LabelPools.load("train") if self.remapping.relabels else None
        mixing = self.remapping.mix_prob > 0
        self.short = short_inputs(tasks, self.remapping.mix_max_input) if mixing else []
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

    def _draw_labels(self, task: TokenizedTask) -> tuple[str, ...] | None:
        """Fresh labels for this sequence, with probability remap_prob (classification only).
        Draws nothing from the stream's rng otherwise, so streams without remapping are as
        they were."""
        if not (task.remap and task.remap.labels and self.remapping.prob):
            return None
        if self.rng.random() >= self.remapping.prob:
            return None
        return draw_mapping(self.rng, task.remap.labels, self.pools, self.remapping.flip_prob)

    def _want(self) -> int | None:
        return self.rng.randint(self.shots.low, self.shots.high) if self.shots.high else None

    def __next__(self) -> SequencePlan | MixedPlan:
        mix = self.remapping.mix_prob
        if mix and self.rng.random() < mix:  # no draw without mixing: old streams stay as they were
            k = self.rng.randint(2, self.remapping.mix_max_tasks)
            want, limit = self._want(), self.max_seq_len
            return draw_mixed(self.rng, self.tasks, self.short, self.pools, k, want, limit)
        i = self.rng.choices(range(len(self.tasks)), self.weights)[0]
        task = self.tasks[i]
        labels = self._draw_labels(task)
        want = self._want()
        limit = min(want or len(task.train), len(task.train))  # never repeat within a sequence
        length, chosen = len(_header(task, labels)), []
        while len(chosen) < limit:
            j = self._next_example(i)
            n = len(_example(task, j, labels))
            if chosen and length + _filler(task, length) + n > self.max_seq_len:
                break
            chosen.append(j)
            length += n
            self.cursors[i] += 1
        return SequencePlan(i, tuple(chosen), labels)


def _header(task: TokenizedTask, labels: tuple[str, ...] | None) -> tuple[int, ...]:
    return task.header if labels is None else task.remap.header


def _example(task: TokenizedTask, j: int, labels: tuple[str, ...] | None) -> TokenizedExample:
    """Train example j, under the sequence's labels when it is remapped."""
    if labels is None:
        return task.train[j]
    r = task.remap
    return TokenizedExample(r.stems[j], r.answers[labels[r.label_of[j]]])


def _filler(task: TokenizedTask, length: int) -> int:
    """Filler tokens in a sequence whose examples before its last one end at `length`."""
    return task.padding.count(length) if task.padding else 0


def render_sequence(
    header: Sequence[int], examples: Sequence[TokenizedExample], padding: BlockPadding | None
) -> RenderedPrompt:
    """A training sequence as the server renders a request whose query is its last example:
    the format's filler after the header ends the demo block before that example on a block
    boundary. Every example's span is kept."""
    if padding is None or len(examples) < 2:
        return assemble(header, examples)
    block = assemble(header, examples[:-1], padding=padding)
    last = assemble(block.token_ids, examples[-1:])
    spans = block.examples + last.examples
    return RenderedPrompt(last.token_ids, block.header_len, spans, block.pad_len)


def materialise(tasks: Sequence[TokenizedTask], plan: SequencePlan | MixedPlan) -> TrainSequence:
    """The ids and spans of one packed sequence, and which of its answers carry no loss."""
    if isinstance(plan, MixedPlan):
        header, examples, padding = plan.pieces(tasks)
        prompt = render_sequence(header, examples, padding)
        return TrainSequence(prompt, tuple(first_occurrences(plan.labels)))
    task = tasks[plan.task]
    examples = [_example(task, j, plan.labels) for j in plan.examples]
    prompt = render_sequence(_header(task, plan.labels), examples, task.padding)
    if plan.labels is None:
        return TrainSequence(prompt)
    r = task.remap
    mapped = [plan.labels[r.label_of[j]] for j in plan.examples]
    return TrainSequence(prompt, tuple(first_occurrences(mapped)))


def eval_sequences(
    tasks: Sequence[TokenizedTask], max_seq_len: int, shots: ShotRange, limit: int
) -> list[TrainSequence]:
    """Fixed eval sequences from each task's held-back examples, round-robin over tasks."""
    per_task = []
    for task in tasks:
        seqs, current, length = [], [], len(task.header)
        cap = shots.high or len(task.eval)
        for ex in task.eval:
            full = length + _filler(task, length) + len(ex) > max_seq_len
            if current and (full or len(current) == cap):
                seqs.append(TrainSequence(render_sequence(task.header, current, task.padding)))
                current, length = [], len(task.header)
            current.append(ex)
            length += len(ex)
        if current:
            seqs.append(TrainSequence(render_sequence(task.header, current, task.padding)))
        per_task.append(seqs)
    out: list[TrainSequence] = []
    for rnd in range(max((len(s) for s in per_task), default=0)):
        out += [s[rnd] for s in per_task if rnd < len(s)]
    return out[:limit]


def plan_length(tasks: Sequence[TokenizedTask], plan: SequencePlan | MixedPlan) -> int:
    if isinstance(plan, MixedPlan):
        header, examples, padding = plan.pieces(tasks)
    else:
        task = tasks[plan.task]
        header, padding = _header(task, plan.labels), task.padding
        examples = [_example(task, j, plan.labels) for j in plan.examples]
    lengths = [len(e) for e in examples]
    before_last = len(header) + sum(lengths[:-1])
    filler = padding.count(before_last) if padding and len(lengths) > 1 else 0
    return before_last + filler + sum(lengths[-1:])


class StepPlanner:
    """Cuts the stream into optimizer steps: per rank, `grad_accum` micro-batches of at most
    `micro_batch_tokens` padded tokens each. Every rank runs the same planner and takes its
    own share, so no rank needs another's state."""

    def __init__(
        self, stream: SequenceStream, world: int, grad_accum: int, micro_batch_tokens: int
    ):
        self.stream, self.world, self.grad_accum = stream, world, grad_accum
        self.budget = micro_batch_tokens
        self.pending: SequencePlan | MixedPlan | None = None

    def _micro_batch(self) -> list[SequencePlan | MixedPlan]:
        batch: list[SequencePlan | MixedPlan] = []
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

    def next_step(self) -> list[list[list[SequencePlan | MixedPlan]]]:
        """[rank][micro-batch] -> the sequence plans of that micro-batch."""
        return [[self._micro_batch() for _ in range(self.grad_accum)] for _ in range(self.world)]
