"""Scoring many queries against one demo block with transformers, its KV computed once.

Rank classification needs the log-likelihood of every choice's tokens. vLLM computes prompt
log-probabilities without its prefix cache (every choice would re-prefill the whole many-shot
prompt), so evaluation runs on transformers and reuses the demo block explicitly: one prefill
per (task, shots, seed), then each query and each choice continue from that cache and are
rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def load_model(model_path: str, adapter: str | None, device: torch.device):
    """The base model, with the adapter applied (and merged) when given; eval mode."""
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=dtype, attn_implementation="sdpa"
    )
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.to(device).eval()


class PrefixScorer:
    """Continuations of one shared prefix. Not thread-safe: one query at a time."""

    def __init__(self, model, device: torch.device):
        self.model, self.device = model, device
        self.cache = None
        self.prefix_len = 0
        self.last_logits: torch.Tensor | None = None  # (V,) after the prefix

    @torch.no_grad()
    def set_prefix(self, ids: Sequence[int]) -> None:
        """Prefill the demo block (may be empty)."""
        from transformers import DynamicCache

        self.cache, self.prefix_len, self.last_logits = DynamicCache(), len(ids), None
        if ids:
            self.last_logits = self._forward(ids, last_only=True)[-1]

    @torch.no_grad()
    def _forward(self, ids: Sequence[int], last_only: bool = False) -> torch.Tensor:
        """Run `ids` after what the cache holds; logits (T, V) in float32, or (1, V) for the
        last position only: a 2K-token prefix over Gemma's 262K vocabulary is 2 GB of logits."""
        start = self.cache.get_seq_length()
        x = torch.tensor([list(ids)], device=self.device)
        pos = torch.arange(start, start + len(ids), device=self.device)[None]
        out = self.model(
            input_ids=x,
            past_key_values=self.cache,
            position_ids=pos,
            use_cache=True,
            logits_to_keep=1 if last_only else 0,
        )
        return out.logits[0].float()

    def _rollback(self, length: int) -> None:
        extra = self.cache.get_seq_length() - length
        if extra > 0:
            self.cache.crop(-extra)

    @torch.no_grad()
    def choice_nlls(
        self, query: Sequence[int], choices: Sequence[Sequence[int]]
    ) -> list[list[float]]:
        """Per-token NLL of each choice's tokens after prefix + query."""
        logits = self._forward(query, last_only=True) if query else self.last_logits[None]
        after_query, base = logits[-1], self.cache.get_seq_length()
        result = []
        for choice in choices:
            rest = self._forward(choice[:-1]) if len(choice) > 1 else logits[:0]
            preds = torch.cat([after_query[None], rest])  # (len(choice), V)
            nll = F.cross_entropy(
                preds, torch.tensor(list(choice), device=self.device), reduction="none"
            )
            result.append(nll.tolist())
            self._rollback(base)
        self._rollback(self.prefix_len)
        return result

    @torch.no_grad()
    def generate(
        self,
        query: Sequence[int],
        max_new_tokens: int,
        stop_ids: set[int],
        decode,
        stops: Sequence[str],
    ) -> list[int]:
        """Greedy tokens after prefix + query, until a stop id, a stop string or the limit."""
        logits = self._forward(query, last_only=True)[-1] if query else self.last_logits
        out: list[int] = []
        for _ in range(max_new_tokens):
            token = int(logits.argmax())
            if token in stop_ids:
                break
            out.append(token)
            if any(s in decode(out) for s in stops):
                break
            logits = self._forward([token])[-1]
        self._rollback(self.prefix_len)
        return out
