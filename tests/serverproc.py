"""The test server: a real `manyicl-serve` process with an API key."""

from __future__ import annotations

from pathlib import Path

from manyicl.loadtests.servers import ServerProcess, manyicl_command

API_KEY = "test-key"


def manyicl_server(args: list[str], log: Path) -> ServerProcess:
    env = {"MANYICL_API_KEY": API_KEY}
    return ServerProcess(lambda port: manyicl_command(port, args), log, env)
