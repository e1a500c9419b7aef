"""Training speed of the objectives and of the speed-ups, side by side in one run.

    .venv/bin/python benchmarks/finetune_speed.py --steps 6 --max-seq-len 2048 \\
        --out docs/FINETUNE_BENCHMARKS.md

Variants: plain causal-LM (every token supervised); all-targets as it trained before
2026-11-24 (logits at every position, gradient checkpointing, LoRA dropout 0.05, float32);
all-targets with one of today's defaults undone at a time; all-targets with all of them (LM head
only at supervised positions, no checkpointing, no LoRA dropout) in float32 and in bf16-mixed
(float32 weights, bf16 matrix products: `--dtype auto` on a CPU with native bf16);
the same with LoRA on the attention projections only; last-target; DrICL (these four
in `--dtype auto`'s precision). One process runs them interleaved (one model per set of LoRA
target modules): every round trains each variant one step on the same packed sequence,
in a rotating order, so machine noise (this is a shared VM) falls on all of them alike.
Reported: the median over rounds of tokens/s and supervised answers/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from common import command, kept_section, machine, run_benchmark, today

from manyicl.finetune.mixture import DEFAULT_MIXTURE

ATTENTION = "q_proj,k_proj,v_proj,o_proj"  # `--lora-targets` for LoRA on attention only


class Variant(NamedTuple):
    objective: str
    full_logits: bool  # logits at every position, not only at the supervised ones
    checkpointing: bool
    dropout: float  # LoRA dropout
    dtype: str  # `--dtype`: float32, or auto (bf16-mixed on a CPU with native bf16)
    targets: str = "all-linear"  # `--lora-targets`


READING = "## Reading the numbers"
ATTENTION_ONLY = "all-targets, LoRA on attention only"
BEFORE, AFTER = "all-targets, before (full logits, checkpointing, dropout 0.05)", "all-targets"
VARIANTS = {
    "causal-lm": Variant("causal-lm", True, False, 0.0, "float32"),
    BEFORE: Variant("all-targets", True, True, 0.05, "float32"),
    "all-targets, full logits": Variant("all-targets", True, False, 0.0, "float32"),
    "all-targets, checkpointing": Variant("all-targets", False, True, 0.0, "float32"),
    "all-targets, LoRA dropout 0.05": Variant("all-targets", False, False, 0.05, "float32"),
    "all-targets, float32": Variant("all-targets", False, False, 0.0, "float32"),
    AFTER: Variant("all-targets", False, False, 0.0, "auto"),
    ATTENTION_ONLY: Variant("all-targets", False, False, 0.0, "auto", ATTENTION),
    "last-target": Variant("last-target", False, False, 0.0, "auto"),
    "dricl": Variant("dricl", True, False, 0.0, "auto"),
}


def configure(model, checkpointing: bool, dropout: float) -> None:
    """Switch gradient checkpointing and LoRA dropout of a peft model in place (as peft builds
    it: a Dropout module per adapted layer, or Identity when the rate is 0)."""
    import torch

    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    else:
        model.gradient_checkpointing_disable()
    for module in model.modules():
        if isinstance(getattr(module, "lora_dropout", None), torch.nn.ModuleDict):
            for name in module.lora_dropout:
                layer = torch.nn.Dropout(dropout) if dropout else torch.nn.Identity()
                module.lora_dropout[name] = layer


def loss_of(spec: Variant, model, seq, pad_id: int):
    """(mean loss, supervised answers, tokens) of one sequence under `spec`."""
    from manyicl.finetune.batching import collate, loss_count, loss_sum
    from manyicl.finetune.losses import DriclParams, token_loss_sum
    from manyicl.finetune.objectives import IGNORE, LossNorm, Objective

    objective = spec.objective
    labelled = Objective.ALL_TARGETS if objective == "causal-lm" else Objective(objective)
    batch = collate([seq], labelled, pad_id)
    if objective == "causal-lm":  # every real token is a target
        labels = batch.input_ids.masked_fill(batch.attention_mask == 0, IGNORE)
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        loss = token_loss_sum(logits, labels) / int((labels[:, 1:] != IGNORE).sum())
        return loss, len(seq.prompt.examples), batch.n_tokens
    if spec.full_logits and objective != "dricl":
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        loss = token_loss_sum(logits, batch.labels)
    else:
        loss = loss_sum(model, batch, Objective(objective), LossNorm.TOKEN, DriclParams())
    count = max(1, loss_count(batch, Objective(objective), LossNorm.TOKEN))  # as training does
    return loss / count, int(batch.n_answers.sum()), batch.n_tokens


def lora_models(cfg, model_path: Path, device) -> dict[str, tuple]:
    """{target modules: (float32 LoRA model, its AdamW)}, one per set the variants use."""
    import torch

    from manyicl.finetune.modeling import load_lora_model

    out = {}
    for targets in sorted({v.targets for v in VARIANTS.values()}):
        lora = replace(cfg, lora_targets=targets).lora
        model = load_lora_model(model_path, torch.float32, device, lora, False)
        trainable = [p for p in model.parameters() if p.requires_grad]
        out[targets] = model, torch.optim.AdamW(trainable, lr=1e-4)
    return out


def run(rounds: int, max_seq_len: int, mixture: Path) -> dict[str, list[tuple[float, float]]]:
    """{variant: [(tokens/s, answers/s) per timed round]}; round 0 warms up and is dropped."""
    import torch

    from manyicl.cpu import cpu_flags, has_native_bf16
    from manyicl.finetune.config import FinetuneConfig
    from manyicl.finetune.modeling import DistEnv, resolve_precision
    from manyicl.finetune.sequences import SequenceStream, materialise
    from manyicl.finetune.setup import prepare

    cfg = FinetuneConfig(
        out=Path("/nonexistent-bench-out"),
        max_seq_len=max_seq_len,
        eval_sequences=1,
        mixture=mixture,
    )
    setup, env = prepare(cfg), DistEnv.from_env()
    torch.manual_seed(0)
    native = has_native_bf16(cpu_flags())
    precisions = {d: resolve_precision(d, env.device, native) for d in ("float32", "auto")}
    models = lora_models(cfg, setup.model_path, env.device)
    stream = SequenceStream(setup.tasks, setup.max_seq_len, cfg.shot_range, 0, setup.remapping)
    names, timings = list(VARIANTS), {v: [] for v in VARIANTS}
    for rnd in range(rounds + 1):
        seq = materialise(setup.tasks, next(stream))
        for k in range(len(names)):
            variant = names[(rnd + k) % len(names)]  # rotate who goes first
            spec = VARIANTS[variant]
            model, opt = models[spec.targets]
            configure(model, spec.checkpointing, spec.dropout)
            started = time.perf_counter()
            with precisions[spec.dtype].autocast(env.device):
                loss, answers, tokens = loss_of(spec, model, seq, setup.pad_id)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - started
            if rnd:
                timings[variant].append((tokens / seconds, answers / seconds))
        print(f"round {rnd}/{rounds} done", flush=True)
    return timings


def auto_name() -> str:
    from manyicl.cpu import cpu_flags, has_native_bf16

    return "bf16-mixed" if has_native_bf16(cpu_flags()) else "float32"


def table(timings: dict, args) -> str:
    med = {v: statistics.median(t for t, _ in ts) for v, ts in timings.items()}
    lines = [
        "# Fine-tuning speed by objective",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}, device cpu.  ",
        "Setup: default model (SmolLM2-135M-Instruct), LoRA r=16 on all linear layers (on q/k/v/o "
        "only where named), float32 "
        f"weights; `auto` rows in `--dtype auto`'s precision on this CPU ({auto_name()}); one "
        f"packed sequence of up to {args.max_seq_len} tokens "
        f"per step, mixture `{args.mixture.name}`; {args.steps} timed rounds after a warm-up "
        "round, each round training every variant one step on the same sequence in a rotating "
        "order (one model per set of LoRA target modules, one process).  ",
        f"Date: {today()}",
        "",
        "| variant | dtype | tokens/s (median) | min-max | supervised answers/s | vs before | "
        "vs causal-LM |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for v, ts in timings.items():
        toks = [t for t, _ in ts]
        answers = statistics.median(a for _, a in ts)
        lines.append(
            f"| {v} | {VARIANTS[v].dtype} | {med[v]:.0f} | {min(toks):.0f}-{max(toks):.0f} | "
            f"{answers:.2f} | "
            f"{med[v] / med[BEFORE]:.2f}x | {med[v] / med['causal-lm']:.2f}x |"
        )
    lines += [
        "",
        f"All-targets trains at **{med[AFTER] / med[BEFORE]:.2f}x** the tokens/s it did "
        f"before ({med[AFTER]:.0f} vs {med[BEFORE]:.0f} tokens/s; the goal was 1.5x); in "
        f"float32 alone {med['all-targets, float32'] / med[BEFORE]:.2f}x. The "
        "logits-at-supervised-positions path gives the full path's loss and gradients "
        "(`tests/test_finetune_train.py::test_logits_at_supervised_positions_match_the_full_"
        "logits_path`). With LoRA on the attention projections only it trains at "
        f"{med[ATTENTION_ONLY] / med[AFTER]:.2f}x the tokens/s of LoRA on every linear layer "
        f"({med[ATTENTION_ONLY]:.0f} vs {med[AFTER]:.0f}).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed rounds")
    parser.add_argument("--max-seq-len", type=int, default=2048)
    parser.add_argument(
        "--mixture",
        type=Path,
        default=DEFAULT_MIXTURE,
        help="mixture whose first sequences are trained on (a small one loads fast)",
    )
    parser.add_argument("--out", type=Path, help="markdown file to write the table to")
    args = parser.parse_args()
    text = table(run(args.steps, args.max_seq_len, args.mixture), args)
    print(text)
    if args.out:
        write_doc(args.out, text)


def write_doc(out: Path, text: str) -> None:
    """`text` (the measured table) replaces the doc's, the hand-written reading below it stays."""
    kept = kept_section(out, READING)
    out.write_text(text + ("\n" + "\n".join(kept) + "\n" if kept else ""))


if __name__ == "__main__":
    run_benchmark(main)
