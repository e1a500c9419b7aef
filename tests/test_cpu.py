"""The CPU dtype rule: float32 unless the CPU computes bf16 natively; merges keep the delta."""

from __future__ import annotations

import pytest

from manyicl.cpu import auto_dtype, describe, has_native_bf16, reserved_cpus

# on a CPU?, flags -> dtype `--dtype auto` picks
DTYPE_TABLE = [
    (True, {"avx2", "fma"}, "float32"),  # AVX2 only (the AMD EPYC measured here)
    (True, {"avx2", "avx512f"}, "float32"),  # AVX-512 without its bf16 extension
    (True, {"avx2", "avx512f", "avx512_bf16"}, "bfloat16"),  # Cooper Lake, Zen 4
    (True, {"avx2", "avx512f", "amx_bf16", "amx_tile"}, "bfloat16"),  # Sapphire Rapids
    (True, {"asimd", "bf16"}, "bfloat16"),  # Arm with the BF16 extension (Graviton 3)
    (True, {"asimd"}, "float32"),
    (True, set(), "float32"),
    (False, set(), "auto"),  # a GPU: the checkpoint's dtype
]


@pytest.mark.parametrize("on_cpu,flags,want", DTYPE_TABLE)
def test_auto_dtype_table(on_cpu, flags, want):
    dtype, why = auto_dtype(on_cpu, frozenset(flags))
    assert dtype == want and why
    assert has_native_bf16(flags) == (want == "bfloat16")


# --dtype, native bf16 on the CPU? -> (weights, matrix products) of training on a CPU
PRECISION_TABLE = [
    ("auto", False, "float32", None),  # AVX2 only: bf16 would run on a slow fallback
    ("auto", True, "float32", "bfloat16"),  # Zen 4, Sapphire Rapids: bf16-mixed
    ("bf16-mixed", False, "float32", "bfloat16"),  # asked for: obeyed
    ("bfloat16", True, "bfloat16", None),
    ("float32", True, "float32", None),
]


@pytest.mark.parametrize("name,native,weights,compute", PRECISION_TABLE)
def test_training_precision_table(name, native, weights, compute):
    import torch

    from manyicl.finetune.modeling import resolve_precision

    p = resolve_precision(name, torch.device("cpu"), native)
    assert p.weights == getattr(torch, weights)
    assert p.compute == (compute and getattr(torch, compute))
    x = torch.ones(2, 2)
    with p.autocast(torch.device("cpu")):
        assert (x @ x).dtype == (p.compute or torch.float32)


def test_describe_names_the_cpu_and_its_bf16_flags():
    text = describe()
    assert "avx512_bf16" in text or "none of" in text or "bf16" in text


@pytest.mark.slow
def test_a_float32_merge_keeps_a_small_delta_that_bf16_rounds_away(tmp_path, smollm2_adapter):
    """Merged in bf16, most of a small LoRA delta is lost; in float32 it is kept exactly."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from manyicl.manifest import read_manifest
    from manyicl.merge import merged_checkpoint

    base_path = read_manifest(smollm2_adapter).base_model.path
    f32 = merged_checkpoint(smollm2_adapter, base_path, "float32")
    assert f32 == merged_checkpoint(smollm2_adapter, base_path, "float32")  # cached
    assert f32.name.endswith("-float32")
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    want = PeftModel.from_pretrained(base, smollm2_adapter).merge_and_unload().state_dict()
    got = {}
    for file in f32.glob("*.safetensors"):
        got.update(load_file(file))
    name = "model.layers.0.self_attn.q_proj.weight"
    assert got[name].dtype == torch.float32
    assert torch.equal(got[name], want[name])


@pytest.mark.parametrize(
    "environ, want",
    [({}, "0"), ({"VLLM_CPU_NUM_OF_RESERVED_CPU": "1"}, None), ({"OTHER": "1"}, "0")],
)
def test_offline_engines_get_every_core_unless_the_user_says(environ, want):
    assert reserved_cpus(environ) == want
