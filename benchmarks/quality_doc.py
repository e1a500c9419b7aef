"""docs/RESULTS.md for benchmarks/quality.py: tables of held-out scores and the plot."""

from __future__ import annotations

from pathlib import Path

from common import command, machine, today

from manyicl.evaluate.report import plot, task_means
from manyicl.manifest import read_manifest

ANALYSIS = "## Analysis"
OURS = "all-targets FT (ManyICL)"  # the variant that ships as the default adapter


def _shown(path: Path) -> str:
    """A path as a reader can find it: relative to the repo when it lies inside."""
    try:
        return str(Path(path).resolve().relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        return str(path)


def _shots_order(rows) -> list:
    return sorted({r["shots"] for r in rows}, key=lambda s: float("inf") if s == "max" else s)


def mean_table(results: dict) -> list[str]:
    """Rows: variants; columns: shot counts; cells: mean over tasks."""
    shots = _shots_order(next(iter(results.values()))["scores"])
    lines = [
        "| variant | " + " | ".join(f"{s} shots" for s in shots) + " |",
        "| --- |" + " ---: |" * len(shots),
    ]
    for name, res in results.items():
        means = task_means(res["scores"])
        lines.append(f"| {name} | " + " | ".join(f"{means[s]:.3f}" for s in shots) + " |")
    return [*lines, ""]


def task_table(results: dict, shots) -> list[str]:
    """Rows: tasks; columns: variants; cells: score ± 95 % interval at `shots`."""
    names = list(results)
    tasks = sorted({r["task"] for res in results.values() for r in res["scores"]})
    lines = ["| task | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for task in tasks:
        cells = []
        for name in names:
            row = next(
                (r for r in results[name]["scores"] if r["task"] == task and r["shots"] == shots),
                None,
            )
            cells.append("-" if row is None else f"{row['score']:.3f} ± {row['ci95']:.3f}")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def training_table(adapters: dict) -> list[str]:
    lines = [
        "| variant | steps | tokens trained | final train loss | eval loss* |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, folder in adapters.items():
        m = read_manifest(folder)
        lines.append(
            f"| {name} | {m.steps} | {m.tokens_trained} | "
            f"{m.metrics['train_loss']:.3f} | {m.metrics['eval_loss']:.3f} |"
        )
    note = (
        "*Mean NLL of every answer in held-back sequences of the training tasks, packed as the "
        "variant packs them: many-shot sequences for all but zero-shot FT, whose sequences hold "
        "one example each, so its number is not comparable with the others'."
    )
    return [*lines, "", note, ""]


def dedicated_table(dedicated: dict, shots_results: dict) -> list[str]:
    lines = [
        "| task | task-level LoRA, 0 shots | ManyICL adapter, max shots | base, max shots |",
        "| --- | ---: | ---: | ---: |",
    ]
    for task, res in dedicated.items():

        def score(results, shots, task=task):
            row = next(
                (r for r in results["scores"] if r["task"] == task and r["shots"] == shots), None
            )
            return "-" if row is None else f"{row['score']:.3f}"

        lines.append(
            f"| {task} | {score(res, 0)} | {score(shots_results[OURS], 'max')} | "
            f"{score(shots_results['base (ICL only)'], 'max')} |"
        )
    return [*lines, ""]


def write_results(args, shots: dict, forgetting: dict, dedicated: dict, adapters: dict) -> None:
    plots = args.out.parent / "results"
    plots.mkdir(parents=True, exist_ok=True)
    figure = plots / f"{args.out.stem.lower()}-shots.png"  # one plot per page
    plot({n: r["scores"] for n, r in shots.items()}, figure, "held-out tasks: score vs shots")
    lines = [
        "# Quality: many-shot in-context learning on held-out tasks",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}  ",
        f"Date: {today()}",
        "",
        f"Model `{args.model}` (default: SmolLM2-135M-Instruct), mixture `{_shown(args.mixture)}`; "
        f"every variant trains on the real tokens of {args.steps} all-targets steps of "
        f"{args.grad_accum} micro-batches of up to {args.max_seq_len} tokens; "
        f"evaluation: {args.eval_examples} examples per task, {args.seeds} demonstration "
        f"seeds, context {args.max_context}. Scores: rank accuracy (multiple choice), ROUGE-L "
        "or exact match (generation).",
        "",
        "## Training",
        "",
        *training_table(adapters),
        "## Mean held-out score vs shots",
        "",
        *mean_table(shots),
        f"![score vs shots]({Path(figure).relative_to(args.out.parent)})",
        "",
        "## Per task, max shots",
        "",
        *task_table(shots, "max"),
        "## Per task, 0 shots",
        "",
        *task_table(shots, 0),
    ]
    if dedicated:
        lines += [
            "## Task-level LoRA (dedicated fine-tuning) vs one ManyICL adapter",
            "",
            *dedicated_table(dedicated, shots),
        ]
    if forgetting:
        lines += ["## Forgetting: zero-shot general tasks", "", *task_table(forgetting, 0)]
    args.out.write_text("\n".join([*lines, *_kept_analysis(args.out)]) + "\n")


def _kept_analysis(doc: Path) -> list[str]:
    """The hand-written `## Analysis` section (the last one) of an earlier `doc`, kept on
    regeneration: the tables are the script's, the reading of them is ours."""
    if not doc.is_file():
        return []
    text = doc.read_text()
    start = text.find(ANALYSIS)
    return [] if start < 0 else text[start:].rstrip("\n").split("\n")
