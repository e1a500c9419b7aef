"""`manyicl-finetune`'s one config: parsed from argv, validated here, passed explicitly."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from manyicl.cliargs import arg, parse_dataclass
from manyicl.finetune.mixture import DEFAULT_MIXTURE
from manyicl.finetune.modeling import DTYPES
from manyicl.finetune.objectives import LossNorm, Objective
from manyicl.finetune.sequences import ShotRange


class Schedule(StrEnum):
    COSINE = "cosine"
    CONSTANT = "constant"


@dataclass(frozen=True)
class FinetuneConfig:
    out: Path = arg("output folder: the adapter, manyicl.json, metrics.jsonl, checkpoints/")
    model: str = arg(
        "base model: 'default' (SmolLM2-135M-Instruct, offline), another registry "
        "model (gemma3-270m; see manyicl-model), a local Hugging Face folder, or a hub id",
        default="default",
    )
    mixture: Path = arg(
        "mixture file (TOML) of training tasks, or the name of a packaged one "
        "(default_mixture.toml, bigbench33_mixture.toml)",
        default=DEFAULT_MIXTURE,
    )
    strict: bool = arg(
        "refuse to train when a task of the mixture cannot be had (its package or pinned file "
        "is missing); by default such tasks are left out with one warning and recorded in the "
        "manifest's missing_tasks",
        default=False,
    )
    remap_prob: float | None = arg(
        "share of classification sequences whose labels are remapped (symbol tuning); "
        "default: the mixture's [settings] remap_prob",
        default=None,
    )
    mix_prob: float | None = arg(
        "share of sequences that are task-identification sequences (inputs of 2 to "
        "mix_max_tasks tasks, each task answered by an arbitrary label drawn per sequence); "
        "default: the mixture's [settings] mix_prob",
        default=None,
    )
    prompt_format: str = arg(
        "prompt format: 'plain', 'chat', or a JSON file; saved with the "
        "adapter so the server renders exactly the same way",
        default="plain",
    )
    objective: Objective = arg(
        "which answers carry loss: all-targets (ManyICL), last-target "
        "(MetaICL-style), zero-shot, dricl",
        default=Objective.ALL_TARGETS,
    )
    min_shots: int = arg(
        "all-targets: no loss on answers preceded by fewer than this many demonstrations "
        "(0: every answer; the first of each remapped label is left out regardless)",
        default=0,
    )
    loss_norm: LossNorm = arg(
        "average the loss per supervised token, or per answer (each answer "
        "weighs the same); dricl always averages per answer",
        default=LossNorm.TOKEN,
    )
    max_seq_len: int | None = arg(
        "tokens per training sequence (default: the model's context, at most 4096)", default=None
    )
    shots: str = arg(
        "demonstrations per sequence: 'max' (pack to --max-seq-len), K, or A-B "
        "(uniform per sequence, varies the shot count)",
        default="max",
    )
    lora_r: int = arg("LoRA rank", default=16)
    lora_alpha: int = arg("LoRA alpha", default=32)
    lora_dropout: float = arg(
        "LoRA dropout (0: off; a random mask per adapted layer costs ~12 %% of a CPU step)",
        default=0.0,
    )
    lora_targets: str = arg(
        "modules to adapt: 'all-linear' or a comma list (q_proj,v_proj)", default="all-linear"
    )
    lr: float = arg("peak learning rate (AdamW)", default=2e-4)
    schedule: Schedule = arg("learning-rate schedule after warmup", default=Schedule.COSINE)
    warmup_steps: int = arg("linear warmup steps", default=10)
    min_lr_ratio: float = arg("cosine floor as a fraction of --lr", default=0.1)
    weight_decay: float = arg("AdamW weight decay", default=0.0)
    max_grad_norm: float = arg("gradient clipping norm (0: off)", default=1.0)
    max_steps: int = arg("optimizer steps", default=1000)
    grad_accum: int = arg("micro-batches per optimizer step (per process)", default=4)
    micro_batch_tokens: int | None = arg(
        "padded tokens per micro-batch (default: --max-seq-len; short sequences share one)",
        default=None,
    )
    dtype: str = arg(
        "auto (bf16 on GPUs that support it; bf16-mixed on CPUs with native bf16, AVX-512 BF16 "
        "or AMX; else float32), bfloat16, bf16-mixed (float32 weights, bf16 matrix products), "
        "float32",
        default="auto",
    )
    gradient_checkpointing: bool = arg(
        "recompute activations in backward: less memory, ~20-30 %% slower; off by default, "
        "since a frozen base with LoRA at a few thousand tokens fits in memory",
        default=False,
    )
    eval_every: int = arg("steps between eval-loss measurements (0: only at the end)", default=100)
    eval_sequences: int = arg("held-back sequences in the eval loss", default=16)
    save_every: int = arg("steps between checkpoints (0: none until the end)", default=100)
    keep_checkpoints: int = arg("checkpoints kept on disk", default=2)
    snapshot_every: int = arg(
        "steps between adapter-only snapshots (out/snapshots/step-N, ~19 MB for SmolLM2 at "
        "r=16), all kept: score them to find where held-out gains peak (0: none)",
        default=0,
    )
    resume: bool = arg("continue from the newest checkpoint in --out", default=False)
    init_adapter: Path | None = arg(
        "start the LoRA weights from this adapter folder (from manyicl-finetune, same --lora-r, "
        "--lora-alpha and --lora-targets) instead of a fresh init: training continues a "
        "finished adapter with a new recipe; a checkpoint found by --resume takes precedence",
        default=None,
    )
    seed: int = arg("seed for data order, shot counts, LoRA init and dropout", default=0)
    dricl_alpha: float = arg("DrICL: weight between many-shot and zero-shot terms", default=0.2)
    dricl_gamma: float = arg("DrICL: reweighting temperature", default=11.0)
    dricl_window: int = arg("DrICL: earlier answers in the reweighting baseline", default=10)

    def __post_init__(self) -> None:
        problems = [msg for bad, msg in self._checks() if bad]
        if problems:
            raise ValueError("; ".join(problems))
        if self.objective is Objective.ZERO_SHOT and self.shots not in ("max", "1"):
            raise ValueError("zero-shot trains on one example per sequence: drop --shots")
        high = ShotRange.parse(self.shots).high  # raises with its own message
        if self.min_shots and high is not None and high <= self.min_shots:
            raise ValueError(
                f"--min-shots {self.min_shots} leaves no answer to train in sequences of at "
                f"most {high} demonstrations (--shots {self.shots})"
            )

    def _checks(self) -> list[tuple[bool, str]]:
        positive = ("lora_r", "lora_alpha", "max_steps", "grad_accum", "eval_sequences")
        positive += ("keep_checkpoints", "dricl_window", "lr", "dricl_gamma")
        unit = ("remap_prob", "mix_prob", "min_lr_ratio", "dricl_alpha")
        at_least_16 = ("max_seq_len", "micro_batch_tokens")
        return [
            *[(getattr(self, n) <= 0, f"--{_flag(n)} must be > 0") for n in positive],
            *[(not _in_unit(getattr(self, n)), f"--{_flag(n)} must be in [0, 1]") for n in unit],
            *[(_below(getattr(self, n), 16), f"--{_flag(n)} must be >= 16") for n in at_least_16],
            (not 0 <= self.lora_dropout < 1, "--lora-dropout must be in [0, 1)"),
            (self.warmup_steps < 0, "--warmup-steps must be >= 0"),
            (self.min_shots < 0, "--min-shots must be >= 0"),
            (
                self.min_shots > 0 and self.objective is not Objective.ALL_TARGETS,
                "--min-shots applies to --objective all-targets only",
            ),
            (self.dtype not in DTYPES, f"--dtype must be one of {', '.join(DTYPES)}"),
            (
                min(self.eval_every, self.save_every, self.snapshot_every) < 0,
                "--eval-every/--save-every/--snapshot-every must be >= 0",
            ),
        ]

    @property
    def shot_range(self) -> ShotRange:
        if self.objective is Objective.ZERO_SHOT:
            return ShotRange(1, 1)
        return ShotRange.parse(self.shots)

    @property
    def effective_loss_norm(self) -> LossNorm:
        """The normalisation training uses: DrICL's objective is defined per answer, so it
        overrides --loss-norm; the manifest records this one, not the flag."""
        return LossNorm.ANSWER if self.objective is Objective.DRICL else self.loss_norm

    @property
    def lora(self) -> dict[str, Any]:
        targets = self.lora_targets
        return {
            "r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "target_modules": targets if targets == "all-linear" else targets.split(","),
        }

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


# What a saved config never sets: where this run writes, and whether it resumes.
_RUN_ONLY = ("out", "resume")


def reproducible(training: dict[str, Any]) -> dict[str, Any]:
    """A config's JSON (`FinetuneConfig.to_json()`, a manifest's `training`) as a `--config`
    file: without the run-only fields; a packaged mixture by its file name (its absolute path
    differs per machine), the default one not at all."""
    data = {k: v for k, v in training.items() if k not in _RUN_ONLY}
    mixture = Path(data["mixture"])
    if mixture == DEFAULT_MIXTURE:
        del data["mixture"]
    elif mixture.parent == DEFAULT_MIXTURE.parent:
        data["mixture"] = mixture.name
    return data


def config_defaults(path: Path) -> dict[str, Any]:
    """Flag defaults from a `--config` JSON file; unknown keys are an error."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"--config {path}: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a JSON object of flag values")
    known = {f.name for f in fields(FinetuneConfig)} - set(_RUN_ONLY)
    if unknown := sorted(set(data) - known):
        raise ValueError(f"--config {path}: unknown or run-only keys {unknown}")
    return data


def parse_config(argv: list[str] | None = None) -> FinetuneConfig:
    """FinetuneConfig from the command line; a bad value exits with the reason (status 2)."""
    parser = argparse.ArgumentParser(
        prog="manyicl-finetune",
        description="Train one LoRA adapter for many-shot in-context learning on a multi-task "
        "mixture. Writes a PEFT adapter plus manyicl.json (base model, prompt format, config, "
        "metrics) to --out; the server reads both. Multi-process: torchrun --nproc-per-node N "
        "-m manyicl.finetune.cli ...  Averaging trained adapters into one: "
        "manyicl-finetune soup --help. Each task's many-shot gain under the base model, to "
        "choose a mixture: manyicl-finetune learnability --help. Tasks that only the "
        "demonstrations solve, added to a mixture: manyicl-finetune synthetic --help.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="JSON file of flag values used as defaults (flags given override), e.g. "
        "manyicl/adapters/smollm2-135m-manyicl/finetune.json, which reproduces the shipped "
        "adapter",
    )
    return parse_dataclass(parser, FinetuneConfig, argv, defaults=_config_file)


def _config_file(given: argparse.Namespace) -> dict[str, Any]:
    return config_defaults(given.config) if given.config else {}


def _flag(field: str) -> str:
    return field.replace("_", "-")


def _in_unit(value: float | None) -> bool:
    """In [0, 1], or None (--remap-prob, --mix-prob unset: the mixture's value is used)."""
    return value is None or 0 <= value <= 1


def _below(value: int | None, least: int) -> bool:
    """Set and under `least` (None: the default length is used)."""
    return value is not None and value < least
