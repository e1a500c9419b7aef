"""The test server: a real `manyicl-serve` process with an API key."""

from __future__ import annotations

from pathlib import Path

from manyicl.loadtests.servers import ServerProcess, manyicl_command

API_KEY = "test-key"


def manyicl_server(args: list[str], log: Path) -> ServerProcess:
    env = {"MANYICL_API_KEY": API_KEY}
    return ServerProcess(lambda port: manyicl_command(port, args), log, env)


def small_server(folder: Path, model: str, *extra: str, name: str = "server") -> ServerProcess:
    """A started manyicl-serve of the base model alone (eager, 256 MiB of KV cache, its own
    demo-set folder): for tests that stop, kill or fault their server."""
    args = [
        "--model",
        model,
        "--max-model-len",
        "1024",
        "--enforce-eager",
        "--kv-cache-memory-bytes",
        str(256 << 20),
        "--demo-set-dir",
        str(folder / "sets"),
    ]
    proc = manyicl_server([*args, *extra], folder / f"{name}.log")
    proc.start()
    return proc
