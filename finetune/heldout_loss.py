"""The held-out yardstick of a training run: all-targets token NLL on the held-back
sequences, overall and by answer depth, the same for every objective."""

from __future__ import annotations

import torch

from manyicl.finetune.batching import collate, supervised_logits
from manyicl.finetune.losses import DEPTHS, depth_loss_sums, depth_name, token_nll
from manyicl.finetune.modeling import DistEnv, Precision
from manyicl.finetune.objectives import Objective
from manyicl.finetune.sequences import TrainSequence


@torch.no_grad()
def eval_losses(
    model, seqs: list[TrainSequence], pad_id: int, env: DistEnv, precision: Precision
) -> dict[str, float | None]:
    """All-targets token NLL on the held-back sequences (the same yardstick for every
    objective), overall and by answer depth (`losses.DEPTHS`), each rank taking every
    world-th sequence. Empty without held-back sequences."""
    if not seqs:
        return {}
    model.eval()
    sums, counts = torch.zeros(len(DEPTHS)), torch.zeros(len(DEPTHS))
    total, count = 0.0, 0
    for seq in seqs[env.rank :: env.world]:
        batch = collate([seq], Objective.ALL_TARGETS, pad_id).to(env.device)
        with precision.autocast(env.device):
            logits, keep = supervised_logits(model, batch)
        nll = token_nll(logits, batch.labels, keep)  # (1, T)
        total += float(nll.sum())
        count += batch.n_supervised
        s, n = depth_loss_sums(nll, batch.labels, batch.blocks)
        sums, counts = sums + s.float().cpu(), counts + n.float().cpu()
    model.train()
    out: dict[str, float | None] = {"eval_loss": env.all_sum(total) / max(env.all_sum(count), 1)}
    for depth, s, n in zip(DEPTHS, sums.tolist(), counts.tolist(), strict=True):
        n = env.all_sum(n)
        out[depth_name(depth)] = env.all_sum(s) / n if n else None
    return out
