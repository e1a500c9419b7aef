"""Loss functions over a micro-batch: token-normalised, answer-normalised, and DrICL.

Each returns a *sum* and the trainer divides by the step's total count (supervised tokens,
answers, or sequences) counted before any forward pass, so gradient accumulation and data
parallelism give the same loss as one big batch.

Logits are needed only where a next token is supervised (`supervised_positions`): the model
is asked for those alone (`logits_to_keep`), which skips most of the LM head's work (SmolLM2's
49K-vocabulary head is ~20 % of its FLOPs, Gemma-3's 262K one most of them) and its memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from manyicl.finetune.objectives import IGNORE


@dataclass(frozen=True)
class DriclParams:
    """DrICL's defaults, as in its public code: alpha 0.2, gamma 11, window 10."""

    alpha: float = 0.2
    gamma: float = 11.0
    window: int = 10


def supervised_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions t whose next token is supervised in some row. labels (B, T) -> (K,)."""
    return (labels[:, 1:] != IGNORE).any(0).nonzero().squeeze(1)


def token_nll(
    logits: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-position NLL of the next token, 0 where the label is IGNORE.

    logits (B, T, V) at every position, or (B, K, V) at positions `keep` (K,) only;
    labels (B, T) -> (B, T), entry t the loss of predicting labels[t] from positions < t.
    """
    B, T = labels.shape
    if keep is None:
        keep, logits = torch.arange(T - 1, device=labels.device), logits[:, :-1]
    V = logits.shape[-1]
    nll = F.cross_entropy(
        logits.reshape(-1, V).float(),
        labels[:, keep + 1].reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view(B, len(keep))
    return nll.new_zeros(B, T).index_copy(1, keep + 1, nll)  # (B, T)


def per_answer_mean(nll: torch.Tensor, answer_idx: torch.Tensor, n_answers: int) -> torch.Tensor:
    """Mean NLL of each answer. nll, answer_idx (B, T) with -1 outside answers -> (B, K)."""
    B = nll.shape[0]
    K = max(n_answers, 1)
    slot = torch.where(answer_idx >= 0, answer_idx, K)  # (B, T); K collects the rest
    sums = torch.zeros(B, K + 1, dtype=nll.dtype, device=nll.device).scatter_add(1, slot, nll)
    counts = torch.zeros(B, K + 1, dtype=nll.dtype, device=nll.device).scatter_add(
        1, slot, torch.ones_like(nll)
    )
    return sums[:, :K] / counts[:, :K].clamp(min=1)  # (B, K)


# Answer depths whose loss a run reports apart: 1-based demonstration positions, inclusive.
DEPTHS: tuple[tuple[int, int | None], ...] = ((1, 8), (9, 64), (65, None))


def depth_name(depth: tuple[int, int | None]) -> str:
    lo, hi = depth
    return f"eval_loss_answers_{lo}_plus" if hi is None else f"eval_loss_answers_{lo}_{hi}"


def depth_loss_sums(
    nll: torch.Tensor, labels: torch.Tensor, blocks: torch.Tensor, depths=DEPTHS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed token NLL and token counts of the answers at each depth, so a run shows whether
    late answers (many demonstrations before them) improve.

    nll, labels, blocks (B, T); blocks holds each token's demonstration index (0-based)
    -> sums (D,), counts (D,).
    """
    supervised = labels != IGNORE
    supervised[:, 0] = False  # position 0 is never predicted
    position = blocks + 1
    sums, counts = [], []
    for lo, hi in depths:
        at = supervised & (position >= lo)
        if hi is not None:
            at &= position <= hi
        sums.append((nll * at).sum())
        counts.append(at.sum())
    return torch.stack(sums), torch.stack(counts)


def token_loss_sum(logits: torch.Tensor, labels: torch.Tensor, keep=None) -> torch.Tensor:
    """Sum of NLL over supervised tokens (normalise by the count of those tokens)."""
    return token_nll(logits, labels, keep).sum()


def answer_loss_sum(logits, labels, answer_idx, n_answers: torch.Tensor, keep=None):
    """Sum over answers of each answer's mean token NLL (normalise by the answer count).

    n_answers (B,) is the number of answers per sequence; padding slots are masked out.
    """
    means = per_answer_mean(token_nll(logits, labels, keep), answer_idx, int(n_answers.max()))
    valid = torch.arange(means.shape[1], device=means.device)[None] < n_answers[:, None]
    return (means * valid).sum()


def dricl_weights(losses: torch.Tensor, params: DriclParams) -> torch.Tensor:
    """DrICL's reweighting for one sequence's K answer losses (K,) -> weights (K,).

    r_0 = 0; r_k = l_k - baseline_k, baseline_k = the largest loss among the previous
    `window` answers (DrICL's importance-sampled baseline with one sample); w_k = exp(r_k/gamma).
    No gradient flows through the weights.
    """
    loss = losses.detach()
    r = torch.zeros_like(loss)
    for k in range(1, len(loss)):
        r[k] = loss[k] - loss[max(0, k - params.window) : k].max()
    return torch.exp(r / params.gamma)


def dricl_loss_sum(
    logits_many, logits_zero, labels, answer_idx, n_answers: torch.Tensor, params: DriclParams
) -> torch.Tensor:
    """Sum over sequences of L = ½[(1+α)·L_many + (1−α)·L_zero] (normalise by sequences).

    L_many = Σ_k w_k l_k / K over the many-shot pass; L_zero = mean token NLL of the answers
    in the zero-shot pass (each demonstration attending only to itself).
    """
    many = per_answer_mean(token_nll(logits_many, labels), answer_idx, int(n_answers.max()))
    zero_nll = token_nll(logits_zero, labels)  # (B, T)
    supervised = (labels != IGNORE).float()
    supervised[:, 0] = 0  # position 0 has no prediction
    total = logits_many.new_zeros(())
    for b in range(many.shape[0]):
        K = int(n_answers[b])
        per_answer = many[b, :K]
        l_many = (dricl_weights(per_answer, params) * per_answer).sum() / K
        l_zero = (zero_nll[b] * supervised[b]).sum() / supervised[b].sum().clamp(min=1)
        total = total + 0.5 * ((1 + params.alpha) * l_many + (1 - params.alpha) * l_zero)
    return total


def block_causal_mask(blocks: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """Boolean attention mask (True = may attend) for DrICL's zero-shot pass.

    blocks (B, T): demonstration index per position; pad (B, T): True at padding.
    -> (B, 1, T, T): causal, within one demonstration, never to padding. Positions are not
    reset, so each demonstration sees itself at its place in the many-shot sequence.
    """
    T = blocks.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=blocks.device).tril()
    same = blocks[:, :, None] == blocks[:, None, :]  # (B, T, T)
    mask = causal[None] & same & ~pad[:, None, :]
    mask |= torch.eye(T, dtype=torch.bool, device=blocks.device)[None]  # no empty rows
    return mask[:, None]
