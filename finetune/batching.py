"""Micro-batches: rendered sequences -> padded tensors, and the loss each objective computes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from manyicl.finetune.losses import (
    DriclParams,
    answer_loss_sum,
    block_causal_mask,
    dricl_loss_sum,
    supervised_positions,
    token_loss_sum,
)
from manyicl.finetune.objectives import (
    IGNORE,
    LossNorm,
    Objective,
    answer_index,
    block_ids,
    build_labels,
    skipped_answers,
    supervised_spans,
)
from manyicl.finetune.sequences import TrainSequence


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T) 1 = real token
    labels: torch.Tensor  # (B, T) IGNORE outside supervised answers
    answer_idx: torch.Tensor  # (B, T) supervised answer index, -1 elsewhere
    n_answers: torch.Tensor  # (B,)
    blocks: torch.Tensor  # (B, T) demonstration index, for DrICL's zero-shot pass
    n_tokens: int  # real tokens (padding excluded)

    def to(self, device: torch.device) -> Batch:
        moved = {
            k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.__dict__.items()
        }
        return Batch(**moved)

    @property
    def n_supervised(self) -> int:
        """Tokens with a loss (position 0 is never predicted)."""
        return int((self.labels[:, 1:] != IGNORE).sum())


def collate(
    seqs: Sequence[TrainSequence], objective: Objective, pad_id: int, min_shots: int = 0
) -> Batch:
    """Right-pad `seqs` into one batch with the labels `objective` trains on, leaving out
    unpredictable answers and those after fewer than `min_shots` demonstrations."""
    T = max(len(s.prompt.token_ids) for s in seqs)
    rows: dict[str, list[list[int]]] = {k: [] for k in ("ids", "mask", "labels", "ans", "blk")}
    n_answers = []
    for seq in seqs:
        s, spans = seq.prompt, seq.prompt.answer_spans
        skip = skipped_answers(len(spans), seq.unpredictable, min_shots)
        n, pad = len(s.token_ids), T - len(s.token_ids)
        rows["ids"].append(s.token_ids + [pad_id] * pad)
        rows["mask"].append([1] * n + [0] * pad)
        rows["labels"].append(build_labels(s.token_ids, spans, objective, skip) + [IGNORE] * pad)
        rows["ans"].append(answer_index(n, spans, objective, skip) + [-1] * pad)
        rows["blk"].append(block_ids(n, [e.start for e in s.examples]) + [-1] * pad)
        n_answers.append(len(supervised_spans(spans, objective, skip)))
    t = {k: torch.tensor(v, dtype=torch.long) for k, v in rows.items()}
    return Batch(
        t["ids"],
        t["mask"],
        t["labels"],
        t["ans"],
        torch.tensor(n_answers),
        t["blk"],
        sum(len(s.prompt.token_ids) for s in seqs),
    )


def loss_count(batch: Batch, objective: Objective, norm: LossNorm) -> int:
    """What this batch's loss sum is later divided by (summed over the step first)."""
    if objective is Objective.DRICL:
        return batch.input_ids.shape[0]
    if norm is LossNorm.ANSWER:
        return int(batch.n_answers.sum())
    return batch.n_supervised


def loss_sum(
    model, batch: Batch, objective: Objective, norm: LossNorm, dricl: DriclParams
) -> torch.Tensor:
    """Forward pass(es) and the un-normalised loss of one micro-batch."""
    if objective is Objective.DRICL:
        return _dricl(model, batch, dricl)
    logits, keep = supervised_logits(model, batch)
    if norm is LossNorm.ANSWER:
        return answer_loss_sum(logits, batch.labels, batch.answer_idx, batch.n_answers, keep)
    return token_loss_sum(logits, batch.labels, keep)


def supervised_logits(model, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (B, K, V), positions (K,)): the model's logits only where the next token is
    supervised in some row of the batch."""
    keep = supervised_positions(batch.labels)
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=keep)
    return out.logits, keep


def _dricl(model, batch: Batch, dricl: DriclParams) -> torch.Tensor:
    """Both DrICL passes in one forward (one backward, as data parallelism needs): the batch
    twice, first under the causal mask, then under the per-demonstration block mask."""
    pad = batch.attention_mask == 0
    B, T = batch.input_ids.shape
    causal = block_causal_mask(torch.zeros_like(batch.blocks), pad)  # (B, 1, T, T)
    blocked = block_causal_mask(batch.blocks, pad)  # (B, 1, T, T)
    positions = torch.arange(T, device=batch.input_ids.device).expand(2 * B, T)
    logits = model(
        input_ids=batch.input_ids.repeat(2, 1),
        attention_mask=torch.cat([causal, blocked]),
        position_ids=positions,
    ).logits
    return dricl_loss_sum(
        logits[:B], logits[B:], batch.labels, batch.answer_idx, batch.n_answers, dricl
    )
