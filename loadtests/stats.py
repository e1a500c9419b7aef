"""Summary statistics of a run: pure functions over request results."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from manyicl.loadtests.client import RequestResult


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _dist(values: Sequence[float]) -> dict[str, float | None]:
    return {f"p{q}": percentile(values, q) for q in (50, 90, 99)} | {
        "mean": sum(values) / len(values) if values else None
    }


def summarize(results: Sequence[RequestResult], duration: float) -> dict:
    """Latency distributions, throughput, cache hits and errors of one run."""
    ok = [r for r in results if r.ok and not r.disconnected]
    prompt = sum(r.prompt_tokens for r in ok)
    cached = sum(r.cached_tokens for r in ok)
    errors = Counter((r.error or "").split(":")[0] for r in results if not r.ok)
    return {
        "requests": len(results),
        "ok": len(ok),
        "errors": dict(errors),
        "status_5xx": sum(1 for r in results if r.status >= 500),
        "duration_s": duration,
        "requests_per_s": len(ok) / duration if duration else 0.0,
        "output_tokens_per_s": sum(r.completion_tokens for r in ok) / duration if duration else 0.0,
        "ttft_s": _dist([r.ttft for r in ok if r.ttft is not None]),
        "itl_s": _dist([gap for r in ok for gap in r.itl]),
        "latency_s": _dist([r.latency for r in ok if r.latency is not None]),
        "prompt_tokens": prompt,
        "cached_tokens": cached,
        "cached_ratio": cached / prompt if prompt else 0.0,
    }
