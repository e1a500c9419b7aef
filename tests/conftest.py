"""Shared fixtures. The default model is materialised once into the user cache (or
$MANYICL_CACHE) and reused by every test and every later run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `chartok`


@pytest.fixture(scope="session")
def smollm2_dir() -> str:
    """Folder of the default bf16 SmolLM2 checkpoint (downloads ~93 MB once)."""
    from manyicl.models import resolve_model

    return resolve_model("default")


@pytest.fixture(scope="session")
def smollm2_hf_tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture(scope="session")
def smollm2_tok(smollm2_hf_tokenizer):
    from manyicl.prompting import HFTokenizer

    return HFTokenizer(smollm2_hf_tokenizer)
