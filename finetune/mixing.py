"""Task-identification sequences: the inputs of several training tasks interleaved in one
many-shot sequence, each answered by an arbitrary label drawn for its task in this sequence.

    plan = draw_mixed(rng, tasks, sources, pools, want=None, max_seq_len=2048)
    header, examples, padding = plan.pieces(tasks)

Why: remapped classification sequences of real tasks teach a small model little that transfers
(docs/RESULTS.md, attempts 2-4): most of those tasks are beyond it, so their gradient mostly
teaches the label set's share of probability. A task-identification sequence is always
solvable by reading the demonstrations (inputs of one task look alike, and the label of each
task is known only from the demonstrations), needs the skill many-shot classification needs
(find the demonstrations like the query, copy their label), and is a new task every time: the
tasks, their number and their labels are drawn per sequence (Chan et al. 2022, Kirsch et al.
2022: in-context learning appears with bursty sequences, many classes and labels whose meaning
changes). As under remapping, the first answer of each label is unpredictable and carries no
loss.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from manyicl.finetune.tokenized import TokenizedTask
from manyicl.prompting import BlockPadding, TokenizedExample
from manyicl.tasks.remap import LabelPools, draw_mapping

MIN_INPUTS = 16  # a source task needs this many short inputs


@dataclass(frozen=True)
class MixedPlan:
    """Which training examples (of which tasks) make one task-identification sequence."""

    picks: tuple[tuple[int, int], ...]  # (task, train example) per demonstration, in order
    labels: tuple[str, ...]  # per demonstration: the label its task has in this sequence

    def pieces(
        self, tasks: Sequence[TokenizedTask]
    ) -> tuple[tuple[int, ...], list[TokenizedExample], BlockPadding | None]:
        """(header without instruction, the demonstrations, the format's filler)."""
        first = tasks[self.picks[0][0]]
        examples = [
            TokenizedExample(tasks[t].remap.stems[j], first.remap.answers[label])
            for (t, j), label in zip(self.picks, self.labels, strict=True)
        ]
        return first.remap.header, examples, first.padding


def family(name: str) -> str:
    """'bigbench:arithmetic' for 'bigbench:arithmetic/2_digit_addition': subtasks of one source
    may share their inputs, so a sequence never mixes two of them."""
    return name.split("/")[0]


def short_inputs(tasks: Sequence[TokenizedTask], max_tokens: int) -> list[tuple[int, ...]]:
    """Per task, its train examples whose input fits `max_tokens` (() for a task that has fewer
    than MIN_INPUTS of them, or no remap pieces)."""
    out = []
    for t in tasks:
        stems = t.remap.stems if t.remap else ()
        short = tuple(j for j, s in enumerate(stems) if len(s) <= max_tokens)
        out.append(short if len(short) >= MIN_INPUTS else ())
    return out


def draw_sources(
    rng: random.Random, tasks: Sequence[TokenizedTask], short: Sequence[tuple[int, ...]], k: int
) -> list[int]:
    """`k` tasks of distinct families, drawn by mixture weight among those with short inputs
    (fewer if fewer families qualify)."""
    candidates = [i for i, s in enumerate(short) if s]
    chosen: list[int] = []
    families: set[str] = set()
    while len(chosen) < k:
        left = [i for i in candidates if family(tasks[i].name) not in families]
        if not left:
            break
        i = rng.choices(left, [tasks[i].weight for i in left])[0]
        chosen.append(i)
        families.add(family(tasks[i].name))
    return chosen


def draw_mixed(
    rng: random.Random,
    tasks: Sequence[TokenizedTask],
    short: Sequence[tuple[int, ...]],
    pools: LabelPools,
    k: int,
    want: int | None,
    max_seq_len: int,
) -> MixedPlan:
    """One sequence of `k` tasks' inputs, a task drawn uniformly per demonstration, packed to
    `max_seq_len` (or `want` demonstrations); no input repeats within the sequence."""
    sources = draw_sources(rng, tasks, short, k)
    labels = draw_mapping(rng, [str(i) for i in range(len(sources))], pools, flip_prob=0.0)
    orders = [rng.sample(short[t], len(short[t])) for t in sources]
    first = tasks[sources[0]]
    length, picks, answers = len(first.remap.header), [], []
    while want is None or len(picks) < want:
        s = rng.randrange(len(sources))
        if not orders[s]:
            break
        t, j = sources[s], orders[s].pop()
        n = len(tasks[t].remap.stems[j]) + len(first.remap.answers[labels[s]])
        filler = first.padding.count(length) if first.padding else 0
        if picks and length + filler + n > max_seq_len:
            break
        picks.append((t, j))
        answers.append(labels[s])
        length += n
    return MixedPlan(tuple(picks), tuple(answers))
