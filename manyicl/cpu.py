"""The host CPU: its model name and the instruction-set flags that decide fast dtypes.

On x86 CPUs without native bf16 (AVX-512 BF16 or AMX), bf16 matrix products fall back to slow
paths: float32 ran 3-5x faster for vLLM and for training on an AVX2-only AMD EPYC. Every
benchmark names the CPU and these flags next to its numbers.
"""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # native bf16 matrix arithmetic on x86
REPORTED_FLAGS = ("avx2", "avx512f", *BF16_FLAGS)


@cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return {}
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_model() -> str:
    """e.g. 'AMD EPYC 7B13' (falls back to the platform's processor name)."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """Instruction-set flags as /proc/cpuinfo lists them (x86: 'flags', Arm: 'Features')."""
    info = _cpuinfo()
    return frozenset((info.get("flags") or info.get("Features") or "").split())


def has_native_bf16(flags: frozenset[str] | set[str]) -> bool:
    """True when the CPU computes bf16 matrix products natively (x86 AVX-512 BF16 or AMX;
    Arm's 'bf16' feature)."""
    return any(f in flags for f in (*BF16_FLAGS, "bf16"))


def describe() -> str:
    """'AMD EPYC 7B13 (avx2; no avx512f, avx512_bf16, amx_bf16)': the model and the flags that
    matter for speed."""
    flags = cpu_flags()
    have = [f for f in REPORTED_FLAGS if f in flags]
    lack = [f for f in REPORTED_FLAGS if f not in flags]
    parts = ", ".join(have) or "none of " + ", ".join(REPORTED_FLAGS)
    if have and lack:
        parts += "; no " + ", ".join(lack)
    return f"{cpu_model()} ({parts})"


def auto_dtype(on_cpu: bool, flags: frozenset[str] | set[str]) -> tuple[str, str]:
    """(dtype, why) for `--dtype auto`: on a CPU, bfloat16 only where it is native, else
    float32; elsewhere (GPUs) vLLM's own `auto` (the checkpoint's dtype)."""
    if not on_cpu:
        return "auto", "not a CPU: the checkpoint's dtype (vLLM's auto)"
    if has_native_bf16(flags):
        native = [f for f in (*BF16_FLAGS, "bf16") if f in flags]
        return "bfloat16", f"the CPU computes bf16 natively ({', '.join(native)})"
    return "float32", (
        "the CPU has no native bf16 (no avx512_bf16, amx_bf16): bf16 matrix products fall "
        "back to a slow path, float32 is 3-5x faster"
    )


RESERVED_CPUS = "VLLM_CPU_NUM_OF_RESERVED_CPU"


def reserved_cpus(environ: dict[str, str]) -> str | None:
    """The value to give VLLM_CPU_NUM_OF_RESERVED_CPU, or None to leave it. vLLM's CPU worker
    keeps one core for its scheduler process by default; on a 2-core machine that halves the
    compute, while the scheduler and the API process need little. Measured on an AMD EPYC
    (2 cores, AVX2): `manyicl-eval --preset quick` 71 s -> 51 s of scoring, identical scores;
    `manyicl-serve` 2.40 -> 2.82 req/s on warm 2K blocks at c1, 5.65 -> 7.15 at c8, cold 2K
    prefill 12.0 s -> 7.5 s (docs/BENCHMARKS_RESERVED_CPU.md). A value the user set is kept."""
    return None if RESERVED_CPUS in environ else "0"
