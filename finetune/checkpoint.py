"""Training checkpoints under `out/checkpoints/step-NNNNNNN/`: a loadable PEFT adapter (the
trainable weights, exactly) plus the trainer state (optimizer, counters, RNG). Written to a
temporary folder and renamed, so a kill at any moment leaves the previous checkpoint intact.
Each also carries the adapter manifest, so it loads wherever a finished adapter does.
Small enough to commit (about 60 MB for SmolLM2 at r=16), so a long run can continue from
what a repository holds."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import torch

from manyicl.manifest import WEIGHTS_FILE, AdapterManifest, write_manifest

_STATE = "trainer_state.pt"


def checkpoint_dir(out: Path) -> Path:
    return out / "checkpoints"


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint, if any."""
    found = sorted(p for p in checkpoint_dir(out).glob("step-*") if (p / _STATE).is_file())
    return found[-1] if found else None


def save_checkpoint(
    out: Path,
    step: int,
    model,
    optimizer,
    counters: dict[str, Any],
    keep: int,
    manifest: AdapterManifest | None = None,
) -> Path:
    """Save, then delete all but the newest `keep` checkpoints. With `manifest`, the checkpoint
    is also an adapter that `manyicl-eval --adapter` and `manyicl-serve --adapter` load."""
    root = checkpoint_dir(out)
    rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    state = {"optimizer": optimizer.state_dict(), "counters": counters, "rng": rng}
    final = _write_adapter(root / f"step-{step:07d}", model, manifest, state)
    for old in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_snapshot(out: Path, step: int, model, manifest: AdapterManifest) -> Path:
    """An adapter-only copy of the weights at `step` (no optimizer: a third of a checkpoint's
    bytes), never deleted: a run's held-out score can peak long before its last step."""
    return _write_adapter(out / "snapshots" / f"step-{step:07d}", model, manifest)


def _write_adapter(
    final: Path, model, manifest: AdapterManifest | None, state: dict | None = None
) -> Path:
    """The adapter (float32 as trained), its manifest and any trainer state, written beside
    `final` and renamed onto it, so a kill at any moment leaves no half-written folder."""
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    if state is not None:
        torch.save(state, tmp / _STATE)
    if manifest is not None:
        write_manifest(tmp, manifest)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def load_adapter_weights(folder: Path, model) -> None:
    """Set the LoRA weights of a peft `model` from an adapter folder (a checkpoint or a finished
    adapter), refusing one whose weights do not all fit this model."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    try:
        result = set_peft_model_state_dict(model, load_file(folder / WEIGHTS_FILE))
    except RuntimeError as e:  # a tensor of another shape (another rank)
        raise ValueError(f"adapter {folder} does not match this model: {e}") from e
    if unexpected := getattr(result, "unexpected_keys", []):
        raise ValueError(f"adapter {folder} does not match this model: {unexpected[:3]}")


def load_checkpoint(path: Path, model, optimizer) -> dict[str, Any]:
    """Restore weights, optimizer and RNG in place; return the saved counters."""
    state = torch.load(path / _STATE, map_location="cpu", weights_only=False)
    load_adapter_weights(path, model)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    random.setstate(state["rng"]["python"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return state["counters"]
