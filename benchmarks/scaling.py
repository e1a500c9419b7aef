"""Scale-out: `manyicl-serve --replicas 2` behind vllm-router, consistent-hash routing on the
demo set's id against round-robin, side by side in one run; writes docs/SCALING.md.

    .venv/bin/python benchmarks/scaling.py --out docs/SCALING.md

The workload's demo blocks fit in the two replicas' KV caches together but not in one: with
affinity each replica caches its own sets; round-robin sends every set to both, so each cache
must hold them all, and evicts.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

import httpx
from common import command, machine, today
from serving import kv_bytes

from manyicl.loadtests.report import save_run, table
from manyicl.loadtests.runner import RunReport, run_workload, scrape
from manyicl.loadtests.servers import ServerProcess, manyicl_command
from manyicl.loadtests.workload import Mode, Order, Workload
from manyicl.models import resolve_model
from manyicl.prompting import HFTokenizer, get_format

POLICIES = ("consistent_hash", "round_robin")


def replica_urls(log: Path) -> list[str]:
    """The replicas' own URLs, from the supervisor's log (appended to by every start: the
    last start's line for each replica wins)."""
    urls = dict(re.findall(r"replica (\d+): pid \d+, (\S+)", log.read_text()))
    return [urls[i] for i in sorted(urls, key=int)]


def replica_counts(urls: list[str]) -> list[dict[str, float]]:
    """Each replica's vLLM counters: requests finished, prefix-cache hits and queries."""
    return [asyncio.run(_scrape(url)) for url in urls]


async def _scrape(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await scrape(client)


def run_policy(policy: str, args, w: Workload, fmt, tok, model: str) -> tuple[RunReport, list]:
    """A fresh group under `policy`: the workload, then each replica's counters."""
    folder = args.runs / policy
    folder.mkdir(parents=True, exist_ok=True)
    serve = ["--replicas", "2", "--router-policy", policy, "--model", model]
    serve += ["--enforce-eager", "--max-model-len", "2048", "--served-model-name", "manyicl"]
    serve += ["--kv-cache-memory-bytes", str(kv_bytes(model, args.kv_tokens))]
    serve += ["--demo-set-dir", str(folder / "sets")]
    group = ServerProcess(lambda port: manyicl_command(port, serve), folder / "group.log")
    group.start(timeout=1200)
    try:
        report = asyncio.run(run_workload(group.url, Mode.DEMO_SET, "manyicl", w, fmt, tok))
        report.summary["server_cache_hit_ratio"] = None  # the router's /metrics is one replica's
        save_run(report, folder, w.name)
        return report, replica_counts(replica_urls(group.log))
    finally:
        group.stop()


def counts_line(policy: str, counts: list[dict[str, float]]) -> str:
    served = [int(c.get("vllm:request_success_total", 0)) for c in counts]
    hits = sum(c.get("vllm:prefix_cache_hits_total", 0) for c in counts)
    queries = sum(c.get("vllm:prefix_cache_queries_total", 0) for c in counts)
    ratio = f"{hits / queries:.2f}" if queries else "-"
    return f"| {policy} | {' / '.join(map(str, served))} | {ratio} |"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/SCALING.md"))
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-scaling"))
    parser.add_argument("--sets", type=int, default=12, help="demo sets in the workload")
    parser.add_argument("--block-tokens", type=int, default=512, help="tokens per demo block")
    parser.add_argument("--queries", type=int, default=6, help="queries per set")
    parser.add_argument("--kv-tokens", type=int, default=5120, help="KV cache per replica")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # Shuffled: a fixed interleaving of an even number of sets would send each set to the same
    # replica under round-robin too, and hide what affinity is for.
    w = Workload(
        "scale", args.sets, args.block_tokens, args.queries, Order.RANDOM, concurrency=2, seed=11
    )
    model = resolve_model("default")
    tok = HFTokenizer.from_pretrained(model)
    fmt = get_format("plain")
    runs = {p: run_policy(p, args, w, fmt, tok, model) for p in POLICIES}
    text = doc_text(args, w, runs)
    args.out.write_text(text)
    print(text)


def doc_text(args: argparse.Namespace, w: Workload, runs: dict) -> str:
    """The doc: what ran, the client-side table, and each replica's own counters."""
    return "\n".join(
        [
            "# Scale-out: two replicas behind vllm-router",
            "",
            f"Command: `{command()}`  ",
            f"Machine: {machine()}  ",
            f"Date: {today()}",
            "",
            f"`manyicl-serve --replicas 2` (one core each) on the default model, eager, KV cache "
            f"{args.kv_tokens} tokens per replica; {w.num_sets} registered demo sets of "
            f"{w.block_tokens} tokens ({w.num_sets * w.block_tokens} together: they fit in the "
            f"two caches, not in one), {w.queries_per_set} queries each in shuffled order, "
            f"{w.concurrency} clients; every request sends its set's id as `X-Session-ID`.",
            "",
            table({p: report.summary for p, (report, _) in runs.items()}),
            "Per replica (vLLM's own counters, read from each replica after the run):",
            "",
            "| policy | requests served (replica 0 / 1) | prefix-cache hit ratio (tokens) |",
            "| --- | --- | ---: |",
            *(counts_line(p, counts) for p, (_, counts) in runs.items()),
            "",
        ]
    )


if __name__ == "__main__":
    main()
