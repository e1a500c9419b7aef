"""Writing a run down: requests as JSONL, the summary as JSON, a table, and PNG plots."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from manyicl.loadtests.runner import RunReport
from manyicl.plots import axes


def save_run(report: RunReport, folder: Path, name: str) -> None:
    """`{name}.requests.jsonl` and `{name}.summary.json` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{name}.requests.jsonl").open("w") as f:
        for r in report.results:
            f.write(json.dumps(r.to_json()) + "\n")
    (folder / f"{name}.summary.json").write_text(json.dumps(report.summary, indent=2) + "\n")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def table(summaries: Mapping[str, dict]) -> str:
    """A markdown table, one row per variant."""
    lines = [
        "| variant | ok/requests | TTFT p50 ms | TTFT p90 ms | TTFT p99 ms | ITL p50 ms "
        "| latency p50 ms | req/s | out tok/s | cached (responses) | cached (/metrics) "
        "| 5xx |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in summaries.items():
        server = s.get("server_cache_hit_ratio")
        lines.append(
            f"| {name} | {s['ok']}/{s['requests']} | {_ms(s['ttft_s']['p50'])} | "
            f"{_ms(s['ttft_s']['p90'])} | {_ms(s['ttft_s']['p99'])} | {_ms(s['itl_s']['p50'])} | "
            f"{_ms(s['latency_s']['p50'])} | {s['requests_per_s']:.2f} | "
            f"{s['output_tokens_per_s']:.1f} | {s['cached_ratio']:.2f} | "
            f"{'-' if server is None else f'{server:.2f}'} | {s['status_5xx']} |"
        )
    return "\n".join(lines) + "\n"


def plot_ttft_cdf(runs: Mapping[str, RunReport], path: Path, title: str) -> None:
    """One CDF line of TTFT per variant."""
    labels = {"xlabel": "time to first token (s)", "ylabel": "fraction of requests"}
    with axes(path, title=title, **labels) as ax:
        for name, run in runs.items():
            ttfts = sorted(r.ttft for r in run.results if r.ttft is not None)
            fractions = [(i + 1) / len(ttfts) for i in range(len(ttfts))]
            if ttfts:
                ax.step(ttfts, fractions, where="post", label=name)
        ax.set_xscale("log")


def plot_ttft_vs_shots(runs: Mapping[str, RunReport], path: Path, title: str) -> None:
    """TTFT against the number of shots in the prompt, per variant."""
    labels = {"xlabel": "shots in the prompt", "ylabel": "time to first token (s)"}
    with axes(path, title=title, **labels) as ax:
        for name, run in runs.items():
            points = [(r.shots, r.ttft) for r in run.results if r.ttft is not None]
            if points:
                ax.scatter(*zip(*points, strict=True), s=12, alpha=0.6, label=name)
        ax.set_yscale("log")
