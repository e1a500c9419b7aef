"""`manyicl-eval compare`: finished evaluations against a base, paired example by example.

manyicl-eval compare runs/eval/base runs/eval/ours runs/eval/last-target --out cmp.md

Each variant's difference from the base per task and per group mean (natural, remapped), with
95 % paired-bootstrap intervals; bold marks a significant difference. Both runs must have
used the same settings (same examples, demonstrations and seeds), else it says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from manyicl.evaluate.report import GROUPS, compare, compare_table, plot, shots_order


def load_result(path: Path) -> dict:
    """results.json of an evaluation (its folder or the file)."""
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise SystemExit(f"manyicl-eval compare: {file} does not exist (run manyicl-eval first)")
    return json.loads(file.read_text())


def report(base: dict, variants: list[dict]) -> str:
    """Markdown: one table of paired differences per variant."""
    shots = sorted({r["shots"] for r in base["records"]}, key=shots_order)
    parts = []
    for v in variants:
        parts += [
            f"### {v['name']} minus {base['name']}",
            "",
            compare_table(compare(base["records"], v["records"]), shots),
        ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="manyicl-eval compare", description=__doc__)
    parser.add_argument("base", type=Path, help="the base model's evaluation (folder or json)")
    parser.add_argument("variants", type=Path, nargs="+", help="evaluations to compare with it")
    parser.add_argument("--out", type=Path, help="write the report (markdown) here too")
    parser.add_argument("--plot", type=Path, help="score-vs-shots plot (PNG), one per group")
    args = parser.parse_args(argv)
    base = load_result(args.base)
    variants = [load_result(v) for v in args.variants]
    try:
        text = report(base, variants)
    except ValueError as e:
        raise SystemExit(f"manyicl-eval compare: {e}") from None
    if args.out:  # files first: a reader that leaves early (`| head`) must not lose them
        args.out.write_text(text)
    if args.plot:
        curves = {r["name"]: r["scores"] for r in [base, *variants]}
        for group in GROUPS:
            path = args.plot.with_name(f"{args.plot.stem}-{group}{args.plot.suffix}")
            plot(curves, path, f"held-out tasks ({group} labels)", group)
    try:
        print(text, flush=True)
    except BrokenPipeError:  # the reader closed the pipe: stop quietly, as `cat` would
        # stdout's buffer would raise again when Python flushes it at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
