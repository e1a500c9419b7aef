"""docs/RESULTS.md for benchmarks/quality.py: the goals, paired differences, tables, plots."""

from __future__ import annotations

from pathlib import Path

from common import command, kept_section, machine, today

from manyicl.evaluate.report import (
    compare,
    compare_table,
    group_means,
    plot,
    shots_order,
    table,
)
from manyicl.manifest import read_manifest

ANALYSIS = "## Analysis"
BASE = "base (ICL only)"
OURS = "all-targets FT (ManyICL)"  # the variant that ships as the default adapter
REFERENCE = "last-target FT"


def _shown(path: Path) -> str:
    """A path as a reader can find it: relative to the repo when it lies inside."""
    try:
        return str(Path(path).resolve().relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        return str(path)


def goals(stages: dict) -> list[dict]:
    """The shipping goals for OURS, each with what was measured and whether it was met."""
    ev, fg = stages["eval"], stages["forgetting"]
    if OURS not in ev or BASE not in ev:
        return []
    vs_base = compare(ev[BASE]["records"], ev[OURS]["records"])
    remapped = vs_base.get(("mean, remapped", "max"))
    natural = vs_base.get(("mean, natural", "max"))
    out = [
        _goal(
            "remapped held-out, max shots: >= +0.10 over base",
            remapped,
            remapped and remapped.mean >= 0.10,
        ),
        _goal(
            "natural held-out, max shots: >= +0.03 over base, 95 % CI above 0",
            natural,
            natural and natural.mean >= 0.03 and natural.low > 0,
        ),
    ]
    # without the reference run the goal is listed as not measured, never silently dropped
    vs_ref = compare(ev[REFERENCE]["records"], ev[OURS]["records"]) if REFERENCE in ev else {}
    for group in ("natural", "remapped"):
        ci = vs_ref.get((f"mean, {group}", "max"))
        out.append(
            _goal(f"not worse than {REFERENCE} ({group}, max shots)", ci, ci and ci.mean >= 0)
        )
    if OURS in fg and BASE in fg:
        ci = compare(fg[BASE]["records"], fg[OURS]["records"]).get(("mean, natural", "0"))
        out.append(_goal("forgetting tasks, 0 shots: loses <= 0.02", ci, ci and ci.mean >= -0.02))
    return out


def _goal(goal: str, ci, met) -> dict:
    measured = "not measured" if ci is None else (f"{ci.mean:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]")
    return {"goal": goal, "measured": measured, "met": bool(met)}


def goals_table(stages: dict) -> list[str]:
    rows = goals(stages)
    if not rows:
        return ["(not evaluated yet)", ""]
    lines = ["| goal | measured (paired mean difference [95 % CI]) | met |", "| --- | --- | --- |"]
    for g in rows:
        lines.append(f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else '**no**'} |")
    return [*lines, ""]


def means_table(results: dict, group: str) -> list[str]:
    """Rows: models; columns: shot counts; cells: the group's mean over tasks."""
    shots = sorted({r["shots"] for res in results.values() for r in res["scores"]}, key=shots_order)
    lines = [
        "| model | " + " | ".join(f"{s} shots" for s in shots) + " |",
        "| --- |" + " ---: |" * len(shots),
    ]
    for name, res in results.items():
        means = group_means(res["scores"]).get(group, {})
        cells = [f"{means[s]:.3f}" if s in means else "-" for s in shots]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def differences(results: dict, base: str) -> list[str]:
    """One paired-difference table per model against `base`."""
    if base not in results:
        return []
    shots = sorted({r["shots"] for r in results[base]["records"]}, key=shots_order)
    lines = []
    for name, res in results.items():
        if name != base:
            diff = compare(results[base]["records"], res["records"])
            lines += [f"### {name} minus {base}", "", compare_table(diff, shots)]
    return lines


def side_section(title: str, results: dict, groups: tuple[str, ...]) -> list[str]:
    """Means per label group, then paired differences from the base, under `title`."""
    lines = [title, ""]
    for group in groups:
        caption = [f"Mean score, {group} labels:", ""] if len(groups) > 1 else []
        lines += [*caption, *means_table(results, group)]
    return [*lines, *differences(results, BASE)]


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
        "*Mean NLL of every answer in held-back natural-label sequences of the training tasks, "
        "packed as the variant packs them: many-shot sequences for all but zero-shot FT, whose "
        "sequences hold one example each, so its number is not comparable with the others'."
    )
    return [*lines, "", note, ""]


def _timing(results: dict) -> list[str]:
    lines = [f"- {n}: {r['seconds'] / 60:.1f} min" for n, r in results.items() if r.get("seconds")]
    return (
        [
            "Evaluation time per model (this run; a resumed run counts only its own part):",
            "",
            *lines,
            "",
        ]
        if lines
        else []
    )


def _mixing(args) -> str:
    if args.mix_prob is None:
        return ""
    return f" with {args.mix_prob:.0%} of sequences task-identification sequences"


def _header(args) -> list[str]:
    """The title, where the figures come from, and what every variant was trained on."""
    return [
        "# Quality: many-shot in-context learning on held-out tasks",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}  ",
        f"Date: {today()}",
        "",
        f"Model `{args.model}`, mixture `{_shown(args.mixture)}`{_mixing(args)}; every "
        "variant trains on the "
        f"real tokens of {args.steps} all-targets steps of {args.grad_accum} micro-batches of up "
        f"to {args.max_seq_len} tokens (lr {args.lr}, {args.schedule}, LoRA r={args.lora_r}). "
        "Evaluation: `manyicl-eval` (standard preset unless stated), every model on the same "
        "examples and demonstrations; `choice` tasks are scored by the choice the model ranks "
        "first, the others by exact match or ROUGE-L. Differences are paired by example, with "
        "95 % bootstrap intervals; **bold** marks a significant difference.",
        "",
    ]


def _heldout_sections(ev: dict, figures: Path, stem: str) -> list[str]:
    """Means and plots per label group, paired differences, and every model's per-task table."""
    lines = []
    for group in ("natural", "remapped") if ev else ():
        figure = figures / f"{stem}-{group}.png"
        plot({n: r["scores"] for n, r in ev.items()}, figure, f"held-out, {group}", group)
        lines += [f"## Mean held-out score, {group} labels", "", *means_table(ev, group)]
        lines += [f"![{group}]({figure.relative_to(figures.parent)})", ""]
    lines += ["## Paired differences from the base", "", *differences(ev, BASE)]
    if REFERENCE in ev and OURS in ev:
        lines += ["## Paired differences from last-target FT", ""]
        lines += differences({k: ev[k] for k in (REFERENCE, OURS)}, REFERENCE)
    if ev:
        lines += ["## Per task", ""]
        for name, res in ev.items():
            lines += [f"### {name}", "", table(res["scores"])]
    return lines


def _scaling_section(scaling: dict, figures: Path, stem: str) -> list[str]:
    figure = figures / f"{stem}-scaling.png"
    plot(
        {n: r["scores"] for n, r in scaling.items()},
        figure,
        "score vs shots, up to the full context",
        "natural",
    )
    return [
        "## Scaling with shots, up to the full context",
        "",
        *means_table(scaling, "natural"),
        f"![scaling]({figure.relative_to(figures.parent)})",
        "",
    ]


def write_results(args, stages: dict, adapters: dict) -> None:
    """docs/RESULTS.md: the goals first, then every stage that ran, then the kept analysis."""
    figures, stem = args.out.parent / "results", args.out.stem.lower()
    figures.mkdir(parents=True, exist_ok=True)
    lines = [
        *_header(args),
        "## Shipping goals, for the candidate adapter",
        "",
        *goals_table(stages),
    ]
    if adapters:
        lines += ["## Training", "", *training_table(adapters)]
    lines += _heldout_sections(stages["eval"], figures, stem)
    if stages["forgetting"]:
        title = "## Forgetting: zero-shot general tasks"
        lines += side_section(title, stages["forgetting"], ("natural",))
    if stages["validation"]:
        title = "## Validation tasks: for choosing a variant, not its result"
        lines += side_section(title, stages["validation"], ("natural", "remapped"))
    if stages["scaling"]:
        lines += _scaling_section(stages["scaling"], figures, stem)
    lines += _timing(stages["eval"])
    args.out.write_text("\n".join([*lines, *kept_section(args.out, ANALYSIS)]) + "\n")
