"""Building the engine from the config: adapter manifest -> base model, format, LoRA."""

from __future__ import annotations

import logging
from pathlib import Path

from manyicl.artifacts import cache_root
from manyicl.manifest import model_fingerprint, read_manifest
from manyicl.models import resolve_model
from manyicl.prompting import HFTokenizer, get_format
from manyicl.prompting.formats import PromptFormat
from manyicl.serve.config import ServeConfig
from manyicl.serve.engine import ManyICLEngine, ServedModel

log = logging.getLogger(__name__)

_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # what vLLM's --max-lora-rank accepts


def build_engine(cfg: ServeConfig, engine_args) -> ManyICLEngine:
    """Start vLLM's AsyncLLM for the adapter (or base model) named by `cfg`."""
    from transformers import AutoTokenizer
    from vllm.lora.request import LoRARequest
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
    if manifest and cfg.merge_lora:
        model_path = str(merged_checkpoint(cfg.adapter, model_path))
    engine_args.model = model_path
    if engine_args.gpu_memory_utilization is None:  # on CPU this much of RAM is reserved
        engine_args.gpu_memory_utilization = 0.35 if current_platform.is_cpu() else 0.9
    if manifest and not cfg.merge_lora:
        rank = int(manifest.lora["r"])
        engine_args.enable_lora = True
        engine_args.max_lora_rank = max(
            engine_args.max_lora_rank or 0, next(r for r in _LORA_RANKS if r >= rank)
        )
    hf_tok = AutoTokenizer.from_pretrained(model_path)
    fmt = manifest.prompt_format if manifest else _format(cfg.prompt_format, hf_tok)
    llm = AsyncLLM.from_engine_args(engine_args)
    if manifest and cfg.merge_lora:  # one model: the adapter, already in the weights
        served = [ServedModel(cfg.adapter_name, None, model_path)]
    else:
        served = [ServedModel(_base_name(engine_args, model_path), None, model_path)]
    if manifest and not cfg.merge_lora:
        lora = LoRARequest(manifest.adapter_name(cfg.adapter), 1, str(cfg.adapter))
        served.insert(0, ServedModel(cfg.adapter_name, lora, model_path))
    return ManyICLEngine(llm, HFTokenizer(hf_tok), fmt, served, llm.model_config.max_model_len)


def merged_checkpoint(adapter: Path, base_path: str) -> Path:
    """The base model with the adapter folded in, saved once under the cache (keyed by the
    adapter's weights) and reused."""
    import os
    import tempfile

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_root() / "merged" / read_manifest(adapter).adapter_name(adapter)
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("merging %s into %s -> %s", adapter, base_path, target)
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.bfloat16)
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-") as tmp:
        out = Path(tmp) / "model"
        merged.save_pretrained(out)
        AutoTokenizer.from_pretrained(base_path).save_pretrained(out)
        try:
            os.rename(out, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    return target


def _format(spec: str, hf_tok) -> PromptFormat:
    return PromptFormat.load(spec) if spec.endswith(".json") else get_format(spec, hf_tok)


def _base_name(engine_args, model_path: str) -> str:
    names = engine_args.served_model_name
    if names:
        return names if isinstance(names, str) else names[0]
    return Path(model_path).name
