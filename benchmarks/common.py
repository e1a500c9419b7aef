"""What every benchmark report states next to its numbers: the command, the machine, the date."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path


def machine() -> str:
    """Cores, memory, CPU model and its speed-relevant flags (bf16 decides the fast dtype)."""
    import psutil

    from manyicl.cpu import describe

    mem = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores, {mem:.0f} GiB RAM, {describe()}, {platform.system()}"


def today() -> str:
    return date.today().isoformat()


def command() -> str:
    """This process's command line, quoted so that it can be pasted back into a shell."""
    return "python " + shlex.join(sys.argv)


def kept_section(doc: Path, heading: str) -> list[str]:
    """The hand-written part of an earlier `doc`, from the first line `heading` to its end, kept
    when a benchmark rewrites the doc: the tables are the script's, the reading of them is ours."""
    if not doc.is_file():
        return []
    lines = doc.read_text().rstrip("\n").split("\n")
    return lines[lines.index(heading) :] if heading in lines else []


def run_benchmark(main: Callable[[], None]) -> None:
    """`main()`, ended like the CLIs end: a pinned file that cannot be had (the BIG-bench
    archive), a mixture that does not load or a bad training input stops the benchmark with
    that one reason and status 2, not a traceback hours into nothing."""
    from manyicl.artifacts import ArtifactError
    from manyicl.cliargs import exits_on
    from manyicl.finetune.mixture import MixtureError
    from manyicl.finetune.setup import FinetuneError

    with exits_on(Path(sys.argv[0]).name, ArtifactError, MixtureError, FinetuneError):
        main()
