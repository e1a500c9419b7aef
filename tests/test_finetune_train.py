"""Real training steps on a tiny random Llama: loss goes down for every objective, only the
adapter changes, the saved adapter reloads to the same logits, and --resume is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from manyicl.finetune.config import FinetuneConfig, Schedule
from manyicl.finetune.losses import DEPTHS, depth_name
from manyicl.finetune.objectives import LossNorm, Objective
from manyicl.finetune.trainer import train
from manyicl.manifest import read_manifest


def _config(out: Path, model: str, mixture: str, **overrides) -> FinetuneConfig:
    settings = dict(
        out=out,
        model=model,
        mixture=Path(mixture),
        max_seq_len=192,
        max_steps=30,
        grad_accum=1,
        lr=2e-2,
        warmup_steps=0,
        schedule=Schedule.CONSTANT,
        eval_every=0,
        save_every=0,
        eval_sequences=4,
        lora_r=16,
        lora_alpha=32,
        gradient_checkpointing=False,
    )
    return FinetuneConfig(**{**settings, **overrides})


def _eval_losses(out: Path) -> list[float]:
    return [
        r["eval_loss"] for r in map(json.loads, (out / "metrics.jsonl").open()) if "eval_loss" in r
    ]


@pytest.mark.parametrize(
    "objective,norm,dtype",
    [
        (Objective.ALL_TARGETS, LossNorm.TOKEN, "float32"),
        (Objective.ALL_TARGETS, LossNorm.TOKEN, "bf16-mixed"),  # auto on CPUs with native bf16
        (Objective.ALL_TARGETS, LossNorm.ANSWER, "auto"),
        (Objective.LAST_TARGET, LossNorm.TOKEN, "auto"),
        (Objective.ZERO_SHOT, LossNorm.TOKEN, "auto"),
        (Objective.DRICL, LossNorm.TOKEN, "auto"),
    ],
)
def test_every_objective_lowers_the_eval_loss(
    tmp_path, tiny_llama_dir, toy_mixture, objective, norm, dtype
):
    cfg = _config(
        tmp_path / "out",
        tiny_llama_dir,
        toy_mixture,
        objective=objective,
        loss_norm=norm,
        eval_every=1,
        dtype=dtype,
    )
    result = train(cfg)
    first = _eval_losses(cfg.out)[0]
    final = result.manifest.metrics["eval_loss"]
    by_depth = [result.manifest.metrics[depth_name(d)] for d in DEPTHS]
    assert by_depth[0] is not None and by_depth[0] > 0  # every sequence has early answers
    assert final < 0.8 * first, (first, final)
    assert result.manifest.steps == 30 and result.manifest.tokens_trained > 0


def test_only_the_adapter_changes_and_it_reloads_to_the_same_logits(
    tmp_path, tiny_llama_dir, toy_mixture
):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    cfg = _config(tmp_path / "out", tiny_llama_dir, toy_mixture, max_steps=3)
    result = train(cfg)
    original = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).state_dict()
    trained = result.model
    base = {
        k.replace("base_model.model.", "").replace(".base_layer", ""): v
        for k, v in trained.state_dict().items()
        if "lora_" not in k
    }
    assert all(torch.equal(base[k], v) for k, v in original.items())
    lora_b = [p for n, p in trained.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # B starts at zero

    manifest = read_manifest(cfg.out)
    assert manifest.base_model.path == tiny_llama_dir and manifest.objective == "all-targets"
    reloaded = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_llama_dir), cfg.out
    ).eval()
    ids = torch.randint(0, 1000, (1, 20))
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, trained.eval()(ids).logits, atol=1e-5)


def test_resume_after_a_kill_ends_where_an_uninterrupted_run_ends(
    tmp_path, tiny_llama_dir, toy_mixture
):
    common = dict(max_steps=6, save_every=2, snapshot_every=3, lora_dropout=0.1)
    straight = train(_config(tmp_path / "a", tiny_llama_dir, toy_mixture, **common))
    interrupted = _config(tmp_path / "b", tiny_llama_dir, toy_mixture, **common)
    assert train(interrupted, stop_after=3) is None  # killed after step 3: step 2 is saved
    with pytest.raises(Exception, match="--resume"):
        train(interrupted)
    resumed = train(_config(tmp_path / "b", tiny_llama_dir, toy_mixture, resume=True, **common))
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if "lora_" in k)
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").open()]
    assert steps == [1, 2, 3, 4, 5, 6]  # the lost step is logged once
    # every checkpoint is an adapter in its own right: manifest beside the weights
    ckpt = read_manifest(tmp_path / "b" / "checkpoints" / "step-0000006")
    assert (ckpt.steps, ckpt.base_model.path) == (6, tiny_llama_dir)
    assert ckpt.tokens_trained == resumed.manifest.tokens_trained
    # snapshots outlive --keep-checkpoints: step 3 (before the kill) and step 6 (the end)
    snaps = sorted(p.name for p in (tmp_path / "b" / "snapshots").iterdir())
    assert snaps == ["step-0000003", "step-0000006"]
    assert read_manifest(tmp_path / "b" / "snapshots" / snaps[0]).steps == 3
    last = load_file(tmp_path / "b" / "snapshots" / snaps[1] / "adapter_model.safetensors")
    final = load_file(tmp_path / "b" / "adapter_model.safetensors")
    assert last.keys() == final.keys() and all(torch.equal(last[k], final[k]) for k in last)


@pytest.mark.parametrize("norm", [LossNorm.TOKEN, LossNorm.ANSWER])
def test_logits_at_supervised_positions_match_the_full_logits_path(tiny_llama_dir, norm):
    """The fast path (LM head only where a label is) gives the full path's loss and gradients."""
    from manyicl.finetune.batching import collate, loss_sum
    from manyicl.finetune.losses import DriclParams, answer_loss_sum, token_loss_sum
    from manyicl.finetune.modeling import load_lora_model
    from manyicl.finetune.sequences import TrainSequence
    from manyicl.prompting import PLAIN, Example, HFTokenizer, render

    tok = HFTokenizer.from_pretrained(tiny_llama_dir)
    seqs = [
        TrainSequence(
            render(PLAIN, tok, [Example(input=f"{i}+{j}", output=str(i + j)) for j in range(n)])
        )
        for i, n in [(1, 5), (2, 3)]
    ]
    batch = collate(seqs, Objective.ALL_TARGETS, tok.hf.eos_token_id)
    lora = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": "all-linear"}
    model = load_lora_model(tiny_llama_dir, torch.float32, torch.device("cpu"), lora, False)
    fast = loss_sum(model, batch, Objective.ALL_TARGETS, norm, DriclParams())
    fast.backward()
    fast_grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    if norm is LossNorm.ANSWER:
        full = answer_loss_sum(logits, batch.labels, batch.answer_idx, batch.n_answers)
    else:
        full = token_loss_sum(logits, batch.labels)
    full.backward()
    assert torch.isclose(fast, full, rtol=1e-5)
    for a, p in zip(fast_grads, (p for p in model.parameters() if p.requires_grad), strict=True):
        assert torch.allclose(a, p.grad, rtol=1e-4, atol=1e-6)


def test_init_adapter_starts_from_its_weights(tmp_path, tiny_llama_dir, toy_mixture):
    """A run started from a finished adapter begins at that adapter's eval loss, not the base's;
    an adapter of another rank is refused before any compute."""
    from manyicl.finetune.setup import FinetuneError

    first = train(_config(tmp_path / "a", tiny_llama_dir, toy_mixture))
    warm = _config(
        tmp_path / "b", tiny_llama_dir, toy_mixture, max_steps=2, eval_every=1, lr=1e-9,
        init_adapter=tmp_path / "a",
    )  # fmt: skip
    train(warm)
    cold = _config(tmp_path / "c", tiny_llama_dir, toy_mixture, max_steps=2, eval_every=1, lr=1e-9)
    train(cold)
    trained_loss = first.manifest.metrics["eval_loss"]
    assert _eval_losses(warm.out)[0] == pytest.approx(trained_loss, rel=1e-3)
    assert _eval_losses(cold.out)[0] > 1.2 * trained_loss
    other_rank = _config(
        tmp_path / "d", tiny_llama_dir, toy_mixture, lora_r=8, init_adapter=tmp_path / "a"
    )
    with pytest.raises(FinetuneError, match="lora-r"):
        train(other_rank)


@pytest.mark.parametrize("remap_prob,remapped", [(None, False), (0.0, False), (1.0, True)])
def test_remap_prob_overrides_the_mixture(
    tmp_path, tiny_llama_dir, toy_mixture, remap_prob, remapped
):
    """The toy mixture remaps nothing; --remap-prob 1 remaps its classification task only."""
    from manyicl.finetune.setup import prepare

    setup = prepare(_config(tmp_path / "out", tiny_llama_dir, toy_mixture, remap_prob=remap_prob))
    assert setup.remapping.prob == (remap_prob or 0.0)
    by_name = {t.name: t.remap is not None for t in setup.tasks}
    assert by_name == {"fruit": remapped, "reverse": False}


def test_task_identification_sequences_train_and_their_loss_falls(
    tmp_path, tiny_llama_dir, toy_mixture
):
    """--mix-prob 1: every sequence interleaves the two toy tasks' inputs under two arbitrary
    labels drawn per sequence; telling them apart is learnable, so the train loss falls."""
    from manyicl.finetune.setup import prepare

    cfg = _config(tmp_path / "out", tiny_llama_dir, toy_mixture, mix_prob=1.0, max_steps=40)
    setup = prepare(cfg)
    assert setup.remapping.mix_prob == 1.0 and all(t.remap is not None for t in setup.tasks)
    train(cfg)
    losses = [r["loss"] for r in map(json.loads, (cfg.out / "metrics.jsonl").open())]
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert json.loads((cfg.out / "manyicl.json").read_text())["training"]["mix_prob"] == 1.0
