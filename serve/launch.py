"""Building the engine from the config: adapter manifest -> base model, format, LoRA."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from manyicl.cpu import RESERVED_CPUS, auto_dtype, cpu_flags, reserved_cpus
from manyicl.manifest import AdapterManifest, model_fingerprint, read_manifest
from manyicl.merge import merged_checkpoint
from manyicl.models import resolve_model
from manyicl.prompting import BlockPadding, HFTokenizer, block_padding, get_format
from manyicl.prompting.formats import PromptFormat
from manyicl.serve.config import ServeConfig
from manyicl.serve.engine import ManyICLEngine, ServedModel

log = logging.getLogger(__name__)

_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # what vLLM's --max-lora-rank accepts


def build_engine(cfg: ServeConfig, engine_args) -> ManyICLEngine:
    """Start vLLM's AsyncLLM for the adapter (or base model) named by `cfg`."""
    from transformers import AutoTokenizer
    from vllm.platforms import current_platform
    from vllm.v1.engine.async_llm import AsyncLLM

    manifest = read_manifest(cfg.adapter) if cfg.adapter else None
    model_path = resolve_model(
        engine_args.model or (manifest.base_model.locate() if manifest else "default")
    )
    if manifest and model_fingerprint(model_path) != manifest.base_model.fingerprint:
        raise ValueError(
            f"the adapter was trained on {manifest.base_model.path}, whose "
            f"fingerprint differs from {model_path}; serve it on its own base"
        )
    choose_dtype(engine_args, current_platform.is_cpu())
    if current_platform.is_cpu() and (reserved := reserved_cpus(os.environ)):
        os.environ[RESERVED_CPUS] = reserved  # read by the engine processes it spawns
        log.info("every core for the engine's worker (%s=%s)", RESERVED_CPUS, reserved)
    if manifest and cfg.merge_lora:
        merge_dtype = "float32" if engine_args.dtype == "float32" else "bfloat16"
        model_path = str(merged_checkpoint(cfg.adapter, model_path, merge_dtype))
    engine_args.model = model_path
    if engine_args.gpu_memory_utilization is None:  # on CPU this much of RAM is reserved
        engine_args.gpu_memory_utilization = 0.35 if current_platform.is_cpu() else 0.9
    if manifest and not cfg.merge_lora:
        engine_args.enable_lora = True
        engine_args.max_lora_rank = max(engine_args.max_lora_rank or 0, _vllm_rank(manifest))
    hf_tok = AutoTokenizer.from_pretrained(model_path)
    fmt = manifest.prompt_format if manifest else _format(cfg.prompt_format, hf_tok)
    llm = AsyncLLM.from_engine_args(engine_args)
    served = _served_models(cfg, manifest, engine_args, model_path)
    tok = HFTokenizer(hf_tok)
    padding = _padding(fmt, tok, llm.vllm_config.cache_config.block_size)
    return ManyICLEngine(llm, tok, fmt, served, llm.model_config.max_model_len, padding)


def _served_models(
    cfg: ServeConfig, manifest: AdapterManifest | None, engine_args, model_path: str
) -> list[ServedModel]:
    """The model names the API answers to, the default first: the adapter (merged into the
    weights, or as a LoRA request) and the base, or the base alone."""
    from vllm.lora.request import LoRARequest

    if manifest and cfg.merge_lora:  # one model: the adapter, already in the weights
        return [ServedModel(cfg.adapter_name, None, model_path)]
    served = [ServedModel(_base_name(engine_args, model_path), None, model_path)]
    if manifest:
        lora = LoRARequest(manifest.adapter_name(cfg.adapter), 1, str(cfg.adapter))
        served.insert(0, ServedModel(cfg.adapter_name, lora, model_path))
    return served


def _vllm_rank(manifest: AdapterManifest) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds the adapter (a soup's ranks add
    up, so this can run out); checked before the engine starts."""
    rank = int(manifest.lora["r"])
    if rank > _LORA_RANKS[-1]:
        raise ValueError(
            f"the adapter's LoRA rank {rank} is above vLLM's largest ({_LORA_RANKS[-1]}); "
            "serve it with --merge-lora"
        )
    return next(r for r in _LORA_RANKS if r >= rank)


def _padding(fmt: PromptFormat, tok: HFTokenizer, block_size: int) -> BlockPadding | None:
    """The demo-block filler for this engine's KV blocks, logged with how it relates to the
    format's own alignment (what training rendered)."""
    padding = block_padding(fmt, tok, block_size)
    if padding is None:
        log.info("demo blocks are not aligned (format %r has align 0)", fmt.name)
    elif padding.multiple != fmt.align:
        log.warning(
            "KV block size %d does not divide the format's align %d: demo blocks are padded to "
            "multiples of %d, more filler than training saw",
            block_size,
            fmt.align,
            padding.multiple,
        )
    else:
        log.info(
            "demo blocks end on multiples of %d tokens (KV blocks of %d)", fmt.align, block_size
        )
    return padding


def choose_dtype(engine_args, on_cpu: bool) -> None:
    """`--dtype auto` on a CPU: float32 unless the CPU computes bf16 natively; logged with
    its reason. Any other --dtype is used as given."""
    if engine_args.dtype != "auto":
        log.info("dtype %s (--dtype)", engine_args.dtype)
        return
    dtype, why = auto_dtype(on_cpu, cpu_flags())
    engine_args.dtype = dtype
    log.info("dtype %s: %s", dtype, why)


def _format(spec: str, hf_tok) -> PromptFormat:
    return PromptFormat.load(spec) if spec.endswith(".json") else get_format(spec, hf_tok)


def _base_name(engine_args, model_path: str) -> str:
    names = engine_args.served_model_name
    if names:
        return names if isinstance(names, str) else names[0]
    return Path(model_path).name
