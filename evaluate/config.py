"""`manyicl-eval`'s configuration: its flags, presets and their validation."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manyicl.cliargs import arg, parse_dataclass

# Defaults per preset; flags given on the command line override them.
PRESETS: dict[str, dict[str, Any]] = {
    "standard": {},  # the EvalConfig defaults
    "quick": {
        "tasks": "tabular:penguins/sex,gym:list_functions/reverse",
        "remap": "words",
        "shots": "0,4,16",
        "seeds": 1,
        "eval_examples": 24,
        "max_context": 1024,
        "enforce_eager": True,
    },
    "scaling": {
        "tasks": "tabular:wine/cultivar,gym:arc_1d/move_1pix_solid_right,cldr:plural_category/ru",
        "shots": "0,4,16,64,256,max",
        "seeds": 1,
        "eval_examples": 50,
        "max_context": 8192,
    },
}


@dataclass(frozen=True)
class EvalConfig:
    out: Path = arg("folder for records.jsonl (resumable), results.json, results.md, scores.png")
    model: str | None = arg(
        "base model (default: the adapter's base, else the default model)", default=None
    )
    adapter: Path | None = arg(
        "adapter folder from manyicl-finetune (its prompt format is used; merged into the "
        "weights for scoring)",
        default=None,
    )
    prompt_format: str = arg("plain or chat, without --adapter", default="plain")
    tasks: str = arg(
        "'heldout' (the default mixture's [heldout] eval list: report these), 'validation' "
        "(its validation list, held out too: choose recipes, checkpoints and soups on these), "
        "'forgetting' (its zero-shot general tasks), or a comma list of source:name tasks "
        "(docs/DATA.md) and .jsonl files",
        default="heldout",
    )
    remap: str = arg(
        "label-remapped copies of each classification task, scored beside it: a comma list "
        "of flipped (labels permuted) and words (arbitrary words), or '' for none",
        default="flipped,words",
    )
    shots: str = arg("comma list of shot counts; 'max' = as many as fit", default="0,4,16,64,max")
    seeds: int = arg("demonstration samples per shot count", default=3)
    eval_examples: int = arg(
        "evaluation examples per task, stratified by label (the rest is the pool)", default=100
    )
    max_new_tokens: int = arg("most greedy tokens per answer", default=32)
    max_context: int = arg("context for prompts: 'max' shots fill it", default=2048)
    name: str | None = arg(
        "variant name in tables and plots (default: adapter or model)", default=None
    )
    dtype: str = arg(
        "auto (on CPU: float32 unless it computes bf16 natively), float32, bfloat16",
        default="auto",
    )
    block_size: int | None = arg("KV block size (default: vLLM's for the platform)", default=None)
    kv_cache_gib: float = arg("KV cache size on CPU (GiB)", default=4.0)
    enforce_eager: bool = arg("skip torch.compile: starts faster, scores slower", default=False)
    free_generation: bool = arg(
        "also generate whole answers of choice tasks and score them by exact match "
        "(`free_scores`): what label-constrained answers change (slower)",
        default=False,
    )

    def __post_init__(self) -> None:
        _ = self.shot_list, self.remap_kinds  # parse, or raise with the reason
        if self.seeds < 1 or self.eval_examples < 1 or self.max_new_tokens < 1:
            raise ValueError("--seeds, --eval-examples and --max-new-tokens must be >= 1")
        if self.max_context < 64:
            raise ValueError("--max-context must be >= 64")

    @property
    def shot_list(self) -> list[int | None]:
        out = []
        for item in (s.strip() for s in self.shots.split(",")):
            if item == "max":
                out.append(None)
            elif item.isdigit():
                out.append(int(item))
            else:
                raise ValueError(f"--shots takes numbers and 'max', got {item!r}")
        return out

    @property
    def remap_kinds(self) -> list:
        from manyicl.tasks.remap import Kind

        kinds = [k.strip() for k in self.remap.split(",") if k.strip()]
        allowed = {str(Kind.FLIPPED), str(Kind.WORDS)}
        if bad := [k for k in kinds if k not in allowed]:
            raise ValueError(f"--remap takes {sorted(allowed)}, got {bad}")
        return [Kind(k) for k in kinds]


def parse_config(argv: list[str] | None = None) -> EvalConfig:
    parser = argparse.ArgumentParser(
        prog="manyicl-eval",
        description="Evaluate held-out tasks at each shot count, with several seeds of "
        "demonstrations, on a vLLM engine with prefix caching, prompts rendered token for "
        "token as manyicl-serve renders them. Classification and multiple-choice tasks are "
        "scored by the choice the model ranks first (greedy over the choices' own tokens), "
        "generation tasks by exact match or ROUGE-L; each classification task is also scored "
        "under remapped labels (--remap). Writes records.jsonl (every example's score; an "
        "interrupted run resumes from it), results.json, results.md and scores.png. "
        "`manyicl-eval compare BASE VARIANT...` compares finished runs.",
    )
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="standard",
        help="defaults for the flags below: standard (the full held-out evaluation), quick "
        "(a smoke run of a few minutes), scaling (shots up to an 8K context)",
    )
    return parse_dataclass(parser, EvalConfig, argv, defaults=lambda a: PRESETS[a.preset])
