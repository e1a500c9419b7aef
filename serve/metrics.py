"""Prometheus metrics of this server (its own registry, one per app) next to vLLM's engine
metrics (vLLM registers those in prometheus-client's default registry)."""

from __future__ import annotations

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_metrics(self.registry)
        self._scheduler_metrics(self.registry)
        self._prompt_total = self._cached_total = 0

    def _request_metrics(self, r: CollectorRegistry) -> None:
        """Per-request counts, latencies and token totals."""
        self.requests = Counter(
            "manyicl_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.ttft = Histogram(
            "manyicl_time_to_first_token_seconds",
            "Arrival to first generated token, per prompt",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "manyicl_request_latency_seconds",
            "Arrival to last byte of a completion request",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "manyicl_prompt_tokens", "Prompt tokens sent to the engine", registry=r
        )
        self.cached_tokens = Counter(
            "manyicl_cached_prompt_tokens", "Prompt tokens served from the prefix cache", registry=r
        )
        self.generation_tokens = Counter(
            "manyicl_generation_tokens", "Tokens generated", registry=r
        )
        self.hit_ratio = Gauge(
            "manyicl_prefix_cache_hit_ratio", "Cached / prompt tokens since start", registry=r
        )
        self.running = Gauge(
            "manyicl_requests_running", "Completion requests in flight in this server", registry=r
        )
        self.shots = Histogram(
            "manyicl_shots_used",
            "Demonstrations per many-shot prompt",
            buckets=(0, 1, 4, 16, 64, 256, 1024, 4096),
            registry=r,
        )
        self.demo_sets = Gauge("manyicl_demo_sets", "Registered demo sets", registry=r)

    def _scheduler_metrics(self, r: CollectorRegistry) -> None:
        """The demo-set scheduler's queue, residency and waits."""
        self.queue = Gauge(
            "manyicl_scheduler_requests",
            "Requests in the demo-set scheduler",
            ["state"],
            registry=r,
        )
        self.resident_sets = Gauge(
            "manyicl_scheduler_resident_sets",
            "Demo sets the scheduler believes are in the KV cache",
            registry=r,
        )
        self.queue_wait = Histogram(
            "manyicl_queue_wait_seconds",
            "Wait before the engine got the request, by demo set "
            "(registered id, 'inline', or 'none')",
            ["set"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def record_prompt(self, prompt_tokens: int, cached_tokens: int, shots: int | None) -> None:
        """Count one prompt's tokens (and shots, for many-shot prompts)."""
        self.prompt_tokens.inc(prompt_tokens)
        self.cached_tokens.inc(cached_tokens)
        self._prompt_total += prompt_tokens
        self._cached_total += cached_tokens
        self.hit_ratio.set(self._cached_total / max(self._prompt_total, 1))
        if shots is not None:
            self.shots.observe(shots)

    def render(self) -> bytes:
        """Prometheus text: the engine's metrics, then this server's."""
        return generate_latest(REGISTRY) + generate_latest(self.registry)

    def watch_scheduler(self, queue) -> None:
        """Export a SetAwareQueue's state (read at scrape time)."""
        self.queue.labels("waiting").set_function(lambda: len(queue.waiting))
        self.queue.labels("running").set_function(lambda: queue.inflight)
        self.resident_sets.set_function(lambda: len(queue.resident))
