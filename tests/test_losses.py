"""Loss pieces on hand-computed values, and DrICL's block mask against separate forwards."""

from __future__ import annotations

import math

import pytest
import torch

from manyicl.finetune.losses import (
    DriclParams,
    answer_loss_sum,
    block_causal_mask,
    depth_loss_sums,
    depth_name,
    dricl_loss_sum,
    dricl_weights,
    per_answer_mean,
    supervised_positions,
    token_loss_sum,
    token_nll,
)
from manyicl.finetune.objectives import IGNORE


def _logits_for(targets: list[int], vocab: int, confidence: list[float]) -> torch.Tensor:
    """(1, T, V) logits whose position t-1 puts probability confidence[t] on targets[t]."""
    T = len(targets)
    logits = torch.full((1, T, vocab), -1e4)
    for t in range(1, T):
        p = confidence[t]
        logits[0, t - 1] = math.log((1 - p) / (vocab - 1))
        logits[0, t - 1, targets[t]] = math.log(p)
    return logits


def test_token_nll_is_minus_log_p_at_supervised_positions():
    targets = [0, 1, 2, 3]
    conf = [0.0, 0.5, 0.25, 0.8]
    logits = _logits_for(targets, 4, conf)
    labels = torch.tensor([[IGNORE, 1, IGNORE, 3]])
    nll = token_nll(logits, labels)
    assert nll.shape == (1, 4)
    assert torch.allclose(nll, torch.tensor([[0, -math.log(0.5), 0, -math.log(0.8)]]), atol=1e-5)
    assert torch.isclose(token_loss_sum(logits, labels), nll.sum())


def test_per_answer_mean_averages_within_each_answer():
    nll = torch.tensor([[0.0, 1.0, 3.0, 0.0, 4.0], [2.0, 2.0, 0.0, 0.0, 0.0]])
    idx = torch.tensor([[-1, 0, 0, -1, 1], [0, 0, -1, -1, -1]])
    means = per_answer_mean(nll, idx, 2)
    assert torch.allclose(means, torch.tensor([[2.0, 4.0], [2.0, 0.0]]))


def test_answer_loss_sum_skips_padding_answers():
    logits = _logits_for([0, 1, 2, 3], 4, [0, 0.5, 0.5, 0.25])
    labels = torch.tensor([[IGNORE, 1, 2, 3]])
    idx = torch.tensor([[-1, 0, 0, 1]])
    got = answer_loss_sum(logits, labels, idx, torch.tensor([2]))
    assert torch.isclose(got, torch.tensor(-math.log(0.5) - math.log(0.25)), atol=1e-5)


# losses, window -> weights (gamma 1 keeps the numbers readable)
# fmt: off
WEIGHT_TABLE = [
    ([1.0],           10, [1.0]),
    ([1.0, 2.0],      10, [1.0, math.e]),            # r_1 = 2 - 1
    ([3.0, 1.0, 2.0], 10, [1.0, math.exp(-2), math.exp(-1)]),  # baseline = max earlier
    ([3.0, 1.0, 2.0],  1, [1.0, math.exp(-2), math.e]),        # window 1: only l_{k-1}
]
# fmt: on


@pytest.mark.parametrize("losses,window,want", WEIGHT_TABLE)
def test_dricl_weights_table(losses, window, want):
    w = dricl_weights(torch.tensor(losses), DriclParams(gamma=1.0, window=window))
    assert torch.allclose(w, torch.tensor(want))


def test_dricl_weights_carry_no_gradient():
    losses = torch.tensor([1.0, 2.0], requires_grad=True)
    assert not dricl_weights(losses, DriclParams()).requires_grad


def test_dricl_loss_combines_the_two_passes():
    # Two answers of one token each, equal loss in both passes -> weights 1 -> L = l.
    logits = _logits_for([0, 1, 2, 3], 4, [0, 0.5, 0.3, 0.5])
    labels = torch.tensor([[IGNORE, 1, IGNORE, 3]])
    idx = torch.tensor([[-1, 0, -1, 1]])
    p = DriclParams(alpha=0.2)
    got = dricl_loss_sum(logits, logits, labels, idx, torch.tensor([2]), p)
    assert torch.isclose(got, torch.tensor(-math.log(0.5)), atol=1e-5)
    # A worse zero-shot pass moves L by (1 - alpha) / 2 of the difference.
    worse = _logits_for([0, 1, 2, 3], 4, [0, 0.25, 0.3, 0.25])
    got = dricl_loss_sum(logits, worse, labels, idx, torch.tensor([2]), p)
    want = 0.5 * (1.2 * -math.log(0.5) + 0.8 * -math.log(0.25))
    assert torch.isclose(got, torch.tensor(want), atol=1e-5)


def test_block_mask_equals_running_each_demonstration_alone():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    model = LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa").eval()
    ids = torch.randint(0, 64, (1, 14))
    blocks = torch.tensor([[0] * 6 + [1] * 5 + [-1] * 3])  # 3 padding positions
    pad = torch.tensor([[False] * 11 + [True] * 3])
    mask = block_causal_mask(blocks, pad)
    assert mask.shape == (1, 1, 14, 14)
    with torch.no_grad():
        joint = model(
            input_ids=ids, attention_mask=mask, position_ids=torch.arange(14)[None]
        ).logits
        first = model(input_ids=ids[:, :6]).logits
        second = model(input_ids=ids[:, 6:11], position_ids=torch.arange(6, 11)[None]).logits
    assert torch.allclose(joint[:, :6], first, atol=1e-5)
    assert torch.allclose(joint[:, 6:11], second, atol=1e-5)


def test_logits_at_supervised_positions_give_the_full_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 9, 11)
    labels = torch.full((2, 9), IGNORE)
    labels[0, 3:5] = torch.tensor([1, 2])
    labels[1, 7:9] = torch.tensor([4, 5])
    keep = supervised_positions(labels)
    assert keep.tolist() == [2, 3, 6, 7]
    full = token_nll(logits, labels)
    assert torch.allclose(token_nll(logits[:, keep], labels, keep), full)
    idx = torch.tensor([[-1, -1, -1, 0, 0, -1, -1, -1, -1], [-1] * 7 + [0, 0]])
    n = torch.tensor([1, 1])
    assert torch.isclose(
        answer_loss_sum(logits[:, keep], labels, idx, n, keep),
        answer_loss_sum(logits, labels, idx, n),
    )


# answer tokens: (demonstration index of each token, its NLL); depths (1-2), (3-4), (5+)
DEPTH_CASES = [
    ([(0, 1.0), (1, 3.0)], [4.0, 0.0, 0.0], [2, 0, 0]),
    ([(0, 1.0), (2, 2.0), (3, 4.0), (7, 5.0)], [1.0, 6.0, 5.0], [1, 2, 1]),
    ([(4, 2.0), (4, 2.0), (9, 1.0)], [0.0, 0.0, 5.0], [0, 0, 3]),
    ([], [0.0, 0.0, 0.0], [0, 0, 0]),
]


@pytest.mark.parametrize("answers,sums,counts", DEPTH_CASES)
def test_depth_loss_sums_bucket_answer_tokens_by_demonstration_position(answers, sums, counts):
    T = len(answers) + 2  # position 0 (never predicted) and one unsupervised token
    labels = torch.full((1, T), IGNORE)
    blocks = torch.full((1, T), -1)
    nll = torch.zeros(1, T)
    nll[0, 1] = 99.0  # an unsupervised position's NLL counts nowhere
    for t, (block, value) in enumerate(answers, start=2):
        labels[0, t], blocks[0, t], nll[0, t] = 7, block, value
    got_sums, got_counts = depth_loss_sums(nll, labels, blocks, ((1, 2), (3, 4), (5, None)))
    assert got_sums.tolist() == sums and got_counts.tolist() == counts


def test_depth_names_say_the_answer_positions():
    assert [depth_name(d) for d in ((1, 8), (65, None))] == [
        "eval_loss_answers_1_8",
        "eval_loss_answers_65_plus",
    ]
