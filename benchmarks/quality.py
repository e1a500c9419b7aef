"""The quality experiment: base model vs fine-tuned variants on held-out tasks, shots sweep.

    .venv/bin/python benchmarks/quality.py --out docs/RESULTS.md

Stages (each skipped when its output exists, so an interrupted run resumes; training itself
checkpoints and resumes):
  1. train zero-shot, last-target, all-targets and DrICL adapters on the default mixture with
     equal token budgets: the real tokens of --steps all-targets steps (zero-shot sequences
     are short, so it takes more steps);
  2. `manyicl-eval` the base model and every adapter on the held-out eval tasks;
  3. task-level LoRA: one adapter per listed held-out task, trained on that task's own
     demonstration pool (the dedicated fine-tuning reference), scored at 0 shots;
  4. forgetting: zero-shot scores on general tasks, base vs each adapter;
then docs/RESULTS.md with the tables and the score-vs-shots plot.
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
from quality_doc import OURS, write_results

from manyicl.evaluate.cli import EvalConfig, load_tasks
from manyicl.evaluate.cli import run as run_eval
from manyicl.evaluate.runner import split_task
from manyicl.finetune.config import FinetuneConfig, reproducible
from manyicl.finetune.mixture import DEFAULT_MIXTURE, heldout_eval_tasks
from manyicl.finetune.objectives import Objective
from manyicl.finetune.sequences import SequenceStream, StepPlanner, plan_length
from manyicl.finetune.setup import prepare
from manyicl.finetune.trainer import train
from manyicl.manifest import DEFAULT_ADAPTER, model_fingerprint, read_manifest, write_manifest
from manyicl.models import registry_name, resolve_model

VARIANTS = {
    "zero-shot FT": Objective.ZERO_SHOT,
    "last-target FT": Objective.LAST_TARGET,
    OURS: Objective.ALL_TARGETS,
    "DrICL": Objective.DRICL,
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def train_config(objective: Objective, out: Path, args, mixture: Path | None, steps: int):
    return FinetuneConfig(
        out=out,
        objective=objective,
        max_seq_len=args.max_seq_len,
        max_steps=steps,
        grad_accum=args.grad_accum,
        micro_batch_tokens=args.max_seq_len,
        lr=args.lr,
        warmup_steps=max(1, steps // 10),
        eval_every=args.eval_every,
        save_every=args.save_every,
        resume=(out / "checkpoints").is_dir(),
        seed=args.seed,
        model=args.model,
        mixture=mixture or args.mixture,
    )


def tokens_per_step(cfg: FinetuneConfig, n: int = 20) -> float:
    """Mean real (unpadded) tokens in one optimizer step of `cfg`'s data stream; no model."""
    with tempfile.TemporaryDirectory() as tmp:
        setup = prepare(dataclasses.replace(cfg, out=Path(tmp), resume=False))
    stream = SequenceStream(setup.tasks, setup.max_seq_len, cfg.shot_range, cfg.seed)
    planner = StepPlanner(stream, 1, cfg.grad_accum, cfg.micro_batch_tokens or setup.max_seq_len)
    steps = [planner.next_step()[0] for _ in range(n)]
    return sum(plan_length(setup.tasks, p) for s in steps for mb in s for p in mb) / n


def matched_steps(objective: Objective, out: Path, args) -> int:
    """Steps that give `objective` the token budget of `--steps` all-targets steps: zero-shot
    sequences are one short example each, so the same budget takes it more steps."""
    cfg = partial(train_config, out=out, args=args, mixture=None, steps=args.steps)
    budget = args.steps * tokens_per_step(cfg(Objective.ALL_TARGETS))
    return max(1, round(budget / tokens_per_step(cfg(objective))))


def train_variant(
    objective: Objective, out: Path, args, mixture: Path | None = None, steps: int | None = None
) -> Path:
    """Train (or resume, or skip when finished) one adapter."""
    if (out / "manyicl.json").is_file():
        return out
    steps = steps or matched_steps(objective, out, args)
    train(train_config(objective, out, args, mixture, steps))
    return out


def evaluate(name: str, adapter: Path | None, out: Path, args, tasks: str, shots: str) -> dict:
    """`manyicl-eval` once per (variant, task list); cached in results.json."""
    if (out / "results.json").is_file():
        return json.loads((out / "results.json").read_text())
    cfg = EvalConfig(
        out=out,
        model=args.model,
        adapter=adapter,
        tasks=tasks,
        shots=shots,
        seeds=args.seeds,
        eval_examples=args.eval_examples,
        max_new_tokens=args.max_new_tokens,
        max_context=args.max_context,
        name=name,
    )
    return run_eval(cfg)


def task_level_adapter(task_name: str, root: Path, args) -> Path:
    """A LoRA trained only on one held-out task's demonstration pool (never its eval set)."""
    (task,) = load_tasks(task_name)
    split = split_task(task, args.eval_examples)
    folder = root / "task-level" / slug(task_name)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"input": e.input, "output": e.output} for e in split.pool]
    (folder / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "mixture.toml").write_text(
        f"[settings]\neval_examples = 8\nmin_examples = 16\nmax_examples = 100000\n"
        f'[[task]]\nname = "{slug(task_name)}"\nsource = "jsonl"\npath = "pool.jsonl"\n'
    )
    return train_variant(
        Objective.ZERO_SHOT,
        folder / "adapter",
        args,
        folder / "mixture.toml",
        args.task_level_steps,
    )


def publish(adapter: Path, eval_dir: Path, dest: Path, model: str) -> None:
    """Ship `adapter` as the package's default: weights cast to bf16 (half the bytes; vLLM
    computes in bf16 anyway), the manifest naming its base by registry name, its eval table,
    and `finetune.json`: `manyicl-finetune --config` with it trains the same adapter again."""
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    weights = load_file(adapter / "adapter_model.safetensors")
    save_file(
        {k: v.to(torch.bfloat16) for k, v in weights.items()},
        dest / "adapter_model.safetensors",
        metadata={"format": "pt"},
    )
    shutil.copy(adapter / "adapter_config.json", dest / "adapter_config.json")
    manifest = read_manifest(adapter)
    # By registry name, fingerprinted as this version computes it: the base is the same folder
    # it was trained on (checked), only the way of naming it changes.
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
    parser.add_argument("--runs", type=Path, default=Path("runs/quality"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--mixture", type=Path, default=DEFAULT_MIXTURE)
    parser.add_argument(
        "--forgetting",
        default=",".join(heldout_eval_tasks(key="forgetting")),
        help="zero-shot general tasks for the forgetting check",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/RESULTS.md"))
    parser.add_argument(
        "--steps",
        type=int,
        default=32,
        help="all-targets steps; every variant gets the tokens these steps hold",
    )
    parser.add_argument("--max-seq-len", type=int, default=1024)
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--eval-every", type=int, default=16)
    parser.add_argument("--save-every", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shots", default="0,1,4,16,max")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--eval-examples", type=int, default=30)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--max-context", type=int, default=2048)
    parser.add_argument("--tasks", default="heldout", help="eval tasks (see manyicl-eval)")
    parser.add_argument(
        "--task-level",
        default="bigbench:intent_recognition,bigbench:linguistic_mappings/plural_json",
        help="held-out tasks that get their own dedicated adapter",
    )
    parser.add_argument("--task-level-steps", type=int, default=30)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="fine-tuning variants to train and compare (names as in the default)",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help=f"copy the all-targets adapter to {DEFAULT_ADAPTER} (the shipped default)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    chosen = [v for v in args.variants.split(",") if v]
    if unknown := set(chosen) - set(VARIANTS):
        raise SystemExit(f"unknown --variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    adapters = {n: train_variant(VARIANTS[n], args.runs / "train" / slug(n), args) for n in chosen}
    models = {"base (ICL only)": None, **adapters}
    shots = {
        n: evaluate(n, a, args.runs / "eval" / slug(n), args, args.tasks, args.shots)
        for n, a in models.items()
    }
    write_results(args, shots, {}, {}, adapters)  # each stage rewrites the doc: partial is kept
    if args.publish:
        publish(adapters[OURS], args.runs / "eval" / slug(OURS), DEFAULT_ADAPTER, args.model)
    dedicated = {}
    for task in filter(None, args.task_level.split(",")):
        adapter = task_level_adapter(task, args.runs, args)
        out = args.runs / "task-level" / slug(task) / "eval"
        dedicated[task] = evaluate(f"task-level LoRA: {task}", adapter, out, args, task, "0")
    write_results(args, shots, {}, dedicated, adapters)
    forgetting = {
        n: evaluate(n, a, args.runs / "forgetting" / slug(n), args, args.forgetting, "0")
        for n, a in models.items()
        if args.forgetting
    }
    write_results(args, shots, forgetting, dedicated, adapters)


if __name__ == "__main__":
    main()
