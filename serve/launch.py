"""Building the engine from the config: adapter manifest -> base model, format, LoRA."""

from __future__ import annotations

import logging
from pathlib import Path

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
        engine_args.model or (manifest.base_model.path if manifest else "default")
    )
    if manifest and model_fingerprint(model_path) != manifest.base_model.fingerprint:
        raise ValueError(
            f"the adapter was trained on {manifest.base_model.path}, whose "
            f"fingerprint differs from {model_path}; serve it on its own base"
        )
    engine_args.model = model_path
    if engine_args.gpu_memory_utilization is None:  # on CPU this much of RAM is reserved
        engine_args.gpu_memory_utilization = 0.35 if current_platform.is_cpu() else 0.9
    if manifest:
        rank = int(manifest.lora["r"])
        engine_args.enable_lora = True
        engine_args.max_lora_rank = max(
            engine_args.max_lora_rank or 0, next(r for r in _LORA_RANKS if r >= rank)
        )
    hf_tok = AutoTokenizer.from_pretrained(model_path)
    fmt = manifest.prompt_format if manifest else _format(cfg.prompt_format, hf_tok)
    llm = AsyncLLM.from_engine_args(engine_args)
    base = ServedModel(_base_name(engine_args, model_path), None, model_path)
    served = [base]
    if manifest:
        lora = LoRARequest(manifest.adapter_name(cfg.adapter), 1, str(cfg.adapter))
        served.insert(0, ServedModel(cfg.adapter_name, lora, model_path))
    return ManyICLEngine(llm, HFTokenizer(hf_tok), fmt, served, llm.model_config.max_model_len)


def _format(spec: str, hf_tok) -> PromptFormat:
    return PromptFormat.load(spec) if spec.endswith(".json") else get_format(spec, hf_tok)


def _base_name(engine_args, model_path: str) -> str:
    names = engine_args.served_model_name
    if names:
        return names if isinstance(names, str) else names[0]
    return Path(model_path).name
