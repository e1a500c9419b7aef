"""Training objectives and their loss masks: pure functions over token ids and answer spans.

A training sequence is one task's demonstrations rendered by `manyicl.prompting`:
    header (ctx_1 ans_1) (ctx_2 ans_2) ... (ctx_K ans_K)
Which answers are supervised is the objective's choice; everything else gets IGNORE. An answer
flagged unpredictable (the first of its label in a label-remapped sequence: nothing before it
says which class the new label stands for) is never supervised, whatever the objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

IGNORE = -100  # torch's cross_entropy ignore_index: positions that must not train


class Objective(StrEnum):
    """What a training sequence supervises."""

    ALL_TARGETS = "all-targets"  # ManyICL: every demonstration's answer is a target
    LAST_TARGET = "last-target"  # MetaICL-style few-shot ICFT: only the final answer
    ZERO_SHOT = "zero-shot"  # one example per sequence, its answer the target
    DRICL = "dricl"  # all answers, reweighted, plus a zero-shot pass (see losses.py)

    @property
    def single_example(self) -> bool:
        """Sequences hold exactly one example."""
        return self is Objective.ZERO_SHOT


class LossNorm(StrEnum):
    """How supervised token losses are averaged within a batch."""

    TOKEN = "token"  # every supervised token weighs the same (long answers weigh more)
    ANSWER = "answer"  # mean over answers of each answer's mean token loss


def supervised_spans(
    spans: Sequence[tuple[int, int]],
    objective: Objective,
    unpredictable: Sequence[bool] = (),
) -> list[tuple[int, int]]:
    """The answer spans that `objective` trains on, less those flagged unpredictable
    (`unpredictable[k]` for span k; empty: none is)."""
    if objective is Objective.ZERO_SHOT and len(spans) > 1:
        raise ValueError(f"zero-shot sequences hold one example, this one holds {len(spans)}")
    chosen = range(len(spans))
    if objective is Objective.LAST_TARGET:
        chosen = chosen[-1:]
    return [spans[k] for k in chosen if not (unpredictable and unpredictable[k])]


def skipped_answers(
    n_answers: int, unpredictable: Sequence[bool] = (), min_shots: int = 0
) -> tuple[bool, ...]:
    """Per answer, whether it is left out of the loss whatever the objective: flagged
    unpredictable, or preceded by fewer than `min_shots` demonstrations (answer k has k before
    it). `min_shots` keeps the loss on the many-shot answers, where reading the context pays;
    the few-shot ones may teach the label prior more than reading (a hypothesis, tested in
    docs/RESULTS.md, attempt 14)."""
    if unpredictable and len(unpredictable) != n_answers:
        raise ValueError(f"{len(unpredictable)} unpredictable flags for {n_answers} answers")
    if min_shots < 0:
        raise ValueError(f"min_shots must be >= 0, got {min_shots}")
    flags = unpredictable or (False,) * n_answers
    return tuple(bool(flag) or k < min_shots for k, flag in enumerate(flags))


def build_labels(
    token_ids: Sequence[int],
    spans: Sequence[tuple[int, int]],
    objective: Objective,
    unpredictable: Sequence[bool] = (),
) -> list[int]:
    """Labels for causal-LM training: the token id inside supervised answers, IGNORE elsewhere.

    The model shifts labels itself (position t predicts label t+1), so label[t] = token_ids[t].
    """
    labels = [IGNORE] * len(token_ids)
    for start, end in supervised_spans(spans, objective, unpredictable):
        if not 0 <= start < end <= len(token_ids):
            raise ValueError(
                f"answer span {(start, end)} outside a {len(token_ids)}-token sequence"
            )
        labels[start:end] = token_ids[start:end]
    return labels


def answer_index(
    length: int,
    spans: Sequence[tuple[int, int]],
    objective: Objective,
    unpredictable: Sequence[bool] = (),
) -> list[int]:
    """For each position, the index of the supervised answer it belongs to, -1 if none."""
    index = [-1] * length
    for k, (start, end) in enumerate(supervised_spans(spans, objective, unpredictable)):
        index[start:end] = [k] * (end - start)
    return index


def block_ids(length: int, starts: Sequence[int]) -> list[int]:
    """Which demonstration each position belongs to, for DrICL's zero-shot pass.

    `starts` are the demonstrations' first positions; the header belongs to the first one.
    """
    ids = [0] * length
    for k, start in enumerate(starts):
        ids[start:] = [k] * (length - start)
    return ids
