"""Shared fixtures. The default model is materialised once into the user cache (or
$MANYICL_CACHE) and reused by every test and every later run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `chartok`


@pytest.fixture(scope="session")
def benchmark_module():
    """Import a script of benchmarks/ by module name (the scripts import their sibling
    `common`, so the folder is on sys.path while one is imported)."""
    import importlib

    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")

    def load(name: str):
        sys.path.insert(0, folder)
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(folder)

    return load


@pytest.fixture(scope="session")
def bigbench_tasks() -> Path:
    """The unpacked BIG-bench tasks (downloads the 358 MB archive once). Tests of the BIG-bench
    mixture itself skip, saying why, where the registry no longer serves the archive and no
    copy is in the cache; every other test uses tasks the tests make."""
    from manyicl.artifacts import ArtifactError
    from manyicl.tasks import bigbench

    try:
        return bigbench.tasks_dir()
    except ArtifactError as e:
        pytest.skip(f"no BIG-bench archive here: {e}")


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


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, smollm2_hf_tokenizer) -> str:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer: trains in seconds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(smollm2_hf_tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        # Large enough for logits to move: with the default 0.02 a normed hidden state times
        # a tiny embedding caps every logit near 1, and LoRA cannot train the norms.
        initializer_range=0.3,
        bos_token_id=smollm2_hf_tokenizer.bos_token_id,
        eos_token_id=smollm2_hf_tokenizer.eos_token_id,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    smollm2_hf_tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def toy_mixture(tmp_path_factory) -> str:
    """A learnable two-task mixture: label a word by its first letter; reverse 3 letters."""
    import json
    import random

    folder = tmp_path_factory.mktemp("toy-mixture")
    rng = random.Random(0)
    words = ["apple", "avocado", "banana", "blueberry", "cherry", "cranberry", "apricot", "bean"]
    with (folder / "fruit.jsonl").open("w") as f:
        for _ in range(120):
            w = rng.choice(words)
            f.write(json.dumps({"input": w, "output": "A" if w[0] == "a" else "other"}) + "\n")
    letters = "abcdefgh"
    with (folder / "reverse.jsonl").open("w") as f:
        for _ in range(120):
            s = "".join(rng.choice(letters) for _ in range(3))
            f.write(json.dumps({"input": " ".join(s), "output": " ".join(reversed(s))}) + "\n")
    (folder / "mix.toml").write_text(
        "[settings]\neval_examples = 16\nmin_examples = 32\n"
        '[[task]]\nname = "fruit"\nsource = "jsonl"\npath = "fruit.jsonl"\n'
        '[[task]]\nname = "reverse"\nsource = "jsonl"\npath = "reverse.jsonl"\n'
    )
    return str(folder / "mix.toml")


@pytest.fixture(scope="session")
def smollm2_adapter(tmp_path_factory, smollm2_dir, toy_mixture) -> Path:
    """A real adapter on the default model, made by the trainer (2 short steps)."""
    from manyicl.finetune.config import FinetuneConfig
    from manyicl.finetune.trainer import train

    out = tmp_path_factory.mktemp("adapter") / "out"
    train(
        FinetuneConfig(
            out=out,
            model=smollm2_dir,
            mixture=Path(toy_mixture),
            max_seq_len=128,
            max_steps=2,
            grad_accum=1,
            lora_r=8,
            lora_alpha=16,
            eval_sequences=2,
            gradient_checkpointing=False,
        )
    )
    return out


@pytest.fixture(scope="session")
def server(tmp_path_factory, smollm2_dir):
    """One real `manyicl-serve` for the whole session, with an API key: no --adapter, so it
    serves the shipped default adapter on SmolLM2 (LoRA kernels; eager mode, 512 MiB KV)."""
    from serverproc import manyicl_server

    folder = tmp_path_factory.mktemp("server")
    proc = manyicl_server(
        [
            "--max-model-len",
            "2048",
            "--enforce-eager",
            "--demo-set-dir",
            str(folder / "demo_sets"),
            "--max-body-bytes",
            "1000000",
            "--kv-cache-memory-bytes",
            str(512 << 20),
        ],
        folder / "server.log",
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def http(server):
    """An httpx client of the session server, with its API key."""
    import httpx

    from serverproc import API_KEY

    with httpx.Client(
        base_url=server.url, timeout=300, headers={"Authorization": f"Bearer {API_KEY}"}
    ) as c:
        yield c


@pytest.fixture
def client(server):
    """The official `openai` client of the session server."""
    import openai

    from serverproc import API_KEY

    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=300)
