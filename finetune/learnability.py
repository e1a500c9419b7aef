"""`manyicl-finetune learnability`: how much the base model's answers to each training task
improve as demonstrations accumulate, the signal for a mixture of tasks it can learn in context.

Why: a many-shot objective teaches reading demonstrations only on tasks where reading them
pays. On a task the base cannot learn in context (its answers no likelier after 16 shots than
after 2), every target teaches the label prior or memorises the task, and under remapped
labels it is noise. One forward pass over a packed natural-label sequence of the task's
training examples gives each answer's NLL in order; the task's many-shot gain is the mean NLL
of the answers with 1..few demonstrations before them minus that of the sequence's last half.
The first answer (no demonstration) is left out: it mostly measures the format.

manyicl-finetune learnability --out runs/learnability.json          # every task of the mixture
python scripts/make_mixture.py --scores runs/learnability.json --min-gain 0.1 --out learnable.toml
python scripts/make_mixture.py --scores runs/learnability.json --below 0.1 --out the_rest.toml
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from manyicl.cliargs import arg, run_command
from manyicl.finetune.mixture import DEFAULT_MIXTURE
from manyicl.finetune.modeling import DTYPES


@dataclass(frozen=True)
class LearnabilityConfig:
    out: Path = arg("JSON file of per-task scores (few-shot NLL, many-shot NLL, gain)")
    model: str = arg("base model, as manyicl-finetune --model", default="default")
    mixture: Path = arg("mixture file whose [[task]]s are scored", default=DEFAULT_MIXTURE)
    prompt_format: str = arg("prompt format, as manyicl-finetune --prompt-format", default="plain")
    max_seq_len: int = arg("tokens per scored sequence (training's --max-seq-len)", default=2048)
    sequences: int = arg("packed sequences scored per task (more: less noise)", default=2)
    few: int = arg("answers after 1..few demonstrations are the few-shot ones", default=4)
    dtype: str = arg(f"one of {', '.join(DTYPES)}, as manyicl-finetune --dtype", default="auto")
    seed: int = arg("seed of the mixture's train/eval split (training's --seed)", default=5)

    def __post_init__(self) -> None:
        if self.sequences < 1 or self.few < 1:
            raise ValueError("--sequences and --few must be >= 1")
        if self.max_seq_len < 64:
            raise ValueError("--max-seq-len must be >= 64")
        if self.dtype not in DTYPES:
            raise ValueError(f"--dtype must be one of {DTYPES}, got {self.dtype!r}")


def few_and_many(nll: Sequence[float], few: int) -> tuple[float, float] | None:
    """(few-shot, many-shot) mean NLL of one sequence's answers, in order: answers 1..few, and
    the last half. None when the sequence has under 2 * (few + 1) answers (the two would
    overlap or be too close to tell apart)."""
    if len(nll) < 2 * (few + 1):
        return None
    return statistics.fmean(nll[1 : few + 1]), statistics.fmean(nll[len(nll) // 2 :])


def task_score(per_sequence: Sequence[Sequence[float]], few: int) -> dict:
    """A task's record from its sequences' answer NLLs; gain None when no sequence is long
    enough to measure one."""
    pairs = [p for p in (few_and_many(s, few) for s in per_sequence) if p is not None]
    answers = sum(len(s) for s in per_sequence)
    if not pairs:
        return {"answers": answers, "few_nll": None, "many_nll": None, "gain": None}
    few_nll = statistics.fmean(p[0] for p in pairs)
    many_nll = statistics.fmean(p[1] for p in pairs)
    return {
        "answers": answers,
        "few_nll": round(few_nll, 4),
        "many_nll": round(many_nll, 4),
        "gain": round(few_nll - many_nll, 4),
    }


def read_scores(path: Path) -> dict[str, dict]:
    """The per-task records of a file this command wrote; ValueError with the reason if not."""
    try:
        return json.loads(path.read_text())["tasks"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a file of manyicl-finetune learnability ({e})") from e


def split_at(scores: dict[str, dict], bar: float) -> tuple[set[str], set[str]]:
    """(tasks whose gain is >= bar, tasks whose gain is below it); a task without a measured
    gain is in neither."""
    measured = {name: s["gain"] for name, s in scores.items() if s["gain"] is not None}
    above = {name for name, gain in measured.items() if gain >= bar}
    return above, set(measured) - above


def score(cfg: LearnabilityConfig) -> dict[str, dict]:
    """Every mixture task's record, scored by the base model."""
    from tqdm import tqdm

    from manyicl.finetune.sequences import ShotRange, eval_sequences

    tasks, pad_id, model, precision = _load(cfg)
    out = {}
    for task in tqdm(tasks, desc="tasks", unit="task"):
        # The task's training examples, packed in order as its eval sequences are.
        packed = eval_sequences(
            [replace(task, eval=task.train)], cfg.max_seq_len, ShotRange(1, None), cfg.sequences
        )
        per_sequence = [answer_nlls(model, precision, seq, pad_id) for seq in packed]
        out[task.name] = task_score(per_sequence, cfg.few)
    return out


def answer_nlls(model, precision, seq, pad_id: int) -> list[float]:
    """The mean token NLL of each answer of one sequence, in order."""
    import torch

    from manyicl.finetune.batching import collate, supervised_logits
    from manyicl.finetune.losses import per_answer_mean, token_nll
    from manyicl.finetune.objectives import Objective

    batch = collate([seq], Objective.ALL_TARGETS, pad_id).to(model.device)
    with torch.no_grad(), precision.autocast(model.device):
        logits, keep = supervised_logits(model, batch)  # (1, K, V), (K,)
    nll = token_nll(logits, batch.labels, keep)  # (1, T)
    return per_answer_mean(nll, batch.answer_idx, int(batch.n_answers[0]))[0].tolist()


def _load(cfg: LearnabilityConfig):
    """The mixture's tasks, tokenised with natural labels; the pad id; the base model (on the
    GPU when there is one)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from manyicl.cpu import cpu_flags, has_native_bf16
    from manyicl.finetune.mixture import load_mixture
    from manyicl.finetune.modeling import resolve_precision
    from manyicl.finetune.setup import load_format, pad_token_id
    from manyicl.finetune.tokenized import tokenize_tasks
    from manyicl.models import resolve_model
    from manyicl.prompting import HFTokenizer

    model_path = resolve_model(cfg.model)
    hf_tok = AutoTokenizer.from_pretrained(model_path)
    fmt = load_format(cfg.prompt_format, hf_tok)
    mixture = load_mixture(cfg.mixture, cfg.seed)
    tasks = tokenize_tasks(mixture.tasks, fmt, HFTokenizer(hf_tok), cfg.max_seq_len)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = resolve_precision(cfg.dtype, device, has_native_bf16(cpu_flags()))
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=precision.weights)
    return tasks, pad_token_id(hf_tok), model.to(device).eval(), precision


def main(argv: list[str] | None = None) -> None:
    cfg, scores = run_command(
        "manyicl-finetune learnability",
        "Score how much the base model's answers to each training task improve with more "
        "demonstrations (NLL after 1..few shots minus NLL over each sequence's last half). "
        "scripts/make_mixture.py --scores keeps the tasks above a gain.",
        LearnabilityConfig,
        argv,
        score,
    )
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"config": {k: str(v) for k, v in asdict(cfg).items()}, "tasks": scores}
    cfg.out.write_text(json.dumps(record, indent=1) + "\n")
    gains = sorted(s["gain"] for s in scores.values() if s["gain"] is not None)
    median = f"median gain {statistics.median(gains):.3f}" if gains else "no gain measured"
    print(f"{cfg.out}: {len(scores)} tasks, {len(gains)} with a gain, {median}")
