"""The quality experiment: base model vs fine-tuned variants on held-out tasks, paired.

    .venv/bin/python benchmarks/quality.py --out docs/RESULTS.md

Stages (each skipped when its output exists, so an interrupted run resumes; training and
evaluation checkpoint and resume themselves):
  1. train the variants on the default mixture (label-remapped classification sequences
     included) with equal token budgets: the real tokens of --steps all-targets steps;
  2. `manyicl-eval` the base model, every variant and any --also adapter on the held-out tasks
     and their label-remapped copies, every model on the same examples and demonstrations;
  3. the validation tasks (held out, never reported: where variants and checkpoints are
     chosen), then forgetting: zero-shot scores on general tasks;
  4. with --scaling, the score-vs-shots sweep up to the model's context;
then docs/RESULTS.md: the goals, paired differences from the base and from last-target with
bootstrap intervals, tables and plots. --publish ships the all-targets adapter only if it met
every goal.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
from functools import partial
from pathlib import Path

import torch
from common import run_benchmark
from quality_doc import BASE, OURS, goals, write_results

from manyicl.evaluate.cli import parse_config
from manyicl.evaluate.cli import run as run_eval
from manyicl.finetune.config import FinetuneConfig, Schedule, reproducible
from manyicl.finetune.mixture import DEFAULT_MIXTURE, heldout_eval_tasks
from manyicl.finetune.objectives import Objective
from manyicl.finetune.sequences import SequenceStream, StepPlanner, plan_length
from manyicl.finetune.setup import prepare
from manyicl.finetune.trainer import train
from manyicl.manifest import (
    CONFIG_FILE,
    DEFAULT_ADAPTER,
    WEIGHTS_FILE,
    model_fingerprint,
    read_manifest,
    write_manifest,
)
from manyicl.models import registry_name, resolve_model

VARIANTS = {
    OURS: Objective.ALL_TARGETS,
    "last-target FT": Objective.LAST_TARGET,
    "zero-shot FT": Objective.ZERO_SHOT,
    "DrICL": Objective.DRICL,
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def train_config(objective: Objective, out: Path, args, steps: int) -> FinetuneConfig:
    return FinetuneConfig(
        out=out,
        objective=objective,
        max_seq_len=args.max_seq_len,
        max_steps=steps,
        grad_accum=args.grad_accum,
        micro_batch_tokens=args.max_seq_len,
        lr=args.lr,
        schedule=Schedule(args.schedule),
        warmup_steps=max(1, steps // 10),
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        eval_every=args.eval_every,
        save_every=args.save_every,
        snapshot_every=args.eval_every,  # an adapter per eval-loss point, to find the peak
        resume=(out / "checkpoints").is_dir(),
        seed=args.seed,
        model=args.model,
        mixture=args.mixture,
        mix_prob=args.mix_prob,
    )


def tokens_per_step(cfg: FinetuneConfig, n: int = 20) -> float:
    """Mean real (unpadded) tokens in one optimizer step of `cfg`'s data stream; no model."""
    with tempfile.TemporaryDirectory() as tmp:
        setup = prepare(dataclasses.replace(cfg, out=Path(tmp), resume=False))
    stream = SequenceStream(
        setup.tasks, setup.max_seq_len, cfg.shot_range, cfg.seed, setup.remapping
    )
    planner = StepPlanner(stream, 1, cfg.grad_accum, cfg.micro_batch_tokens or setup.max_seq_len)
    steps = [planner.next_step()[0] for _ in range(n)]
    return sum(plan_length(setup.tasks, p) for s in steps for mb in s for p in mb) / n


def matched_steps(objective: Objective, out: Path, args) -> int:
    """Steps that give `objective` the token budget of `--steps` all-targets steps (zero-shot
    sequences are one short example each, so the same budget takes it more steps)."""
    if objective is Objective.ALL_TARGETS or objective is Objective.LAST_TARGET:
        return args.steps  # the same stream of sequences: the same tokens
    cfg = partial(train_config, out=out, args=args, steps=args.steps)
    budget = args.steps * tokens_per_step(cfg(Objective.ALL_TARGETS))
    return max(1, round(budget / tokens_per_step(cfg(objective))))


def train_variant(objective: Objective, out: Path, args) -> Path:
    """Train (or resume, or skip when finished) one adapter."""
    if not (out / "manyicl.json").is_file():
        train(train_config(objective, out, args, matched_steps(objective, out, args)))
    return out


def evaluate(name: str, adapter: Path | None, out: Path, args, **overrides) -> dict:
    """`manyicl-eval` of one model, resumable; --eval-args apply to every run."""
    argv = ["--out", str(out), "--model", args.model, "--name", name, *args.eval_args.split()]
    argv += ["--adapter", str(adapter)] if adapter else []
    cfg = dataclasses.replace(parse_config(argv), **overrides)
    return run_eval(cfg)


def side_stage(key: str, models: dict, args, **overrides) -> dict:
    """Every model on another task list (validation, forgetting), under --runs/<key>/."""
    return {
        n: evaluate(n, a, args.runs / key / slug(n), args, **overrides) for n, a in models.items()
    }


def publish(adapter: Path, eval_dir: Path, dest: Path, model: str) -> None:
    """Ship `adapter` as the package's default: weights cast to bf16 (half the bytes), the
    manifest naming its base by registry name, its eval table, and `finetune.json`, with which
    `manyicl-finetune --config` trains the same adapter again."""
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    weights = load_file(adapter / WEIGHTS_FILE)
    save_file(
        {k: v.to(torch.bfloat16) for k, v in weights.items()},
        dest / WEIGHTS_FILE,
        metadata={"format": "pt"},
    )
    shutil.copy(adapter / CONFIG_FILE, dest / CONFIG_FILE)
    manifest = read_manifest(adapter)
    base_path = resolve_model(model)
    if base_path != manifest.base_model.path:
        raise SystemExit(f"{adapter} was not trained on {model}")
    update = {"registry": registry_name(model), "fingerprint": model_fingerprint(base_path)}
    base = manifest.base_model.model_copy(update=update)
    write_manifest(dest, manifest.model_copy(update={"base_model": base}))
    config = json.dumps(reproducible(manifest.training), indent=2)
    (dest / "finetune.json").write_text(config + "\n")
    shutil.copy(eval_dir / "results.md", dest / "EVAL.md")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--runs", type=Path, default=Path("runs/quality"))
    add("--model", default="default")
    add("--mixture", type=Path, default=DEFAULT_MIXTURE)
    add(
        "--mix-prob",
        type=float,
        default=None,
        help="share of task-identification sequences (default: the mixture's mix_prob)",
    )
    add("--out", type=Path, default=Path("docs/RESULTS.md"))
    add("--steps", type=int, default=128, help="all-targets steps; every variant gets their tokens")
    add("--max-seq-len", type=int, default=2048)
    add("--grad-accum", type=int, default=4)
    add("--lr", type=float, default=5e-4)
    add("--schedule", choices=["cosine", "constant"], default="cosine")
    add("--lora-r", type=int, default=16, help="LoRA rank (alpha = 2 x rank)")
    add("--eval-every", type=int, default=32)
    add("--save-every", type=int, default=8)
    add("--seed", type=int, default=0)
    add("--eval-args", default="", help="extra manyicl-eval flags for every evaluation")
    add(
        "--validation",
        help="held-out tasks scored for choosing between variants, never reported as the "
        "result (default: the --mixture's [heldout] validation list; '' skips them)",
    )
    add(
        "--forgetting",
        help="zero-shot general tasks for the forgetting check (default: the --mixture's "
        "[heldout] forgetting list; '' skips them)",
    )
    add(
        "--variants",
        default=f"{OURS},last-target FT",
        help=f"fine-tuning variants to train and compare, from {list(VARIANTS)}",
    )
    add("--also", action="append", default=[], help="NAME=ADAPTER: evaluate an existing adapter")
    add("--scaling", action="store_true", help="also the --preset scaling sweep of every model")
    add("--publish", action="store_true", help=f"ship {OURS} to {DEFAULT_ADAPTER} if it wins")
    return with_heldout_defaults(parser.parse_args())


def with_heldout_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """--validation and --forgetting, where not given, from the --mixture's [heldout] lists."""
    for key in ("validation", "forgetting"):
        if getattr(args, key) is None:
            setattr(args, key, ",".join(heldout_eval_tasks(args.mixture, key)))
    return args


def main() -> None:
    args = parse_args()
    chosen = [v for v in args.variants.split(",") if v]
    if unknown := set(chosen) - set(VARIANTS):
        raise SystemExit(f"unknown --variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    adapters = {n: train_variant(VARIANTS[n], args.runs / "train" / slug(n), args) for n in chosen}
    extra = dict(a.split("=", 1) for a in args.also)
    models = {BASE: None, **adapters, **{n: Path(p) for n, p in extra.items()}}
    stages: dict[str, dict] = {"eval": {}, "validation": {}, "forgetting": {}, "scaling": {}}
    for name, adapter in models.items():  # each stage rewrites the doc: a partial run is kept
        stages["eval"][name] = evaluate(name, adapter, args.runs / "eval" / slug(name), args)
        write_results(args, stages, adapters)
    if args.validation:
        stages["validation"] = side_stage("validation", models, args, tasks=args.validation)
    if args.forgetting:
        zero_shot = {"tasks": args.forgetting, "shots": "0", "remap": ""}
        stages["forgetting"] = side_stage("forgetting", models, args, **zero_shot)
    write_results(args, stages, adapters)
    for name, adapter in models.items() if args.scaling else ():
        out = args.runs / "scaling" / slug(name)
        preset = parse_config(["--out", str(out), "--preset", "scaling"])
        overrides = {k: getattr(preset, k) for k in ("tasks", "shots", "seeds", "eval_examples")}
        stages["scaling"][name] = evaluate(
            name, adapter, out, args, **overrides, max_context=preset.max_context
        )
        write_results(args, stages, adapters)
    if args.publish and OURS in adapters:
        verdict = goals(stages)
        if all(g["met"] for g in verdict):
            publish(adapters[OURS], args.runs / "eval" / slug(OURS), DEFAULT_ADAPTER, args.model)
            print(f"published {adapters[OURS]} to {DEFAULT_ADAPTER}")
        else:
            print("not published: " + "; ".join(g["goal"] for g in verdict if not g["met"]))


if __name__ == "__main__":
    run_benchmark(main)
