"""The scoring engine: vLLM with prefix caching, as `manyicl-serve` runs it, with the adapter
merged into the weights. Each demo block is prefilled once (`warm`); its queries then reuse the
cached KV and run as one batch. Token ids go in as the server hands them to its engine.

vLLM computes prompt log-probabilities without reading its prefix cache, so nothing here asks
for them: choices are ranked from the log-probabilities of generated tokens (top-k along the
greedy answer) and, where those do not decide, by a one-token greedy pick among the candidate
tokens (`pick`), which the cache serves like any query.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TOP_K = 20  # log-probabilities returned per generated token (vLLM's default cap)


@dataclass(frozen=True)
class EngineConfig:
    """What the scoring engine is built with."""

    max_context: int
    dtype: str = "auto"  # auto: float32 on CPUs without native bf16 (manyicl.cpu.auto_dtype)
    block_size: int | None = None  # KV block size (None: vLLM's default for the platform)
    kv_cache_gib: float = 4.0  # CPU only: the KV cache's size
    enforce_eager: bool = False  # skip torch.compile: starts faster, runs slower


@dataclass(frozen=True)
class Completion:
    token_ids: list[int]
    text: str
    logprobs: list[dict[int, float]]  # per generated token: its top-k log-probabilities


class EvalEngine:
    """Greedy completions and picks over token-id prompts."""

    def __init__(self, llm):
        self.llm = llm

    @classmethod
    def start(cls, model_path: str, adapter: Path | None, cfg: EngineConfig) -> EvalEngine:
        from vllm import LLM
        from vllm.platforms import current_platform

        from manyicl.cpu import RESERVED_CPUS, auto_dtype, cpu_flags, reserved_cpus
        from manyicl.lifeline import claim_children
        from manyicl.merge import merged_checkpoint

        claim_children()  # the engine's processes exit when this one is gone, however it ends
        if current_platform.is_cpu() and (reserved := reserved_cpus(os.environ)):
            os.environ[RESERVED_CPUS] = reserved  # read by the engine processes it spawns

        dtype, why = cfg.dtype, "asked for"
        if dtype == "auto":
            dtype, why = auto_dtype(current_platform.is_cpu(), cpu_flags())
        log.info("dtype %s: %s", dtype, why)
        if adapter is not None:
            merge_dtype = "bfloat16" if dtype in ("auto", "bfloat16") else "float32"
            model_path = str(merged_checkpoint(adapter, model_path, merge_dtype))
        kwargs = {"kv_cache_memory_bytes": int(cfg.kv_cache_gib * 2**30)}
        if not current_platform.is_cpu():
            kwargs = {"gpu_memory_utilization": 0.85}
        if cfg.block_size:
            kwargs["block_size"] = cfg.block_size
        llm = LLM(
            model=model_path,
            dtype=dtype,
            max_model_len=cfg.max_context,
            enable_prefix_caching=True,
            enforce_eager=cfg.enforce_eager,
            max_logprobs=TOP_K,
            seed=0,
            **kwargs,
        )
        return cls(llm)

    def close(self) -> None:
        """Stop the engine's processes now (not at interpreter exit, when vLLM's own hooks log
        into closed streams)."""
        self.llm.llm_engine.engine_core.shutdown()

    def _run(self, prompts: Sequence[Sequence[int]], params) -> list:
        from vllm.inputs import TokensPrompt

        inputs = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        return self.llm.generate(inputs, params, use_tqdm=False)

    def warm(self, blocks: Sequence[Sequence[int]]) -> None:
        """Prefill each block once, so that its queries find it in the prefix cache."""
        from vllm import SamplingParams

        blocks = [b for b in blocks if b]
        if blocks:
            self._run(blocks, SamplingParams(max_tokens=1, temperature=0.0))

    def complete(
        self, prompts: Sequence[Sequence[int]], max_tokens: int, stop: Sequence[str], top_k: int
    ) -> list[Completion]:
        """Greedy completions, stopping at `stop`; `top_k` log-probabilities per token (0: none)."""
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=max_tokens,
            temperature=0.0,
            stop=list(stop) or None,
            logprobs=top_k or None,
        )
        results = []
        for out in self._run(prompts, params):
            o = out.outputs[0]
            lps = [{t: lp.logprob for t, lp in d.items()} for d in (o.logprobs or [])]
            results.append(Completion(list(o.token_ids), o.text, lps))
        return results

    def pick(self, prompts: Sequence[Sequence[int]], allowed: Sequence[Sequence[int]]) -> list[int]:
        """For each prompt, the next token the model ranks first among its `allowed` tokens."""
        from vllm import SamplingParams

        params = [
            SamplingParams(max_tokens=1, temperature=0.0, allowed_token_ids=list(tokens))
            for tokens in allowed
        ]
        return [out.outputs[0].token_ids[0] for out in self._run(prompts, params)]
