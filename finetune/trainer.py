"""The training loop: prepare (every check before any compute), then steps, evals, checkpoints.

train(FinetuneConfig(out=Path("out")))   # what `manyicl-finetune --out out` runs
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from tqdm import tqdm

import manyicl
from manyicl.cpu import cpu_flags, has_native_bf16
from manyicl.finetune.batching import collate, loss_count, loss_sum
from manyicl.finetune.checkpoint import (
    latest_checkpoint,
    load_adapter_weights,
    load_checkpoint,
    save_checkpoint,
    save_snapshot,
)
from manyicl.finetune.config import FinetuneConfig, Schedule
from manyicl.finetune.heldout_loss import eval_losses
from manyicl.finetune.losses import DriclParams
from manyicl.finetune.modeling import (
    DistEnv,
    Precision,
    load_lora_model,
    resolve_precision,
    wrap_ddp,
)
from manyicl.finetune.sequences import (
    SequenceStream,
    StepPlanner,
    materialise,
)
from manyicl.finetune.setup import Setup, prepare
from manyicl.manifest import (
    AdapterManifest,
    BaseModelRef,
    model_fingerprint,
    write_manifest,
)
from manyicl.models import registry_name


def get_lr(step: int, cfg: FinetuneConfig) -> float:
    """Linear warmup to --lr, then constant or cosine down to --min-lr-ratio x --lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule is Schedule.CONSTANT:
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


@dataclass(frozen=True)
class TrainResult:
    manifest: AdapterManifest
    model: torch.nn.Module  # the trained peft model, as saved


def train(cfg: FinetuneConfig, stop_after: int | None = None) -> TrainResult | None:
    """Run the whole job. `stop_after` ends the loop after that step as a kill would
    (tests use it to check --resume)."""
    env = DistEnv.from_env()
    setup = prepare(cfg)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    precision = resolve_precision(cfg.dtype, env.device, has_native_bf16(cpu_flags()))
    model = load_lora_model(
        setup.model_path, precision.weights, env.device, cfg.lora, cfg.gradient_checkpointing
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    counters = {"step": 0, "tokens": 0, "answers": 0, "train_loss": None}
    if cfg.resume and (ckpt := latest_checkpoint(cfg.out)):
        counters = load_checkpoint(ckpt, model, optimizer)
        if env.is_main:
            _truncate_metrics(cfg.out / "metrics.jsonl", counters["step"])
    elif cfg.init_adapter:
        load_adapter_weights(cfg.init_adapter, model)
    loop = _Loop(cfg, setup, env, precision, model, wrap_ddp(model, env), optimizer, counters)
    if not loop.run(stop_after):
        return None
    return TrainResult(_finish(cfg, setup, env, model, loop), model)


@dataclass
class _Loop:
    cfg: FinetuneConfig
    setup: Setup
    env: DistEnv
    precision: Precision
    model: torch.nn.Module  # the peft model (what is saved)
    ddp: torch.nn.Module  # what runs forward (DDP-wrapped when world > 1)
    optimizer: torch.optim.Optimizer
    counters: dict

    def run(self, stop_after: int | None) -> bool:
        """Train to --max-steps (True), or to `stop_after` (False)."""
        cfg, env = self.cfg, self.env
        setup = self.setup
        micro = cfg.micro_batch_tokens or setup.max_seq_len
        stream = SequenceStream(
            setup.tasks, setup.max_seq_len, cfg.shot_range, cfg.seed, setup.remapping
        )
        planner = StepPlanner(stream, env.world, cfg.grad_accum, micro)
        for _ in range(self.counters["step"]):  # replay the data order to where we stopped
            planner.next_step()
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.counters["step"],
            disable=not env.is_main,
            desc=f"{cfg.objective} training",
            unit="step",
        )
        while self.counters["step"] < cfg.max_steps:
            started = time.perf_counter()
            loss, tokens, answers = self._step(planner.next_step()[env.rank])
            self._after_step(loss, tokens, answers, time.perf_counter() - started, bar)
            if stop_after is not None and self.counters["step"] >= stop_after:
                bar.close()
                return False
        bar.close()
        return True

    def _step(self, micro_batches) -> tuple[float, int, int]:
        cfg, env, setup = self.cfg, self.env, self.setup
        batches = [
            collate(
                [materialise(setup.tasks, p) for p in plans],
                cfg.objective,
                setup.pad_id,
                cfg.min_shots,
            ).to(env.device)
            for plans in micro_batches
        ]
        norm = cfg.effective_loss_norm
        total = env.all_sum(sum(loss_count(b, cfg.objective, norm) for b in batches))
        dricl = DriclParams(cfg.dricl_alpha, cfg.dricl_gamma, cfg.dricl_window)
        step_loss = 0.0
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            sync = self.ddp.no_sync() if env.world > 1 and not last else _nullcontext()
            with sync:
                # DDP averages gradients over ranks; x world makes it the global-sum / total.
                with self.precision.autocast(env.device):
                    loss = loss_sum(self.ddp, batch, cfg.objective, norm, dricl) / max(total, 1)
                (loss * env.world).backward()
            step_loss += float(loss.detach())
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], cfg.max_grad_norm
            )
        for group in self.optimizer.param_groups:
            group["lr"] = get_lr(self.counters["step"], cfg)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        tokens = env.all_sum(sum(b.n_tokens for b in batches))
        answers = env.all_sum(sum(int(b.n_answers.sum()) for b in batches))
        return env.all_sum(step_loss), int(tokens), int(answers)

    def _after_step(self, loss: float, tokens: int, answers: int, seconds: float, bar) -> None:
        cfg, c = self.cfg, self.counters
        c["step"] += 1
        c["tokens"] += tokens
        c["answers"] += answers
        c["train_loss"] = loss
        record = {
            "step": c["step"],
            "loss": round(loss, 5),
            "lr": get_lr(c["step"] - 1, cfg),
            "tokens_per_s": round(tokens / seconds, 1),
            "answers_per_s": round(answers / seconds, 2),
            "tokens": c["tokens"],
        }
        if cfg.eval_every and c["step"] % cfg.eval_every == 0 and c["step"] < cfg.max_steps:
            record |= eval_losses(
                self.ddp, self.setup.eval_seqs, self.setup.pad_id, self.env, self.precision
            )
        bar.set_postfix(
            loss=f"{loss:.3f}", tok_s=f"{tokens / seconds:.0f}", ans_s=f"{answers / seconds:.1f}"
        )
        bar.update(1)
        if self.env.is_main:
            self.cfg.out.mkdir(parents=True, exist_ok=True)
            with (cfg.out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(record) + "\n")
            self._save(record)
        self.env.barrier()

    def _save(self, record: dict) -> None:
        """The checkpoint and the adapter snapshot due at this step, if any (main rank)."""
        cfg, c = self.cfg, self.counters
        due = [n and c["step"] % n == 0 for n in (cfg.save_every, cfg.snapshot_every)]
        if not any(due):
            return
        metrics = {"train_loss": c["train_loss"], "eval_loss": record.get("eval_loss")}
        manifest = _manifest(cfg, self.setup, c, metrics)
        if due[0]:
            save_checkpoint(
                cfg.out, c["step"], self.model, self.optimizer, dict(c), cfg.keep_checkpoints,
                manifest,
            )  # fmt: skip
        if due[1]:
            save_snapshot(cfg.out, c["step"], self.model, manifest)


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records of steps after the checkpoint: they are about to be trained again."""
    if path.is_file():
        keep = [
            line
            for line in path.read_text().splitlines()
            if line.strip() and json.loads(line)["step"] <= step
        ]
        path.write_text("".join(line + "\n" for line in keep))


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _manifest(cfg: FinetuneConfig, setup: Setup, c: dict, metrics: dict) -> AdapterManifest:
    """What makes a folder of LoRA weights a manyicl adapter: the final one and every
    checkpoint carry it, so `manyicl-eval` and `manyicl-serve` load either."""
    return AdapterManifest(
        manyicl_version=manyicl.__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        base_model=BaseModelRef(
            path=setup.model_path,
            fingerprint=model_fingerprint(setup.model_path),
            registry=registry_name(cfg.model),
        ),
        prompt_format=setup.fmt,
        objective=str(cfg.objective),
        loss_norm=str(cfg.effective_loss_norm),
        max_seq_len=setup.max_seq_len,
        lora=cfg.lora,
        training=cfg.to_json(),
        steps=c["step"],
        tokens_trained=c["tokens"],
        seed=cfg.seed,
        metrics=metrics,
        missing_tasks=list(setup.missing),
    )


def _finish(cfg: FinetuneConfig, setup: Setup, env: DistEnv, model, loop: _Loop):
    """Final eval, then the adapter and its manifest (rank 0 writes)."""
    final_eval = eval_losses(loop.ddp, setup.eval_seqs, setup.pad_id, env, loop.precision)
    c = loop.counters
    metrics = {"train_loss": c["train_loss"], "eval_loss": None, **final_eval}
    manifest = _manifest(cfg, setup, c, metrics)
    if env.is_main:
        cfg.out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(cfg.out)
        write_manifest(cfg.out, manifest)
    env.barrier()
    return manifest
