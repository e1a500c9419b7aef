"""`manyicl-loadtest`: drive a server with many clients and demo sets.

manyicl-loadtest --workload fit-2k-c8 --mode demo-set          # against localhost:8000
manyicl-loadtest --url http://127.0.0.1:8001 --mode text --model manyicl   # plain vLLM
manyicl-loadtest --soak --soak-requests 1000                    # mixed valid/invalid
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from manyicl.cliargs import arg, parse_dataclass
from manyicl.loadtests.workload import WORKLOADS, Mode, Order


@dataclass(frozen=True)
class LoadtestConfig:
    url: str = arg(
        "server to load (loopback only, unless --allow-remote)", default="http://127.0.0.1:8000"
    )
    mode: Mode = arg(
        "demo-set: register sets, name them; inline: demonstrations in every "
        "request; text: the full rendered prompt string (any OpenAI server)",
        default=Mode.DEMO_SET,
    )
    model: str = arg("`model` field of every request", default="manyicl")
    workload: str = arg(f"named workload: {', '.join(sorted(WORKLOADS))}", default="fit-2k-c8")
    num_sets: int | None = arg("override: demo sets", default=None)
    block_tokens: int | None = arg("override: tokens per demo block", default=None)
    queries_per_set: int | None = arg("override: queries per set", default=None)
    order: Order | None = arg("override: round-robin, random or bursty", default=None)
    concurrency: int | None = arg("override: requests in flight", default=None)
    rate: float | None = arg(
        "requests/s with Poisson arrivals, instead of concurrency", default=None
    )
    max_tokens: int | None = arg("override: tokens to generate per request", default=None)
    max_seconds: float = arg("stop starting requests after this long", default=600.0)
    adapter: Path | None = arg(
        "adapter folder: its prompt format and base tokenizer render the "
        "workload (else --tokenizer and --prompt-format)",
        default=None,
    )
    tokenizer: str = arg("model whose tokenizer sizes and renders the sets", default="default")
    prompt_format: str = arg("plain or chat, without --adapter", default="plain")
    api_key: str | None = arg("Bearer key for the server", default=None)
    allow_remote: bool = arg("allow a non-loopback --url", default=False)
    out: Path = arg(
        "folder for requests JSONL, summary JSON and plots",
        default_factory=lambda: Path("runs") / time.strftime("loadtest-%Y%m%d-%H%M%S"),
    )
    soak: bool = arg("run the soak instead of a workload", default=False)
    soak_requests: int = arg("soak: requests", default=1000)
    soak_concurrency: int = arg("soak: requests in flight", default=16)
    server_pid: int | None = arg("soak: server process to measure RSS of", default=None)

    def __post_init__(self) -> None:
        if self.workload not in WORKLOADS:
            raise ValueError(f"--workload must be one of {sorted(WORKLOADS)}")
        for name in ("num_sets", "block_tokens", "queries_per_set", "concurrency", "max_tokens"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("--rate must be > 0")


def render_setup(cfg: LoadtestConfig):
    """(prompt format, tokenizer) that render the workload as the server will."""
    from manyicl.manifest import read_manifest
    from manyicl.models import resolve_model
    from manyicl.prompting import HFTokenizer, get_format

    if cfg.adapter:
        manifest = read_manifest(cfg.adapter)
        return manifest.prompt_format, HFTokenizer.from_pretrained(
            resolve_model(manifest.base_model.locate())
        )
    tok = HFTokenizer.from_pretrained(resolve_model(cfg.tokenizer))
    return get_format(cfg.prompt_format, tok.hf), tok


async def run(cfg: LoadtestConfig) -> dict:
    from manyicl.loadtests.report import plot_ttft_cdf, plot_ttft_vs_shots, save_run, table
    from manyicl.loadtests.runner import run_workload
    from manyicl.loadtests.workload import get_workload

    cfg.out.mkdir(parents=True, exist_ok=True)
    if cfg.soak:
        return await _soak(cfg)
    fmt, tok = render_setup(cfg)
    w = get_workload(
        cfg.workload,
        num_sets=cfg.num_sets,
        block_tokens=cfg.block_tokens,
        queries_per_set=cfg.queries_per_set,
        order=cfg.order,
        concurrency=cfg.concurrency,
        rate=cfg.rate,
        max_tokens=cfg.max_tokens,
    )
    report = await run_workload(
        cfg.url, cfg.mode, cfg.model, w, fmt, tok, cfg.api_key, cfg.max_seconds
    )
    name = f"{w.name}-{cfg.mode}"
    save_run(report, cfg.out, name)
    plot_ttft_cdf({name: report}, cfg.out / f"{name}.ttft_cdf.png", f"TTFT, {w.name}")
    plot_ttft_vs_shots({name: report}, cfg.out / f"{name}.ttft_vs_shots.png", f"TTFT, {w.name}")
    print(table({name: report.summary}))
    print(f"written to {cfg.out}/")
    return report.summary


async def _soak(cfg: LoadtestConfig) -> dict:
    """The soak run: its report printed and written to soak.json."""
    from manyicl.loadtests.soak import dumps, soak

    report = await soak(
        cfg.url,
        cfg.model,
        cfg.soak_requests,
        cfg.soak_concurrency,
        api_key=cfg.api_key,
        server_pid=cfg.server_pid,
        max_seconds=cfg.max_seconds,
    )
    (cfg.out / "soak.json").write_text(dumps(report) + "\n")
    print(dumps(report))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="manyicl-loadtest",
        description="Drive an OpenAI-compatible server with many clients and many-shot demo "
        "sets; records TTFT, inter-token latency, latency, cached/prompt/generated tokens per "
        "request (every request streams), then writes a JSONL, a summary JSON, a table and "
        "PNG plots. --soak sends mixed valid/invalid requests instead.",
    )
    cfg = parse_dataclass(parser, LoadtestConfig, argv)
    from manyicl.loadtests.runner import check_local

    try:
        check_local(cfg.url, cfg.allow_remote)
    except ValueError as e:
        parser.error(str(e))
    asyncio.run(run(cfg))


if __name__ == "__main__":
    main()
