"""Server processes for load tests and benchmarks: this server, or vLLM's own OpenAI server,
on a free loopback port, started and stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from manyicl.serve.replicas import free_port, wait_healthy


def manyicl_command(port: int, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "manyicl.serve.cli", "--port", str(port), *args]


def vllm_command(port: int, args: list[str]) -> list[str]:
    """vLLM's own OpenAI server (its `vllm` console script fails in the CPU wheel)."""
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]


class ServerProcess:
    """`command(port)` run in the background until `/health` answers 200."""

    def __init__(self, command, log: Path, env: dict[str, str] | None = None):
        self.port = free_port()
        self.cmd = command(self.port)
        self.log, self.env = log, env
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 600) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(self.env or {})},
            )
        try:
            wait_healthy([self.proc], [self.url], timeout)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{e}: {self.log.read_text()[-3000:]}") from None

    def stop(self) -> None:
        """SIGINT, then SIGKILL after a minute."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
