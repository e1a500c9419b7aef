"""Before any compute: resolve the model, the prompt format and the data, and check them all.

prepare(cfg) -> Setup   # raises FinetuneError with the reason when an input is bad
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from manyicl.finetune.checkpoint import latest_checkpoint
from manyicl.finetune.config import FinetuneConfig
from manyicl.finetune.mixing import MIN_INPUTS, family, short_inputs
from manyicl.finetune.mixture import MixtureError, Remapping, load_mixture
from manyicl.finetune.sequences import TrainSequence, eval_sequences
from manyicl.finetune.tokenized import TokenizedTask, tokenize_tasks
from manyicl.manifest import CONFIG_FILE, MANIFEST_FILE
from manyicl.models import resolve_model
from manyicl.prompting import HFTokenizer, PromptFormat, get_format


class FinetuneError(Exception):
    """A problem with the inputs, found before training starts."""


@dataclass(frozen=True)
class Setup:
    model_path: str
    fmt: PromptFormat
    max_seq_len: int
    tasks: list[TokenizedTask]
    eval_seqs: list[TrainSequence]
    pad_id: int
    remapping: Remapping
    missing: tuple[str, ...] = ()  # tasks of the mixture left out: their source is missing


def load_format(spec: str, hf_tokenizer) -> PromptFormat:
    """A preset name or a JSON file written by `PromptFormat.save`."""
    if spec.endswith(".json"):
        return PromptFormat.load(spec)
    return get_format(spec, hf_tokenizer)


def prepare(cfg: FinetuneConfig) -> Setup:
    """Resolve the model, format and data, and check them all; raise FinetuneError if bad."""
    from transformers import AutoConfig, AutoTokenizer

    if not cfg.resume and ((cfg.out / MANIFEST_FILE).exists() or latest_checkpoint(cfg.out)):
        raise FinetuneError(
            f"{cfg.out} already holds a run: pass --resume to continue it, or choose another --out"
        )
    _check_init_adapter(cfg)
    try:
        model_path = resolve_model(cfg.model)
        hf_tok = AutoTokenizer.from_pretrained(model_path)
        context = AutoConfig.from_pretrained(model_path).max_position_embeddings
        fmt = load_format(cfg.prompt_format, hf_tok)
        mixture = load_mixture(cfg.mixture, cfg.seed, strict=cfg.strict)
    except (OSError, ValueError, MixtureError) as e:
        raise FinetuneError(str(e)) from e
    max_seq_len = cfg.max_seq_len or min(context, 4096)
    if max_seq_len > context:
        raise FinetuneError(f"--max-seq-len {max_seq_len} exceeds the model's context {context}")
    tok = HFTokenizer(hf_tok)
    remapping = mixture.remapping
    if cfg.remap_prob is not None:
        remapping = replace(remapping, prob=cfg.remap_prob)
    if cfg.mix_prob is not None:
        remapping = replace(remapping, mix_prob=cfg.mix_prob)
    try:
        tasks = tokenize_tasks(mixture.tasks, fmt, tok, max_seq_len, remapping)
    except ValueError as e:
        raise FinetuneError(str(e)) from e
    _check_mixing(tasks, remapping)
    evals = eval_sequences(tasks, max_seq_len, cfg.shot_range, cfg.eval_sequences)
    missing = tuple(name for name, _ in mixture.missing)
    pad = pad_token_id(hf_tok)
    return Setup(model_path, fmt, max_seq_len, tasks, evals, pad, remapping, missing)


def pad_token_id(hf_tok) -> int:
    """The id batches are padded with: the tokenizer's pad token, else its end of sequence."""
    pad = hf_tok.pad_token_id if hf_tok.pad_token_id is not None else hf_tok.eos_token_id
    return pad or 0


def _check_mixing(tasks: list[TokenizedTask], remapping: Remapping) -> None:
    """Task-identification sequences need two task families with enough short inputs."""
    if not remapping.mix_prob:
        return
    short = short_inputs(tasks, remapping.mix_max_input)
    families = {family(t.name) for t, s in zip(tasks, short, strict=True) if s}
    if len(families) < 2:
        raise FinetuneError(
            f"mix_prob {remapping.mix_prob} needs tasks of at least 2 families with "
            f">= {MIN_INPUTS} inputs of <= {remapping.mix_max_input} tokens; this mixture has "
            f"{len(families)}: lower mix_prob to 0 or raise mix_max_input"
        )


def _check_init_adapter(cfg: FinetuneConfig) -> None:
    """An --init-adapter must be a LoRA adapter of the rank and scale this run trains."""
    if cfg.init_adapter is None:
        return
    try:
        saved = json.loads((cfg.init_adapter / CONFIG_FILE).read_text())
    except (OSError, ValueError) as e:
        raise FinetuneError(f"--init-adapter {cfg.init_adapter}: no adapter there ({e})") from e
    want = {"r": cfg.lora_r, "lora_alpha": cfg.lora_alpha}
    if got := {k: saved.get(k) for k in want if saved.get(k) != want[k]}:
        raise FinetuneError(
            f"--init-adapter {cfg.init_adapter} has {got}; this run trains {want}: pass the "
            "adapter's --lora-r and --lora-alpha"
        )
