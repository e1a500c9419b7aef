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
from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

from manyicl.prompting import BlockPadding, HFTokenizer, PromptFormat
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
        padding: BlockPadding | None = None,
    ):
        self.llm, self.tok, self.fmt = llm, tok, fmt
        self.padding = padding  # demo-block filler for this engine's KV block size
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
        """Request fields -> vLLM sampling parameters; a 400 naming the field for anything this
        server cannot honour."""
        for field, refused, why in _refusals(req, uses_demos):
            if refused:
                raise bad_request(f"{field} is not supported here: {why}", field)
        stop = self._stops(req, uses_demos)
        max_tokens = self.max_model_len - prompt_len if req.max_tokens is None else req.max_tokens
        echo_only = req.echo and max_tokens == 0  # the prompt's log-probabilities, nothing new
        return SamplingParams(
            n=req.n,
            temperature=req.temperature,
            top_p=req.top_p,
            top_k=req.top_k or 0,
            min_p=req.min_p or 0.0,
            max_tokens=1 if echo_only else max_tokens,
            min_tokens=req.min_tokens,
            stop=stop or None,
            stop_token_ids=self._token_ids(req.stop_token_ids, "stop_token_ids"),
            include_stop_str_in_output=req.include_stop_str_in_output,
            ignore_eos=req.ignore_eos,
            seed=req.seed,
            presence_penalty=req.presence_penalty,
            frequency_penalty=req.frequency_penalty,
            repetition_penalty=req.repetition_penalty or 1.0,
            logit_bias=self._logit_bias(req),
            allowed_token_ids=self._token_ids(req.allowed_token_ids, "allowed_token_ids"),
            bad_words=req.bad_words or None,
            logprobs=None if req.logprob_token_ids else req.logprobs,
            logprob_token_ids=self._token_ids(req.logprob_token_ids, "logprob_token_ids"),
            prompt_logprobs=prompt_logprobs(req),
            skip_special_tokens=req.skip_special_tokens,
            spaces_between_special_tokens=req.spaces_between_special_tokens,
            structured_outputs=structured_outputs(req),
            extra_args=req.vllm_xargs,
            output_kind=RequestOutputKind.DELTA if stream else RequestOutputKind.FINAL_ONLY,
        )

    def _stops(self, req: CompletionRequest, uses_demos: bool) -> list[str]:
        """The request's stop strings (at most 4, as OpenAI's API), plus, for a many-shot
        prompt, the format's end-of-answer separators: the answer ends where they begin."""
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        if len(stop) > 4:
            raise bad_request("stop takes at most 4 sequences", "stop")
        if uses_demos:
            stop += [s for s in self.fmt.stop if s not in stop]
        return stop

    def check(self, params: SamplingParams) -> None:
        """vLLM's own checks of the parameters against the model (logprob limits, token ids,
        structured-output grammars), before any work: its client errors become 400s."""
        from vllm.exceptions import VLLMClientError

        cfg = self.llm.vllm_config
        try:
            params.verify(
                self.llm.model_config, None, cfg.structured_outputs_config, self.llm.tokenizer
            )
        except (VLLMClientError, ValueError) as e:
            raise bad_request(str(e), getattr(e, "parameter", None)) from None

    def _token_ids(self, ids: list[int] | None, field: str) -> list[int] | None:
        vocab = len(self.tok.hf)
        if ids and any(not 0 <= t < vocab for t in ids):
            raise bad_request(f"{field}: token ids must be in [0, {vocab})", field)
        return ids or None

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
        self,
        token_ids: list[int],
        params: SamplingParams,
        request_id: str,
        model: ServedModel,
        cache_salt: str | None = None,
    ) -> AsyncIterator[RequestOutput]:
        """Stream engine outputs; closing the iterator aborts the request in the engine. A
        `cache_salt` keeps the request's KV blocks apart from everyone else's."""
        prompt = TokensPrompt(prompt_token_ids=token_ids)
        if cache_salt is not None:
            prompt["cache_salt"] = cache_salt
        return self.llm.generate(prompt, params, request_id, lora_request=model.lora)

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


def _refusals(req: CompletionRequest, uses_demos: bool) -> list[tuple[str, bool, str]]:
    """(field, set in a way this server cannot honour, why)."""
    return [
        (
            "best_of",
            req.best_of is not None and req.best_of != req.n,
            "vLLM's v1 engine removed it",
        ),
        ("suffix", req.suffix is not None, "insertion after the completion is not implemented"),
        ("use_beam_search", req.use_beam_search, "beam search is not implemented; use n"),
        ("length_penalty", req.length_penalty != 1.0, "it applies to beam search only"),
        ("priority", req.priority != 0, "the engine schedules first come, first served"),
        ("watermarking", bool(req.watermarking), "no watermarking is configured"),
        ("kv_transfer_params", req.kv_transfer_params is not None, "no KV transfer is set up"),
        (
            "truncate_prompt_tokens",
            uses_demos and req.truncate_prompt_tokens is not None,
            "with demonstrations the shots are fitted to the context; use max_shots",
        ),
        (
            "logprob_token_ids",
            bool(req.logprob_token_ids) and req.logprobs is None,
            "it needs logprobs to be set",
        ),
        (
            "logprob_token_ids",
            bool(req.logprob_token_ids) and req.echo and req.max_tokens == 0,
            "echo with max_tokens 0 generates no token to score",
        ),
    ]


def prompt_logprobs(req: CompletionRequest) -> int | None:
    """Prompt log-probabilities: asked for directly, or by echo with logprobs (as the legacy
    OpenAI API and vLLM do). vLLM computes them without reading the prefix cache, so a
    many-shot request that asks for them pays for its whole demo block."""
    if req.prompt_logprobs is not None:
        return req.prompt_logprobs
    return req.logprobs if req.echo else None


def structured_outputs(req: CompletionRequest) -> StructuredOutputsParams | None:
    """vLLM's constraint from `structured_outputs` or `response_format` (not both)."""
    so, rf = req.structured_outputs, req.response_format
    if so is not None and rf is not None and rf.type != "text":
        raise bad_request("give structured_outputs or response_format, not both", "response_format")
    if rf is not None and rf.type == "json_object":
        return StructuredOutputsParams(json_object=True)
    if rf is not None and rf.type == "json_schema":
        if rf.json_schema is None:
            raise bad_request("response_format json_schema needs json_schema", "response_format")
        return StructuredOutputsParams(json=rf.json_schema.schema_)
    if so is None:
        return None
    given = {k: v for k, v in so.model_dump(by_alias=True).items() if v is not None}
    if len(given) != 1:
        raise bad_request(
            f"structured_outputs takes exactly one of json, regex, choice, grammar, json_object; "
            f"got {sorted(given)}",
            "structured_outputs",
        )
    return StructuredOutputsParams(**given)
