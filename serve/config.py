"""`manyicl-serve`'s config: our flags, plus every vLLM engine flag passed through."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manyicl.artifacts import cache_root
from manyicl.cliargs import add_dataclass_args, arg, from_args
from manyicl.manifest import DEFAULT_ADAPTER

ROUTER_POLICIES = ("consistent_hash", "round_robin", "random", "power_of_two", "cache_aware")


@dataclass(frozen=True)
class ServeConfig:
    adapter: Path | None = arg(
        "adapter folder written by manyicl-finetune; its manyicl.json "
        "names the base model and the prompt format",
        default=None,
    )
    default_adapter: bool = arg(
        "without --adapter and --model, serve the adapter shipped with the package "
        "(manyicl/adapters/smollm2-135m-manyicl) on the default model; "
        "--no-default-adapter serves the bare base model",
        default=True,
    )
    adapter_name: str = arg("the `model` name clients use for the adapter", default="manyicl")
    merge_lora: bool = arg(
        "fold the adapter into the base weights (cached) and serve that as "
        "a plain model: no LoRA kernels at run time (vLLM's CPU LoRA "
        "kernels prefill ~7x slower), but the base model is not served",
        default=False,
    )
    prompt_format: str = arg(
        "prompt format without an adapter: plain, chat, or a JSON file", default="plain"
    )
    host: str = arg("address to listen on", default="127.0.0.1")
    port: int = arg("port to listen on", default=8000)
    api_key: str | None = arg(
        "require `Authorization: Bearer KEY` on every route but /health "
        "(default: $MANYICL_API_KEY, else no auth)",
        default=None,
    )
    public_metrics: bool = arg("serve /metrics without the API key", default=False)
    demo_set_dir: Path = arg(
        "where registered demo sets are stored", default_factory=lambda: cache_root() / "demo_sets"
    )
    max_body_bytes: int = arg("largest request body accepted (413 above)", default=32 << 20)
    warmup: bool = arg(
        "run one adapter request before listening (the first LoRA request "
        "pays a one-off kernel warm-up)",
        default=True,
    )
    demo_scheduler: bool = arg(
        "hold requests before the engine and admit them grouped by demo "
        "set, so blocks that do not fit the KV cache together are not "
        "evicted while requests for them wait",
        default=True,
    )
    max_inflight: int = arg("scheduler: requests in the engine at once", default=64)
    max_wait: float = arg(
        "scheduler: a request waiting this long (s) goes next, whatever "
        "its set (bounds unfairness)",
        default=30.0,
    )
    http_log_level: str = arg("log level of the HTTP server (uvicorn)", default="info")
    drain_timeout: float = arg(
        "on SIGTERM or SIGINT, seconds to let requests in flight finish before they are cut",
        default=30.0,
    )
    replicas: int = arg(
        "run this many servers (one per GPU; on CPU, the cores split between them) behind "
        "vllm-router on --host/--port; they share --demo-set-dir",
        default=1,
    )
    router_policy: str = arg(
        "with --replicas: vllm-router's policy; consistent_hash keeps every request with one "
        "X-Session-ID (a demo set's id) on one replica, so its block is cached there",
        default="consistent_hash",
    )

    def __post_init__(self) -> None:
        if self.adapter is not None and not self.adapter.is_dir():
            raise ValueError(f"--adapter {self.adapter} is not a folder")
        if not 0 <= self.port < 65536:
            raise ValueError("--port must be in [0, 65536)")
        if self.max_inflight < 1 or self.max_wait <= 0:
            raise ValueError("--max-inflight must be >= 1 and --max-wait > 0")
        if self.drain_timeout < 0:
            raise ValueError("--drain-timeout must be >= 0")
        if self.max_body_bytes < 1024:
            raise ValueError("--max-body-bytes must be >= 1024")
        if self.replicas < 1:
            raise ValueError("--replicas must be >= 1")
        if self.router_policy not in ROUTER_POLICIES:
            raise ValueError(f"--router-policy must be one of {', '.join(ROUTER_POLICIES)}")


def parse_config(argv: list[str] | None = None) -> tuple[ServeConfig, Any]:
    """(ServeConfig, vLLM AsyncEngineArgs) from the command line."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(
        prog="manyicl-serve",
        description="OpenAI-compatible many-shot server on vLLM with prefix caching. "
        "POST /v1/completions takes the OpenAI fields plus `demonstrations` or `demo_set`; "
        "the demo block is rendered exactly as in training and reused from the KV cache. "
        "Every vLLM engine flag below passes through (--max-model-len, "
        "--gpu-memory-utilization, --tensor-parallel-size, ...). --model defaults to the "
        "adapter's base model, else the offline default model. `--help=manyicl` lists this "
        "server's own flags, `--help=all` every flag.",
    )
    add_dataclass_args(parser.add_argument_group("manyicl"), ServeConfig, show_defaults=False)
    AsyncEngineArgs.add_cli_args(parser)
    parser.set_defaults(model=None, gpu_memory_utilization=None, enable_prefix_caching=True)
    args = parser.parse_args(argv)
    if args.adapter is None and args.model in (None, "default") and args.default_adapter:
        args.adapter = DEFAULT_ADAPTER if DEFAULT_ADAPTER.is_dir() else None
    if args.api_key is None:
        args.api_key = os.environ.get("MANYICL_API_KEY")
    try:
        config = from_args(ServeConfig, args)
    except ValueError as e:
        parser.error(str(e))
    return config, AsyncEngineArgs.from_cli_args(args)
