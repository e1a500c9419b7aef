"""An adapter folded into its base model's weights, saved once and reused: what the server
serves with `--merge-lora` and what `manyicl-eval` scores (no LoRA kernels at run time)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from manyicl.artifacts import cache_root
from manyicl.manifest import read_manifest

log = logging.getLogger(__name__)


def merged_checkpoint(adapter: Path, base_path: str, dtype: str) -> Path:
    """The base model with `adapter` folded in, computed and saved in `dtype` (float32 or
    bfloat16) under the cache, keyed by the adapter's weights and the dtype.

    The dtype matters beyond speed: a LoRA delta is small beside the weight it is added to,
    and bf16 keeps ~3 significant digits, so a merge in bf16 rounds much of the delta away.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"merge dtype must be float32 or bfloat16, got {dtype!r}")
    name = read_manifest(adapter).adapter_name(adapter)
    target = cache_root() / "merged" / f"{name}-{dtype}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("merging %s into %s in %s -> %s", adapter, base_path, dtype, target)
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=getattr(torch, dtype))
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
