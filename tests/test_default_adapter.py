"""The adapter shipped in the package: what `manyicl-serve` picks without flags, and that it is
a real, loadable adapter for the default model (the session server in conftest serves it)."""

from __future__ import annotations

import pytest

from manyicl.finetune.mixture import DEFAULT_MIXTURE, resolve_mixture
from manyicl.manifest import DEFAULT_ADAPTER, model_fingerprint, read_manifest
from manyicl.serve.config import parse_config


def test_the_default_adapter_is_shipped():
    manifest = read_manifest(DEFAULT_ADAPTER)
    assert manifest.objective == "all-targets"
    assert manifest.base_model.registry == "smollm2-135m-instruct"
    assert "| task (metric) | 0 shots |" in (DEFAULT_ADAPTER / "EVAL.md").read_text()
    assert (DEFAULT_ADAPTER / "adapter_model.safetensors").stat().st_size < 16 << 20


def test_its_committed_config_reproduces_its_training_config(tmp_path):
    from manyicl.finetune.config import parse_config as finetune_config

    trained = read_manifest(DEFAULT_ADAPTER).training
    cfg = finetune_config(["--config", str(DEFAULT_ADAPTER / "finetune.json"), "--out", "x"])
    again = cfg.to_json()
    # A packaged mixture, found wherever this checkout is (the manifest has the trainer's path).
    packaged = resolve_mixture(cfg.mixture)
    assert packaged.parent == DEFAULT_MIXTURE.parent and packaged.is_file()
    for key in ("out", "resume", "mixture"):
        del again[key], trained[key]
    # Options added to the trainer after this adapter was trained must parse to their "off"
    # default (None, or 0 for a step interval), so the committed config still means the run
    # that made the adapter.
    added = {key: again.pop(key) for key in set(again) - set(trained)}
    assert all(value is None or value == 0 for value in added.values()), added
    assert again == trained


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], DEFAULT_ADAPTER),
        (["--model", "default"], DEFAULT_ADAPTER),
        (["--no-default-adapter"], None),
        (["--model", "HuggingFaceTB/SmolLM2-360M"], None),  # another base: no default adapter
        (["--adapter", "{tmp}"], "{tmp}"),
    ],
)
def test_serve_picks_the_default_adapter_only_without_adapter_and_model(tmp_path, argv, expected):
    argv = [a.format(tmp=tmp_path) for a in argv]
    cfg, _ = parse_config(argv)
    want = tmp_path if expected == "{tmp}" else expected
    assert cfg.adapter == want


@pytest.mark.slow
def test_the_default_adapter_fits_the_default_model_and_changes_it(smollm2_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    assert model_fingerprint(smollm2_dir) == read_manifest(DEFAULT_ADAPTER).base_model.fingerprint
    base = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    ids = torch.tensor([[1, 4093, 28, 253, 198, 7045, 28]])  # (1, T) any ids
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, DEFAULT_ADAPTER)(ids).logits
    assert not torch.allclose(before, tuned, atol=1e-3)


def test_fingerprint_is_the_network_not_the_transformers_version(tmp_path):
    import json

    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "llama", "hidden_size": 8, "transformers_version": "5.19.0"})
    )
    (tmp_path / "model.safetensors").write_bytes(b"\x01" * 4096)
    before = model_fingerprint(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "transformers_version": "5.30"}))
    assert model_fingerprint(str(tmp_path)) == before
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_size": 16}))
    assert model_fingerprint(str(tmp_path)) != before
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes(b"\x02" * 4096)
    assert model_fingerprint(str(tmp_path)) != before
