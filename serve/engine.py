"""The vLLM engine behind the API: served model names, LoRA, and the one place where request
fields become `SamplingParams`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from vllm import SamplingParams
from vllm.inputs import TokensPrompt
from vllm.lora.request import LoRARequest
from vllm.outputs import RequestOutput
from vllm.sampling_params import RequestOutputKind

from manyicl.prompting import HFTokenizer, PromptFormat
from manyicl.serve.errors import bad_request, not_found
from manyicl.serve.protocol import CompletionRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """A name clients can put in `model`, and the adapter it runs with (None: the base)."""

    name: str
    lora: LoRARequest | None
    root: str  # the base model path


class ManyICLEngine:
    """An `AsyncLLM` with the tokenizer, prompt format and served names that go with it."""

    def __init__(
        self,
        llm,
        tok: HFTokenizer,
        fmt: PromptFormat,
        models: list[ServedModel],
        max_model_len: int,
    ):
        self.llm, self.tok, self.fmt = llm, tok, fmt
        self.models = {m.name: m for m in models}
        self.default_model = models[0]
        self.max_model_len = max_model_len

    def resolve_model(self, name: str) -> ServedModel:
        if name not in self.models:
            raise not_found(
                f"model {name!r} does not exist; served: {sorted(self.models)}",
                "model",
                "model_not_found",
            )
        return self.models[name]

    def sampling_params(
        self, req: CompletionRequest, prompt_len: int, uses_demos: bool, stream: bool
    ) -> SamplingParams:
        """Request fields -> vLLM sampling parameters (and 400s for what vLLM cannot do)."""
        if req.best_of is not None and req.best_of != req.n:
            raise bad_request("best_of is not supported (the vLLM v1 engine removed it)", "best_of")
        if req.suffix is not None:
            raise bad_request("suffix is not supported", "suffix")
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        if len(stop) > 4:
            raise bad_request("stop takes at most 4 sequences", "stop")
        if uses_demos:  # the answer ends where the format's end-of-answer separator begins
            stop += [s for s in self.fmt.stop if s not in stop]
        max_tokens = req.max_tokens
        if max_tokens is None:
            max_tokens = self.max_model_len - prompt_len
        return SamplingParams(
            n=req.n,
            temperature=req.temperature,
            top_p=req.top_p,
            max_tokens=max_tokens,
            stop=stop or None,
            seed=req.seed,
            presence_penalty=req.presence_penalty,
            frequency_penalty=req.frequency_penalty,
            logit_bias=self._logit_bias(req),
            logprobs=req.logprobs,
            output_kind=RequestOutputKind.DELTA if stream else RequestOutputKind.FINAL_ONLY,
        )

    def _logit_bias(self, req: CompletionRequest) -> dict[int, float] | None:
        if not req.logit_bias:
            return None
        vocab = len(self.tok.hf)
        try:
            bias = {int(k): max(-100.0, min(100.0, v)) for k, v in req.logit_bias.items()}
        except ValueError:
            raise bad_request("logit_bias keys must be token ids", "logit_bias") from None
        if any(not 0 <= k < vocab for k in bias):
            raise bad_request(f"logit_bias token ids must be in [0, {vocab})", "logit_bias")
        return bias

    def generate(
        self, token_ids: list[int], params: SamplingParams, request_id: str, model: ServedModel
    ) -> AsyncIterator[RequestOutput]:
        """Stream engine outputs; closing the iterator aborts the request in the engine."""
        return self.llm.generate(
            TokensPrompt(prompt_token_ids=token_ids), params, request_id, lora_request=model.lora
        )

    async def warm(self, token_ids: list[int], model: ServedModel, request_id: str) -> None:
        """Prefill `token_ids` once so their KV blocks sit in the prefix cache."""
        params = SamplingParams(
            max_tokens=1, temperature=0.0, output_kind=RequestOutputKind.FINAL_ONLY
        )
        async for _ in self.generate(token_ids, params, request_id, model):
            pass

    @property
    def kv_cache_tokens(self) -> int | None:
        """Tokens the engine's KV cache holds, once the engine has sized it."""
        cache = self.llm.vllm_config.cache_config
        return cache.num_gpu_blocks * cache.block_size if cache.num_gpu_blocks else None

    @property
    def dead(self) -> bool:
        """True once the engine has failed; /health then answers 503."""
        return bool(getattr(self.llm, "errored", False))

    def shutdown(self) -> None:
        self.llm.shutdown()
