"""The package builds quietly, and its wheel carries the shipped adapter and the mixtures."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from manyicl.manifest import DEFAULT_ADAPTER

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_the_shipped_adapter_and_builds_without_warnings(tmp_path):
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "BuildBackendWarning" not in build.stdout + build.stderr
    (wheel,) = tmp_path.glob("manyicl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        f"manyicl/adapters/{DEFAULT_ADAPTER.name}/{p.name}" for p in DEFAULT_ADAPTER.iterdir()
    }
    assert shipped <= names, sorted(shipped - names)
    assert {"manyicl/finetune/default_mixture.toml", "manyicl/tasks/label_pools.toml"} <= names
