"""`manyicl-serve --replicas N`: N servers on this machine behind vLLM's router (vllm-router).

Each replica is an ordinary `manyicl-serve` on a loopback port, with its own engine: on a GPU
machine one GPU each, on a CPU an equal share of the cores. `vllm-router` listens on --host
and --port and routes by `--router-policy`; with `consistent_hash` (the default) every request
carrying the same `X-Session-ID` reaches the same replica, so a demo set's block is prefilled
on one replica and cached there, and the replicas' caches add up. Clients send a set's id (or
`manyicl.prompting.routing_key(demos)` for inline demonstrations) as that header. The replicas
share --demo-set-dir: a set registered through the router, whichever replica stored it, is
served by all of them. Stopping this process (SIGINT, SIGTERM) stops the router, drains the
replicas and waits for them; if it is killed, the children exit by themselves.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

import httpx

from manyicl.lifeline import claim_children
from manyicl.serve.config import ServeConfig

log = logging.getLogger("manyicl.serve.replicas")
OWN_FLAGS = ("--replicas", "--router-policy", "--host", "--port")  # not for the replicas


def free_port() -> int:
    """A port nothing listens on right now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replica_argv(argv: Sequence[str], port: int) -> list[str]:
    """The supervisor's command line for one replica: without the flags that shape the group
    (both `--flag value` and `--flag=value`), on its own loopback port."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in OWN_FLAGS:
            skip = True
        elif not arg.startswith(tuple(f + "=" for f in OWN_FLAGS)):
            out.append(arg)
    return [*out, "--host", "127.0.0.1", "--port", str(port)]


def placement(n: int, on_cpu: bool, cores: Sequence[int]) -> list[dict[str, str]]:
    """Environment of each replica: a GPU each, or an equal share of the cores (vLLM's CPU
    threads bound to them, none held back for its scheduler)."""
    if not on_cpu:
        return [{"CUDA_VISIBLE_DEVICES": str(i)} for i in range(n)]
    if len(cores) < n:
        raise ValueError(f"--replicas {n} needs at least {n} cores; this process has {len(cores)}")
    share = len(cores) // n
    return [
        {
            "VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, cores[i * share : (i + 1) * share])),
            "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
        }
        for i in range(n)
    ]


def router_command(cfg: ServeConfig, urls: Sequence[str]) -> list[str]:
    """vllm-router in front of `urls`: health checked every 2 s, a replica out after one
    failed check (so the ring moves its sets at once), retries on another attempt."""
    return [
        *(sys.executable, "-m", "vllm_router.launch_router"),
        *("--host", cfg.host, "--port", str(cfg.port), "--policy", cfg.router_policy),
        "--worker-urls",
        *urls,
        *("--worker-startup-check-interval", "1", "--health-check-interval-secs", "2"),
        *("--health-failure-threshold", "1", "--health-success-threshold", "1"),
        *("--prometheus-port", str(free_port()), "--log-level", "warning"),
    ]


def _die_with_parent() -> None:
    """In a child before exec: SIGTERM when the supervisor dies (Linux prctl
    PR_SET_PDEATHSIG), so a killed supervisor leaves no router behind."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env={**os.environ, **env}, preexec_fn=_die_with_parent)


def wait_healthy(procs: Sequence[subprocess.Popen], urls: Sequence[str], timeout: float) -> None:
    """Until every url's /health answers 200; RuntimeError if a process exits first."""
    pending, deadline = dict(zip(urls, procs, strict=True)), time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not healthy after {timeout:.0f} s: {', '.join(pending)}")
        for url, proc in list(pending.items()):
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited with {proc.returncode} while starting")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    del pending[url]
            except httpx.HTTPError:
                pass
        time.sleep(1)


def stop_all(router: subprocess.Popen | None, replicas: Sequence[subprocess.Popen], grace: float):
    """The router first (no new requests), then the replicas drain (SIGTERM) and exit."""
    for proc in [router] if router else []:
        proc.terminate()
        _wait(proc, 10)
    for proc in replicas:
        if proc.poll() is None:
            proc.terminate()
    for proc in replicas:
        _wait(proc, grace)


def _wait(proc: subprocess.Popen, timeout: float) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def supervise(router: subprocess.Popen, replicas: Sequence[subprocess.Popen]) -> int:
    """Until the router exits or every replica has; a lost replica is logged (the router's
    health check moves its sets to the others)."""
    lost: set[int] = set()
    while router.poll() is None:
        for i, proc in enumerate(replicas):
            if proc.poll() is not None and i not in lost:
                lost.add(i)
                log.warning("replica %d exited with %s", i, proc.returncode)
        if len(lost) == len(replicas):
            log.error("every replica has exited")
            return 1
        time.sleep(1)
    log.error("the router exited with %s", router.returncode)
    return 1


def run_replicas(cfg: ServeConfig, argv: Sequence[str], on_cpu: bool) -> int:
    """Start the replicas and the router, serve until a signal, stop everything."""
    claim_children()  # each replica's engine processes exit with their replica
    ports = [free_port() for _ in range(cfg.replicas)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    envs = placement(cfg.replicas, on_cpu, sorted(os.sched_getaffinity(0)))
    replicas = [start([sys.executable, "-m", "manyicl.serve.cli", *replica_argv(argv, p)], env)
                for p, env in zip(ports, envs, strict=True)]  # fmt: skip
    for i, (proc, url) in enumerate(zip(replicas, urls, strict=True)):
        log.info("replica %d: pid %d, %s", i, proc.pid, url)
    router = None
    try:
        wait_healthy(replicas, urls, timeout=1800)
        router = start(router_command(cfg, urls), {})
        host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::", "") else cfg.host
        wait_healthy([router], [f"http://{host}:{cfg.port}"], timeout=120)
        log.info("%d replicas behind vllm-router (%s) on %s:%d", len(urls), cfg.router_policy,
                 cfg.host, cfg.port)  # fmt: skip
        return supervise(router, replicas)
    except RuntimeError as e:
        log.error("%s", e)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all(router, replicas, cfg.drain_timeout + 60)
