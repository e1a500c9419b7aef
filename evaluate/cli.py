"""`manyicl-eval`: score held-out tasks at each shot count, several seeds of demonstrations.

manyicl-eval --adapter out/ --shots 0,1,4,16,64,256,max --seeds 3
manyicl-eval --model default --tasks bigbench:tense,data/mine.jsonl --shots 0,8
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from manyicl.cliargs import arg, parse_dataclass


@dataclass(frozen=True)
class EvalConfig:
    out: Path = arg("folder for results.json, results.md and scores.png")
    model: str | None = arg(
        "base model (default: the adapter's base, else the default model)", default=None
    )
    adapter: Path | None = arg(
        "adapter folder from manyicl-finetune (its prompt format is used)", default=None
    )
    prompt_format: str = arg("plain or chat, without --adapter", default="plain")
    tasks: str = arg(
        "'heldout' (the default mixture's [heldout] eval list) or a comma list "
        "of bigbench:<task> names and .jsonl files",
        default="heldout",
    )
    shots: str = arg("comma list of shot counts; 'max' = as many as fit", default="0,1,4,16,max")
    seeds: int = arg("demonstration samples per shot count", default=3)
    eval_examples: int = arg("evaluation examples per task (the rest is the pool)", default=50)
    max_new_tokens: int = arg("greedy tokens per answer", default=32)
    max_context: int | None = arg(
        "context for prompts (default: the model's, at most 8192)", default=None
    )
    name: str | None = arg(
        "variant name in the table and plot (default: adapter or model)", default=None
    )

    def __post_init__(self) -> None:
        _ = self.shot_list  # parses, or raises with the reason
        if self.seeds < 1 or self.eval_examples < 1 or self.max_new_tokens < 1:
            raise ValueError("--seeds, --eval-examples and --max-new-tokens must be >= 1")

    @property
    def shot_list(self) -> list[int | None]:
        out = []
        for item in self.shots.split(","):
            if item.strip() == "max":
                out.append(None)
            elif item.strip().isdigit():
                out.append(int(item))
            else:
                raise ValueError(f"--shots takes numbers and 'max', got {item!r}")
        return out


def load_tasks(spec: str) -> list:
    from manyicl.finetune import bigbench
    from manyicl.finetune.mixture import heldout_eval_tasks
    from manyicl.finetune.tasks import load_jsonl

    names = heldout_eval_tasks() if spec == "heldout" else [s for s in spec.split(",") if s]
    return [
        load_jsonl(Path(n))
        if n.endswith(".jsonl")
        else bigbench.load_task(n.removeprefix("bigbench:"))
        for n in names
    ]


def run(cfg: EvalConfig) -> dict:
    """The whole sweep; writes results.json, results.md and scores.png under --out."""
    import torch
    from transformers import AutoConfig

    from manyicl.evaluate.engine import PrefixScorer, load_model
    from manyicl.evaluate.report import aggregate, plot, table
    from manyicl.evaluate.runner import evaluate_task, split_task
    from manyicl.finetune.setup import load_format
    from manyicl.manifest import read_manifest
    from manyicl.models import resolve_model
    from manyicl.prompting import HFTokenizer

    manifest = read_manifest(cfg.adapter) if cfg.adapter else None
    model_path = resolve_model(cfg.model or (manifest.base_model.locate() if manifest else None))
    tok = HFTokenizer.from_pretrained(model_path)
    fmt = manifest.prompt_format if manifest else load_format(cfg.prompt_format, tok.hf)
    context = AutoConfig.from_pretrained(model_path).max_position_embeddings
    max_context = cfg.max_context or min(context, 8192)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    scorer = PrefixScorer(load_model(model_path, cfg.adapter and str(cfg.adapter), device), device)
    records = []
    for task in load_tasks(cfg.tasks):
        split = split_task(task, cfg.eval_examples)
        records += evaluate_task(
            scorer, split, cfg.shot_list, cfg.seeds, fmt, tok, max_context, cfg.max_new_tokens
        )
    rows = aggregate(records)
    name = cfg.name or (cfg.adapter.name if cfg.adapter else Path(model_path).name)
    result = {
        "name": name,
        "model": model_path,
        "adapter": cfg.adapter and str(cfg.adapter),
        "config": {k: str(v) for k, v in vars(cfg).items()},
        "records": records,
        "scores": rows,
    }
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (cfg.out / "results.md").write_text(f"# {name}\n\n" + table(rows))
    plot({name: rows}, cfg.out / "scores.png", f"held-out tasks, {name}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="manyicl-eval",
        description="Evaluate held-out tasks at each shot count, with several seeds of "
        "demonstration sampling, rendered exactly as the server renders them. Multiple-choice "
        "tasks are scored by rank classification (lowest mean NLL of the choice) and by greedy "
        "exact match; generation tasks by ROUGE-L or exact match. Writes results.json (every "
        "score, 95%% intervals over seeds), results.md and scores.png.",
    )
    cfg = parse_dataclass(parser, EvalConfig, argv)
    result = run(cfg)
    print((cfg.out / "results.md").read_text())
    print(f"written to {cfg.out}/ ({len(result['records'])} records)")


if __name__ == "__main__":
    main()
