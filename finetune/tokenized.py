"""Training tasks tokenised once: every example's ids, the header, the format's filler, and
the pieces that sequences under arbitrary labels are assembled from: for classification tasks
under remapping, and for every task when task-identification sequences are on."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from manyicl.finetune.mixture import MixtureTask, Remapping
from manyicl.prompting import (
    BlockPadding,
    PromptFormat,
    TokenizedExample,
    Tokenizer,
    block_padding,
    fill,
    tokenize_example,
    tokenize_header,
)
from manyicl.prompting.render import leading_literal
from manyicl.tasks.remap import LabelPools, label_set, strip_choices
from manyicl.tasks.task import TaskExample


@dataclass(frozen=True)
class RemapTokens:
    """A task's pieces for sequences under arbitrary labels, tokenised once."""

    labels: tuple[str, ...]  # a classification task's natural labels; () for any other task
    header: tuple[int, ...]  # without the instruction (it names the natural labels)
    stems: tuple[tuple[int, ...], ...]  # per train example: its context without listed choices
    label_of: tuple[int, ...]  # per train example: its label's index in `labels` (classification)
    answers: Mapping[str, tuple[int, ...]]  # label -> answer ids; one table for every task


@dataclass(frozen=True)
class TokenizedTask:
    name: str
    weight: float
    header: tuple[int, ...]
    train: tuple[TokenizedExample, ...]
    eval: tuple[TokenizedExample, ...]
    dropped: int  # examples longer than a whole sequence
    remap: RemapTokens | None = None  # see tokenize_tasks
    padding: BlockPadding | None = None  # the format's filler, as the server renders it


def tokenize_tasks(
    tasks: Sequence[MixtureTask],
    fmt: PromptFormat,
    tok: Tokenizer,
    max_seq_len: int,
    remapping: Remapping | None = None,
) -> list[TokenizedTask]:
    """Tokenise every example once; drop those that cannot fit a sequence on their own. With
    remapping on, classification tasks also get the pieces of their remapped sequences; with
    task-identification sequences on, every task gets them."""
    remap_on = remapping is not None and remapping.relabels
    answers: dict[str, tuple[int, ...]] = {}
    if remap_on:
        for label in LabelPools.load("train").every_label:
            answers[label] = _answer_ids(fmt, tok, label)
    out, too_long = [], []
    for mt in tasks:
        header = tuple(tokenize_header(fmt, tok, mt.task.instruction))
        room = max_seq_len - len(header)
        pairs = [(ex, tokenize_example(fmt, tok, ex.as_demo())) for ex in mt.train]
        kept = [(ex, t) for ex, t in pairs if len(t) <= room]
        evals = [tokenize_example(fmt, tok, ex.as_demo()) for ex in mt.eval]
        evals = tuple(t for t in evals if len(t) <= room)
        if not kept:
            too_long.append(mt.task.name)
            continue
        examples = [ex for ex, _ in kept]
        remap = _remap_tokens(examples, fmt, tok, remapping, answers) if remap_on else None
        train = tuple(t for _, t in kept)
        dropped = len(pairs) - len(kept)
        padding = block_padding(fmt, tok)
        out.append(
            TokenizedTask(mt.task.name, mt.weight, header, train, evals, dropped, remap, padding)
        )
    _check_fit(too_long, len(tasks), max_seq_len)
    return out


def _check_fit(too_long: list[str], n_tasks: int, max_seq_len: int) -> None:
    """A task none of whose examples fits one sequence is left out with one warning; a
    mixture where that is every task cannot train."""
    if not too_long:
        return
    text = f"{len(too_long)} of {n_tasks} tasks have no example that fits in {max_seq_len} tokens"
    if len(too_long) == n_tasks:
        raise ValueError(f"{text}: {', '.join(too_long)}")
    warnings.warn(f"{text}; left out: {', '.join(too_long)}", stacklevel=3)


def _answer_ids(fmt: PromptFormat, tok: Tokenizer, label: str) -> tuple[int, ...]:
    return tuple(fill(fmt.output, tok, leading_literal(fmt.input), output=label))


def _remap_tokens(
    kept: Sequence[TaskExample],
    fmt: PromptFormat,
    tok: Tokenizer,
    remapping: Remapping,
    answers: dict[str, tuple[int, ...]],
) -> RemapTokens | None:
    """The remapping pieces of a classification task; of any other task only when
    task-identification sequences are on (else None)."""
    labels = label_set([ex.output for ex in kept], remapping.max_labels)
    if not labels and not remapping.mix_prob:
        return None
    for label in labels:
        answers.setdefault(label, _answer_ids(fmt, tok, label))
    return RemapTokens(
        labels=labels,
        header=tuple(tokenize_header(fmt, tok, None)),
        stems=tuple(tuple(fill(fmt.input, tok, input=strip_choices(ex))) for ex in kept),
        label_of=tuple(labels.index(ex.output) for ex in kept) if labels else (),
        answers=answers,
    )
