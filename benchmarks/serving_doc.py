"""The markdown report of benchmarks/serving.py: tables, ratios to the anchor, plots."""

from __future__ import annotations

import json
from pathlib import Path

from common import machine, today

from manyicl.loadtests.report import plot_ttft_cdf, plot_ttft_vs_shots, table
from manyicl.loadtests.runner import RunReport
from manyicl.loadtests.stats import percentile
from manyicl.loadtests.workload import WORKLOADS

ANCHOR = "vLLM server (anchor)"
SAME_FLAGS = "vLLM float32"  # vLLM with manyicl's dtype and block size: the gain of alignment


def warm_cold(report: RunReport) -> tuple[float | None, float | None]:
    """p50 TTFT of requests that hit the cache, and of those that did not."""
    warm = [r.ttft for r in report.results if r.ok and r.cached_tokens and r.ttft]
    cold = [r.ttft for r in report.results if r.ok and not r.cached_tokens and r.ttft]
    return percentile(warm, 50), percentile(cold, 50)


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}"


def ratio_table(summaries: dict, ref: str) -> list[str]:
    """Each variant's throughput and TTFT against variant `ref`."""
    anchor = summaries[ref]
    lines = [
        f"| variant | throughput vs {ref} | TTFT p50 vs {ref} | TTFT p99 vs {ref} |",
        "| --- | ---: | ---: | ---: |",
    ]
    for v, s in summaries.items():
        lines.append(
            f"| {v} | {_ratio(s['requests_per_s'], anchor['requests_per_s'])} | "
            f"{_ratio(s['ttft_s']['p50'], anchor['ttft_s']['p50'])} | "
            f"{_ratio(s['ttft_s']['p99'], anchor['ttft_s']['p99'])} |"
        )
    return [*lines, ""]


def cache_lines(summaries: dict) -> list[str]:
    """Cold prefills of the warm-up, and how many warm requests found their whole block."""
    lines = []
    for v, s in summaries.items():
        parts = []
        if warmup := s.get("warmup_ttft_s"):
            parts.append(f"cold prefill (untimed warm-up) TTFT p50 {warmup['p50'] * 1000:.0f} ms")
        if blocks := s.get("blocks"):
            parts.append(
                f"{blocks['whole_block']} of {blocks['warm']} cache-hitting requests found their "
                "whole demo block cached"
            )
        if parts:
            lines.append(f"- {v}: " + "; ".join(parts) + ".")
    return [*lines, ""] if lines else []


def workload_section(wname: str, results: dict, plots: Path, doc_dir: Path) -> list[str]:
    runs = {v: results[v]["reports"][wname] for v in results if wname in results[v]["reports"]}
    summaries = {v: r.summary for v, r in runs.items()}
    lines = [f"### {wname}", "", table(summaries)]
    for ref in (ANCHOR, SAME_FLAGS):
        lines += ratio_table(summaries, ref) if ref in summaries else []
    lines += cache_lines(summaries)
    floors = results.get("manyicl demo-set", {}).get("floors", {}).get(wname)
    if floors:
        warm, cold = warm_cold(runs["manyicl demo-set"])
        base = percentile(floors, 50)
        lines.append(
            f"manyicl demo-set: warm TTFT p50 {_ms(warm)} ms"
            + (f", cold (timed) {_ms(cold)} ms" if cold else "")
            + f"; floor, the uncached suffix sent alone: p50 {_ms(base)} ms (warm / floor "
            f"{_ratio(warm, base)})."
        )
        lines.append("")
    cdf = plots / f"{wname}.ttft_cdf.png"
    plot_ttft_cdf(runs, cdf, f"TTFT CDF, {wname}")
    lines += [f"![TTFT CDF {wname}]({cdf.relative_to(doc_dir)})", ""]
    return lines


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def soak_section(report: dict, args) -> list[str]:
    rows = ["| class | as expected | unexpected |", "| --- | ---: | ---: |"]
    kinds = sorted({k.split(":")[0] for k in report["outcomes"]})
    for kind in kinds:
        rows.append(
            f"| {kind} | {report['outcomes'].get(f'{kind}:as_expected', 0)} | "
            f"{report['outcomes'].get(f'{kind}:unexpected', 0)} |"
        )
    return [
        "## Soak",
        "",
        f"{report['requests']} requests at concurrency 16 in {report['duration_s']:.0f} s "
        "against one manyicl-serve: streamed and non-streamed many-shot requests, clients "
        "hanging up after the first chunk, and invalid requests (malformed JSON, unknown "
        "model, unknown field, wrong type, unknown demo set, context overflow).",
        "",
        *rows,
        "",
        f"5xx responses: **{report['status_5xx']}**. Server RSS (server and engine "
        f"processes): {report['server_rss_start_mb']} MiB at start, "
        f"{report['server_rss_end_mb']} MiB at the end.",
        *(
            ["", "Unexpected outcomes: " + json.dumps(report["unexpected"])]
            if report["unexpected"]
            else []
        ),
        "",
    ]


def write_doc(
    results: dict, args, command: str, soak_report: dict | None = None, plots_only=False
) -> None:
    """The markdown report and its plots (`plots_only`: just redraw the plots)."""
    doc_dir = args.out.parent
    plots = doc_dir / "bench" / args.out.stem
    plots.mkdir(parents=True, exist_ok=True)
    lines = header(args, command)
    for wname in args.workloads:
        lines += workload_section(wname, results, plots, doc_dir)
    if "fit-2k-c1" in args.workloads:
        lines += shots_section(results, plots, doc_dir)
    if soak_report:
        lines += soak_section(soak_report, args)
    if not plots_only:
        args.out.write_text("\n".join(lines) + "\n")


def header(args, command: str) -> list[str]:
    """Title, command, machine, date and the setup every workload shares."""
    workloads = "; ".join(
        f"{n}: {w.num_sets} x {w.block_tokens} x {w.queries_per_set}, c{w.concurrency}"
        for n, w in WORKLOADS.items()
        if n in args.workloads
    )
    weights = "LoRA kernels at run time" if args.lora_runtime else "merged into the weights"
    return [
        "# Serving benchmarks",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Date: {today()}",
        "",
        f"Setup: default model (SmolLM2-135M-Instruct) + LoRA adapter `{args.adapter}` "
        f"({weights}), every server eager (`--enforce-eager`), KV cache "
        f"{args.kv_cache_tokens} float32 tokens (twice as many in bf16), "
        f"--max-model-len {args.max_model_len}; greedy, {WORKLOADS['fit-2k-c1'].max_tokens}"
        " generated tokens per request, every request streamed. Workloads (demo sets x "
        f"tokens per block x queries per set, concurrency): {workloads}.",
        "",
    ]


def shots_section(results: dict, plots: Path, doc_dir: Path) -> list[str]:
    """TTFT against shots on fit-2k-c1, one line per variant that ran it."""
    shots = plots / "fit-2k-c1.ttft_vs_shots.png"
    reports = {
        v: r["reports"]["fit-2k-c1"] for v, r in results.items() if "fit-2k-c1" in r["reports"]
    }
    plot_ttft_vs_shots(reports, shots, "TTFT vs shots, fit-2k-c1")
    return [f"![TTFT vs shots]({shots.relative_to(doc_dir)})", ""]
