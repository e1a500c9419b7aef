"""The real `manyicl-finetune` entry point: bad input fails before training, torchrun with two
CPU processes, and a short run on the default SmolLM2 model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from manyicl.manifest import read_manifest

CLI = [sys.executable, "-m", "manyicl.finetune.cli"]


def _run(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"dricl_gamma": 0.0}, "--dricl-gamma must be > 0"),
        ({"keep_checkpoints": 0}, "--keep-checkpoints must be > 0"),
        ({"remap_prob": 1.5}, "--remap-prob must be in [0, 1]"),
        ({"mix_prob": -0.1}, "--mix-prob must be in [0, 1]"),
        ({"min_lr_ratio": 2.0}, "--min-lr-ratio must be in [0, 1]"),
        ({"max_seq_len": 8}, "--max-seq-len must be >= 16"),
        ({"max_seq_len": 0}, "--max-seq-len must be >= 16"),  # 0 is no "unset"
        ({"micro_batch_tokens": 0}, "--micro-batch-tokens must be >= 16"),
        ({"micro_batch_tokens": 4}, "--micro-batch-tokens must be >= 16"),
        ({"lora_dropout": 1.0}, "--lora-dropout must be in [0, 1)"),
        ({"lr": 0.0, "lora_r": 0}, "--lora-r must be > 0; --lr must be > 0"),  # all at once
    ],
)
def test_config_checks_name_the_flag(tmp_path, fields, message):
    from manyicl.finetune.config import FinetuneConfig

    with pytest.raises(ValueError) as e:
        FinetuneConfig(out=tmp_path, **fields)
    assert str(e.value) == message
    FinetuneConfig(out=tmp_path, remap_prob=None, mix_prob=None, max_seq_len=None)  # unset: fine


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "/nonexistent/model"], "does not exist"),
        (["--mixture", "{tmp}/missing.toml"], "cannot read mixture"),
        (["--mixture", "{tmp}/empty.toml"], "lists no"),
        (["--max-seq-len", "100000"], "exceeds the model's context"),
        (["--lr", "-1"], "--lr must be > 0"),
        (["--snapshot-every", "-1"], "--snapshot-every must be >= 0"),
        (["--shots", "many"], "--shots must be"),
        (["--objective", "last-target", "--min-shots", "4"], "all-targets only"),
        (["--shots", "4-8", "--min-shots", "8"], "leaves no answer to train"),
        (["--objective", "zero-shot", "--shots", "8"], "one example per sequence"),
        (["--prompt-format", "fancy"], "unknown prompt format"),
        (["--mixture", "{tmp}/small.toml"], "it needs 500"),
    ],
)
def test_bad_input_exits_with_a_reason_before_training(
    tmp_path, tiny_llama_dir, toy_mixture, args, message
):
    (tmp_path / "empty.toml").write_text("[settings]\n")
    (tmp_path / "small.toml").write_text(
        f'[[task]]\nname = "f"\nsource = "jsonl"\npath = "{Path(toy_mixture).parent}/fruit.jsonl"'
        "\n[settings]\nmin_examples = 500\n"
    )
    base = ["--out", str(tmp_path / "out"), "--model", tiny_llama_dir, "--mixture", toy_mixture]
    proc = _run(base + [a.format(tmp=tmp_path) for a in args], timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


_DDP_SCRIPT = """
import hashlib, json, os, sys
from pathlib import Path
from manyicl.finetune.config import FinetuneConfig
from manyicl.finetune.trainer import train

if __name__ == "__main__":
    out, model, mixture = sys.argv[1:4]
    cfg = FinetuneConfig(out=Path(out), model=model, mixture=Path(mixture), max_seq_len=192,
                         max_steps=4, grad_accum=2, lr=1e-2, warmup_steps=0, eval_every=2,
                         save_every=2, eval_sequences=4, gradient_checkpointing=False)
    result = train(cfg)
    digest = hashlib.sha256()
    for name, p in sorted(result.model.named_parameters()):
        if p.requires_grad:
            digest.update(p.detach().numpy().tobytes())
    record = {"digest": digest.hexdigest(), "eval_loss": result.manifest.metrics["eval_loss"]}
    Path(out, f"rank{os.environ['RANK']}.json").write_text(json.dumps(record))
"""


@pytest.mark.slow
def test_torchrun_two_cpu_processes_agree(tmp_path, tiny_llama_dir, toy_mixture):
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(script),
            str(out),
            tiny_llama_dir,
            toy_mixture,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    manifest = read_manifest(out)
    assert manifest.steps == 4 and manifest.metrics["eval_loss"] == ranks[0]["eval_loss"]
    assert (out / "checkpoints" / "step-0000004").is_dir()


@pytest.mark.slow
def test_cli_trains_on_real_sources_and_records_a_missing_one(tmp_path):
    """Tasks of three generated sources train; the BIG-bench task, whose archive the registry
    no longer serves, is left out with a warning and named in the manifest."""
    from manyicl.artifacts import cache_root, local_copy
    from manyicl.tasks.bigbench import BIGBENCH

    mixture = tmp_path / "mix.toml"
    mixture.write_text(
        "[settings]\neval_examples = 8\n"
        '[[task]]\nname = "gym:leg_counting"\n'
        '[[task]]\nname = "cldr:territory_code"\n'
        '[[task]]\nname = "words:noun/plural"\n'
        '[[task]]\nname = "bigbench:arithmetic/2_digit_addition"\n'
    )
    out = tmp_path / "out"
    args = ["--mixture", str(mixture), "--max-seq-len", "256", "--grad-accum", "1"]
    proc = _run(["--out", str(out), *args, "--max-steps", "2", "--eval-sequences", "2"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "adapter written to" in proc.stdout
    manifest = read_manifest(out)
    assert manifest.base_model.path.endswith("smollm2-135m-instruct-0.1.2-bf16")
    assert manifest.prompt_format.name == "plain" and manifest.steps == 2
    assert manifest.training["objective"] == "all-targets"
    archive = local_copy(BIGBENCH, cache_root() / "downloads")
    missing = [] if archive else ["bigbench:arithmetic/2_digit_addition"]
    assert manifest.missing_tasks == missing
    assert not missing or "tasks left out" in proc.stderr
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["peft_type"] == "LORA"
    if missing:  # --strict refuses, naming what is missing
        strict = _run(["--out", str(tmp_path / "strict"), *args, "--strict", "--max-steps", "1"])
        assert strict.returncode == 2 and "left out" in strict.stderr


def test_config_file_reproduces_a_run_and_flags_override(tmp_path):
    from manyicl.finetune.config import FinetuneConfig, parse_config, reproducible
    from manyicl.finetune.objectives import Objective

    original = FinetuneConfig(
        out=tmp_path / "a", objective=Objective.LAST_TARGET, max_seq_len=512, lr=1e-3, resume=True
    )
    saved = tmp_path / "finetune.json"
    data = reproducible(original.to_json())
    saved.write_text(json.dumps(data))
    assert "out" not in data and "resume" not in data and "mixture" not in data
    again = parse_config(["--config", str(saved), "--out", str(tmp_path / "b")])
    assert again == FinetuneConfig(**{**original.__dict__, "out": tmp_path / "b", "resume": False})
    changed = parse_config(["--config", str(saved), "--out", str(tmp_path / "b"), "--lr", "5e-4"])
    assert changed.lr == 5e-4 and changed.objective is Objective.LAST_TARGET
    late = FinetuneConfig(out=tmp_path / "a", min_shots=16)
    saved.write_text(json.dumps(reproducible(late.to_json())))
    assert parse_config(["--config", str(saved), "--out", str(tmp_path / "a")]) == late


@pytest.mark.parametrize(
    "content", ['{"lr": 1e-3, "lr_typo": 1}', '{"out": "x"}', "not json", "[1]"]
)
def test_bad_config_file_exits_with_a_reason(tmp_path, content):
    saved = tmp_path / "finetune.json"
    saved.write_text(content)
    proc = _run(["--config", str(saved), "--out", str(tmp_path / "out")], timeout=120)
    assert proc.returncode == 2 and "--config" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("objective", "flag", "used"),
    [
        ("all-targets", "token", "token"),
        ("all-targets", "answer", "answer"),
        ("last-target", "token", "token"),
        ("dricl", "token", "answer"),  # DrICL's loss is per answer whatever the flag says
        ("dricl", "answer", "answer"),
    ],
)
def test_effective_loss_norm(objective, flag, used):
    from manyicl.finetune.config import FinetuneConfig
    from manyicl.finetune.objectives import LossNorm, Objective

    cfg = FinetuneConfig(
        out=Path("unused"), objective=Objective(objective), loss_norm=LossNorm(flag)
    )
    assert cfg.effective_loss_norm is LossNorm(used)
