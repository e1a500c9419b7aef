"""The offline default model: materialised once, loadable by transformers and by vLLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from manyicl.models import VALIDATION_PROMPTS, resolve_model, validate


def test_resolve_model_accepts_folders_and_hub_ids(tmp_path, smollm2_dir):
    assert resolve_model(None) == smollm2_dir == resolve_model("default")
    assert resolve_model(smollm2_dir) == smollm2_dir
    assert resolve_model("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB/SmolLM2-135M"
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        resolve_model(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "missing"))


def test_checkpoint_is_plain_bf16_with_a_chat_template(smollm2_dir, smollm2_hf_tokenizer):
    config = json.loads((Path(smollm2_dir) / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["dtype"] == "bfloat16" and config["architectures"] == ["LlamaForCausalLM"]
    assert list(Path(smollm2_dir).glob("*.safetensors"))
    assert "<|im_start|>" in smollm2_hf_tokenizer.chat_template


@pytest.mark.slow
def test_greedy_generation_matches_the_gguf_original(smollm2_dir):
    assert validate(Path(smollm2_dir), VALIDATION_PROMPTS) == [True] * len(VALIDATION_PROMPTS)


_VLLM_SCRIPT = """
import json, sys
from vllm import LLM, SamplingParams
from vllm.inputs import TokensPrompt
if __name__ == "__main__":
    llm = LLM(model=sys.argv[1], max_model_len=512, kv_cache_memory_bytes=128 << 20,
              enforce_eager=True)
    prompts = [TokensPrompt(prompt_token_ids=ids) for ids in json.loads(sys.argv[2])]
    outs = llm.generate(prompts, SamplingParams(max_tokens=8, temperature=0))
    print("RESULT", json.dumps([list(o.outputs[0].token_ids) for o in outs]))
"""


@pytest.mark.slow
def test_vllm_generates_what_transformers_generates(smollm2_dir, smollm2_hf_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    prompts = [smollm2_hf_tokenizer.encode(p) for p in VALIDATION_PROMPTS]
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    want = []
    for ids in prompts:
        out = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False)
        want.append(out[0, len(ids) :].tolist())
    # vLLM's CPU engine spawns processes: run it as a script with a __main__ guard.
    proc = subprocess.run(
        [sys.executable, "-c", _VLLM_SCRIPT, smollm2_dir, json.dumps(prompts)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.split("RESULT", 1)[1].splitlines()[0])
    # bf16 weights in vLLM vs float32 compute here: allow the tail to drift, not the start.
    assert [g[:4] for g in got] == [w[:4] for w in want]


@pytest.mark.parametrize(
    "script",
    ["manyicl-model", "manyicl-finetune", "manyicl-serve", "manyicl-loadtest", "manyicl-eval"],
)
def test_console_scripts_explain_themselves(script):
    exe = Path(sys.executable).parent / script
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"usage: {script}" in proc.stdout
