"""The serving benchmark: manyicl-serve against vLLM's own OpenAI server, same machine, model,
adapter and workloads, in one run; writes docs/BENCHMARKS.md.

    .venv/bin/python benchmarks/serving.py --adapter out/ --out docs/BENCHMARKS.md

Variants (a fresh server each, so no variant inherits another's cache):
  1. manyicl demo-set   requests name a registered demo set
  2. manyicl inline     requests carry their demonstrations
  3. vLLM (anchor)      plain vLLM server, prefix caching on, same LoRA, full prompt strings
  4. manyicl no-cache   variant 1 with prefix caching off
  5. manyicl demo-set FCFS  variant 1 without the demo-set scheduler (vLLM's FCFS alone)
  6. vLLM float32       variant 3 in float32 (the anchor runs vLLM's default, the checkpoint's
                        bf16): the gain of alignment apart from the gain of the dtype
  7. manyicl bs32/bs64  variant 1 with KV blocks of 32 / 64 tokens (the CPU default is 128)
All servers run eager (--enforce-eager) with the same KV-cache size, small enough that the
`pressure` workload's demo blocks do not fit together, and all serve the adapter folded into
the base weights (manyicl: --merge-lora; vLLM: the same merged checkpoint as --model): vLLM's
CPU LoRA kernels prefill a 2K-token prompt ~7x slower than the merged model, which would
swamp every other difference on this machine. `--lora-runtime` measures with LoRA kernels.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from common import command
from serving_doc import write_doc

from manyicl.loadtests.client import RequestResult, RequestSpec
from manyicl.loadtests.report import save_run
from manyicl.loadtests.runner import RunReport, client_for, fire, run_workload
from manyicl.loadtests.servers import ServerProcess, manyicl_command, vllm_command
from manyicl.loadtests.soak import soak
from manyicl.loadtests.workload import WORKLOADS, Mode, make_demo_sets, make_queries
from manyicl.manifest import read_manifest
from manyicl.merge import merged_checkpoint
from manyicl.models import resolve_model
from manyicl.prompting import HFTokenizer, render

VARIANTS = {
    "manyicl demo-set": ("manyicl", Mode.DEMO_SET, []),
    "manyicl inline": ("manyicl", Mode.INLINE, []),
    "manyicl demo-set FCFS": ("manyicl", Mode.DEMO_SET, ["--no-demo-scheduler"]),
    "vLLM server (anchor)": ("vllm", Mode.TEXT, []),
    "vLLM float32": ("vllm", Mode.TEXT, ["--dtype", "float32"]),
    "manyicl no-cache": ("manyicl", Mode.DEMO_SET, ["--no-enable-prefix-caching"]),
    "manyicl bs32": ("manyicl", Mode.DEMO_SET, ["--block-size", "32"]),
    "manyicl bs64": ("manyicl", Mode.DEMO_SET, ["--block-size", "64"]),
    # vLLM's CPU worker keeps one core for its scheduler unless told otherwise; manyicl-serve
    # tells it not to (docs/BENCHMARKS_RESERVED_CPU.md, measured before that default).
    "manyicl all cores": ("manyicl", Mode.DEMO_SET, [], {"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}),
    "manyicl one core": ("manyicl", Mode.DEMO_SET, [], {"VLLM_CPU_NUM_OF_RESERVED_CPU": "1"}),
}


def kv_bytes(model_path: str, tokens: int) -> int:
    """Bytes of KV cache for `tokens` tokens of this model (float32 K and V, every layer; a
    bf16 server fits twice as many tokens in the same bytes)."""
    config = json.loads((Path(model_path) / "config.json").read_text())
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    per_token = 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * head_dim * 4
    return tokens * per_token


def server_for(
    kind: str,
    adapter: Path,
    base: str,
    extra: list[str],
    common: list[str],
    log: Path,
    lora_runtime: bool,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """manyicl-serve or vLLM's server for the adapter, LoRA at run time or merged."""
    if kind == "manyicl":
        merge = [] if lora_runtime else ["--merge-lora"]
        demo_dir = str(log.parent / "demo_sets")
        args = ["--adapter", str(adapter), "--demo-set-dir", demo_dir, *merge, *common, *extra]
        return ServerProcess(lambda port: manyicl_command(port, args), log, env)
    if lora_runtime:
        rank = max(16, read_manifest(adapter).lora["r"])
        lora = ["--enable-lora", "--lora-modules", f"manyicl={adapter}"]
        model = ["--model", base, "--served-model-name", "base", *lora]
        model += ["--max-lora-rank", str(rank)]
    else:
        merged = str(merged_checkpoint(adapter, base, "bfloat16"))
        model = ["--model", merged, "--served-model-name", "manyicl"]
    caching = ["--enable-prefix-caching", "--enable-prompt-tokens-details"]
    args = [*model, *caching, *common, *extra]
    return ServerProcess(lambda port: vllm_command(port, args), log, env)


def whole_blocks(report: RunReport, workload, fmt, tok) -> dict[str, int]:
    """How many cache-hitting requests found their whole demo block cached (the aligned
    block's length, as the server renders it)."""
    sets = make_demo_sets(workload, fmt, tok)
    ends = {k: render(fmt, tok, ds, "q").demo_block_end for k, ds in enumerate(sets)}
    warm = [r for r in report.results if r.ok and r.cached_tokens]
    whole = sum(1 for r in warm if r.cached_tokens >= ends[r.set_index])
    return {"warm": len(warm), "whole_block": whole}


async def floor(url: str, report: RunReport, workload, fmt, tok) -> list[float]:
    """TTFT of requests whose prompt is only the suffix the cache did not hold."""
    sets = make_demo_sets(workload, fmt, tok)
    queries = {(k, q): text for k, q, text in make_queries(workload, sets)}
    specs = []
    for r in report.results:
        if r.cached_tokens and r.ok:
            ids = render(fmt, tok, sets[r.set_index], queries[(r.set_index, r.query_index)])
            suffix = ids.token_ids[r.cached_tokens :]
            specs.append(
                RequestSpec(
                    {
                        "model": "manyicl",
                        "prompt": suffix,
                        "stream": True,
                        "max_tokens": workload.max_tokens,
                        "temperature": 0.0,
                        "stream_options": {"include_usage": True},
                    }
                )
            )
    async with client_for(url, None) as client:
        results, _ = await fire(client, specs, 1, None, 300, progress=False)
    return [r.ttft for r in results if r.ttft is not None]


def variant_folder(runs: Path, name: str) -> Path:
    return runs / name.replace(" ", "_").replace("(", "").replace(")", "")


def load_results(args) -> dict:
    """The reports an earlier run saved under --runs (requests JSONL, summary, floors)."""
    return {name: load_variant(name, args) for name in args.variants}


def planned(name: str, args) -> list[str]:
    return [w for w in args.workloads if f"{name}:{w}" not in args.skip]


def saved(name: str, args) -> bool:
    """Whether an earlier run under --runs already measured every planned workload of `name`."""
    folder = variant_folder(args.runs, name)
    return all((folder / f"{w}.summary.json").is_file() for w in planned(name, args))


def load_variant(name: str, args) -> dict:
    folder = variant_folder(args.runs, name)
    reports, floors = {}, {}
    for w in planned(name, args):
        summary = json.loads((folder / f"{w}.summary.json").read_text())
        with (folder / f"{w}.requests.jsonl").open() as f:
            rows = [RequestResult(**json.loads(line)) for line in f]
        reports[w] = RunReport(rows, summary["duration_s"], summary)
        if (folder / f"{w}.floor.json").is_file():
            floors[w] = json.loads((folder / f"{w}.floor.json").read_text())
    return {"reports": reports, "floors": floors}


def run_variant(name: str, args, fmt, tok, base: str, common: list[str]) -> dict:
    """Start the variant's server, run every workload on it, stop it."""
    kind, mode, extra, *env = VARIANTS[name]
    folder = variant_folder(args.runs, name)
    folder.mkdir(parents=True, exist_ok=True)
    server = server_for(
        kind, args.adapter, base, extra, common, folder / "server.log", args.lora_runtime, *env
    )
    server.start()
    reports, floors = {}, {}
    try:
        for wname in planned(name, args):
            w = WORKLOADS[wname]
            print(f"[{name}] {wname}", file=sys.stderr, flush=True)
            reports[wname] = asyncio.run(
                run_workload(server.url, mode, "manyicl", w, fmt, tok, max_seconds=args.max_seconds)
            )
            if kind == "manyicl":
                reports[wname].summary["blocks"] = whole_blocks(reports[wname], w, fmt, tok)
            save_run(reports[wname], folder, wname)
            if name == "manyicl demo-set" and wname.startswith(("fit", "steady")):
                floors[wname] = asyncio.run(floor(server.url, reports[wname], w, fmt, tok))
                (folder / f"{wname}.floor.json").write_text(json.dumps(floors[wname]))
    finally:
        server.stop()
    return {"reports": reports, "floors": floors}


def run_soak(args, common: list[str]) -> dict:
    """The bounded soak against a fresh manyicl server."""
    folder = args.runs / "soak"
    folder.mkdir(parents=True, exist_ok=True)
    server = server_for(
        "manyicl", args.adapter, "", [], common, folder / "server.log", args.lora_runtime
    )
    server.start()
    try:
        return asyncio.run(
            soak(server.url, "manyicl", args.soak_requests, 16, server_pid=server.pid)
        )
    finally:
        server.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, required=True, help="adapter to serve")
    parser.add_argument("--out", type=Path, default=Path("docs/BENCHMARKS.md"))
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-serving"))
    default_workloads = ["fit-2k-c1", "fit-2k-c8", "fit-6k", "pressure"]
    parser.add_argument(
        "--workloads", nargs="+", default=default_workloads, choices=list(WORKLOADS)
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        metavar="VARIANT:WORKLOAD",
        help="pairs not to run (e.g. a slow variant on the largest blocks)",
    )
    parser.add_argument("--kv-cache-tokens", type=int, default=20_000)
    parser.add_argument("--max-model-len", type=int, default=8192)
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--soak-requests", type=int, default=1000, help="0: no soak")
    parser.add_argument(
        "--lora-runtime", action="store_true", help="serve with LoRA kernels, not merged weights"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="reuse the variants an interrupted run under --runs finished; run the rest",
    )
    parser.add_argument(
        "--replot", action="store_true", help="only redraw the plots from the saved --runs"
    )
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.replot:
        write_doc(load_results(args), args, "", None, plots_only=True)
        return
    manifest = read_manifest(args.adapter)
    base, fmt = resolve_model(manifest.base_model.locate()), manifest.prompt_format
    tok = HFTokenizer.from_pretrained(base)
    common = [
        "--enforce-eager",
        "--max-model-len",
        str(args.max_model_len),
        "--kv-cache-memory-bytes",
        str(kv_bytes(base, args.kv_cache_tokens)),
    ]
    results = {
        v: load_variant(v, args)
        if args.resume and saved(v, args)
        else run_variant(v, args, fmt, tok, base, common)
        for v in args.variants
    }
    soak_report = run_soak(args, common) if args.soak_requests else None
    write_doc(results, args, command(), soak_report)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
