"""The adapter manifest (`manyicl.json`): everything the server needs to serve an adapter as it
was trained (base model, prompt format) and what a reader needs to trust it (config, metrics).
Written by `manyicl-finetune`, read by `manyicl-serve` and `manyicl-eval`."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from manyicl.artifacts import sha256_file
from manyicl.prompting import PromptFormat

MANIFEST_FILE = "manyicl.json"
# PEFT's file names for an adapter's weights and LoRA config, next to the manifest
WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
# The adapter shipped with the package (trained by benchmarks/quality.py, see docs/RESULTS.md):
# what `manyicl-serve` serves on the default model when given no --adapter and no --model.
DEFAULT_ADAPTER = Path(__file__).parent / "adapters" / "smollm2-135m-manyicl"


class BaseModelRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str  # the local folder, or a hub id, the adapter was trained on
    fingerprint: str  # model_fingerprint() of it: the server checks it before serving
    # The `manyicl-model` registry name when the base came from there: its cache folder
    # differs per machine, so a shipped adapter finds its base by name, not by `path`.
    registry: str | None = None

    def locate(self) -> str:
        """What `resolve_model` takes to find this base on the current machine."""
        return self.registry or self.path


class AdapterManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    manyicl_version: str
    created: str
    base_model: BaseModelRef
    prompt_format: PromptFormat
    objective: str
    loss_norm: str
    max_seq_len: int
    lora: dict[str, Any]
    training: dict[str, Any]  # the whole training config
    steps: int
    tokens_trained: int
    seed: int
    metrics: dict[str, float | None]
    # Tasks of the mixture that were left out because their source could not be had.
    missing_tasks: list[str] = []

    def adapter_name(self, adapter_dir: Path) -> str:
        """A name that changes whenever the weights change: vLLM keys its prefix cache by
        adapter name, so two different adapters must never share one."""
        weights = adapter_dir / WEIGHTS_FILE
        return f"manyicl-{sha256_file(weights)[:12]}"


def write_manifest(adapter_dir: Path, manifest: AdapterManifest) -> None:
    """Write atomically: a crash never leaves half a manifest next to an adapter."""
    tmp = adapter_dir / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(manifest.model_dump_json(indent=2) + "\n")
    os.replace(tmp, adapter_dir / MANIFEST_FILE)


def read_manifest(adapter_dir: Path) -> AdapterManifest:
    """Read and validate; the error says which file and what is wrong."""
    path = adapter_dir / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{adapter_dir} has no {MANIFEST_FILE}: not a manyicl adapter")
    try:
        return AdapterManifest.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError) as e:
        raise ValueError(f"{path} is not a valid manifest: {e}") from e


# The config keys a fingerprint covers: the shape of the network. The rest of config.json is
# written differently by different transformers versions (its version, key names), and a
# shipped adapter must still find its base on a machine that built it with another version.
_FINGERPRINT_KEYS = (
    "architectures",
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "vocab_size",
)


def model_fingerprint(path_or_id: str) -> str:
    """A cheap identity of a base model: its shape (a few config keys) plus each weight file's
    size and its first and last MiB. A hub id (no local folder) is its own fingerprint."""
    folder = Path(path_or_id)
    if not folder.is_dir():
        return f"hub:{path_or_id}"
    config = json.loads((folder / "config.json").read_text())
    shape = {k: config.get(k) for k in _FINGERPRINT_KEYS}
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        size = weights.stat().st_size
        digest.update(f"{weights.name}:{size}".encode())
        with weights.open("rb") as f:
            digest.update(f.read(1 << 20))
            f.seek(max(0, size - (1 << 20)))
            digest.update(f.read())
    return digest.hexdigest()[:16]
