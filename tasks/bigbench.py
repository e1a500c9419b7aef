"""BIG-bench JSON tasks, read out of the `bigbench==1.0.0` source archive on PyPI.

The archive (358 MB) is downloaded once; its task.json files are unpacked into the cache on
first use. The package itself is never installed (it pulls TensorFlow). Task names are the
paths under `bigbench/benchmark_tasks/`: "anachronisms", "arithmetic/1_digit_addition".
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from pathlib import Path

from tqdm import tqdm

from manyicl.artifacts import Distribution, cache_root, download
from manyicl.tasks.task import Task, TaskExample, choice_suffix

BIGBENCH = Distribution(
    "bigbench",
    "1.0.0",
    "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
    sdist=True,
)
_PREFIX = "bigbench-1.0.0/bigbench/benchmark_tasks/"


def tasks_dir(cache: Path | None = None) -> Path:
    """Folder of unpacked task.json files, unpacking the archive the first time."""
    root = cache or cache_root()
    target = root / "bigbench-1.0.0" / "tasks"
    if target.is_dir():
        return target
    archive = download(BIGBENCH, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-") as tmp:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tqdm(tar, desc="unpacking BIG-bench tasks", unit=" files", leave=False):
                name = member.name
                if member.isfile() and name.startswith(_PREFIX) and name.endswith("/task.json"):
                    dest = Path(tmp) / name[len(_PREFIX) :]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(tar.extractfile(member).read())
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():
                raise
        Path(tmp).mkdir(exist_ok=True)  # TemporaryDirectory cleans up the now-empty name
    return target


def list_tasks(cache: Path | None = None) -> list[str]:
    """Every task name with examples in the archive (subtasks included)."""
    root = tasks_dir(cache)
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("task.json"))


def load_task(name: str, cache: Path | None = None) -> Task:
    """One BIG-bench task; multiple-choice examples become input -> the best-scored choice."""
    path = tasks_dir(cache) / name / "task.json"
    if not path.is_file():
        raise FileNotFoundError(f"no BIG-bench task {name!r} (see `list_tasks()` for names)")
    data = json.loads(path.read_text())
    if "examples" not in data:
        raise ValueError(f"BIG-bench task {name!r} is programmatic or has only subtasks")
    generative = data.get("preferred_score", "") != "multiple_choice_grade"
    append = data.get("append_choices_to_input")
    append = True if append is None else append  # BIG-bench's default
    examples = [_example(ex, generative, append) for ex in data["examples"]]
    examples = [ex for ex in examples if ex is not None]
    multiple_choice = not generative and any(ex.choices for ex in examples)
    return Task(
        name=f"bigbench:{name}",
        examples=tuple(examples),
        instruction=data.get("task_prefix", "").strip() or None,
        metric="multiple_choice" if multiple_choice else _generative_metric(data),
    )


def _example(raw: dict, generative: bool, append_choices: bool) -> TaskExample | None:
    """input -> target for generative tasks, input (+ listed choices) -> best choice otherwise."""
    text = str(raw.get("input", "")).strip()
    scores = raw.get("target_scores") or {}
    choices = tuple(str(c).strip() for c in scores) or None
    target = raw.get("target")
    if isinstance(target, list):
        target = target[0] if target else None
    if scores and not (generative and target is not None):
        if append_choices:
            text += choice_suffix(choices)
        return TaskExample(text, str(max(scores, key=lambda c: scores[c])).strip(), choices)
    if target is None or not str(target).strip():
        return None
    return TaskExample(text, str(target).strip(), choices)


def _generative_metric(data: dict) -> str:
    metrics = data.get("metrics", [])
    if "rouge" in metrics and data.get("preferred_score", "") != "exact_str_match":
        return "rouge"
    return "exact_match"
