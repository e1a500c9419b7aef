"""Tasks as the trainer and the evaluator see them, and the JSONL and `load_from_disk` sources.

A task is a list of input/output examples with an optional instruction; multiple-choice
examples also carry their choices (for rank-classification scoring).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from manyicl.prompting import Example


@dataclass(frozen=True)
class TaskExample:
    """One example of a task; `choices` is set for multiple-choice examples."""

    input: str
    output: str
    choices: tuple[str, ...] | None = None

    def as_demo(self) -> Example:
        return Example(input=self.input, output=self.output)


@dataclass(frozen=True)
class Task:
    """A named list of examples, how to score it, and an optional instruction."""

    name: str
    examples: tuple[TaskExample, ...]
    instruction: str | None = None
    metric: str = "exact_match"  # exact_match | multiple_choice | rouge


def choice_suffix(choices: tuple[str, ...] | list[str]) -> str:
    """How BIG-bench lists a multiple-choice example's choices after its input."""
    return "".join(f"\n  choice: {c}" for c in choices)


def load_jsonl(path: Path, name: str | None = None) -> Task:
    """A JSONL file of {"input", "output"} lines (an optional "instruction" must agree)."""
    examples, instructions = [], set()
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                ex = TaskExample(_text(row, "input"), _text(row, "output"))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: {e}") from None
            examples.append(ex)
            instructions.add(row.get("instruction"))
    if len(instructions) > 1:
        raise ValueError(f"{path}: lines disagree on 'instruction'; use one per file")
    return Task(name or path.stem, tuple(examples), instructions.pop() if instructions else None)


def load_hf_disk(
    path: Path, split: str | None, input_field: str, output_field: str, name: str | None = None
) -> Task:
    """A Hugging Face dataset saved with `save_to_disk`, mapping two columns to input/output."""
    try:
        from datasets import DatasetDict, load_from_disk
    except ImportError:
        raise ValueError(
            "hf_disk sources need the `datasets` package: pip install datasets"
        ) from None
    data = load_from_disk(str(path))
    if isinstance(data, DatasetDict):
        if split not in data:
            raise ValueError(f"{path}: split {split!r} not in {sorted(data)}")
        data = data[split]
    for field in (input_field, output_field):
        if field not in data.column_names:
            raise ValueError(f"{path}: no column {field!r} (columns: {data.column_names})")
    examples = tuple(TaskExample(str(row[input_field]), str(row[output_field])) for row in data)
    return Task(name or path.name, examples)


def _text(row: dict, key: str) -> str:
    value = row[key]
    if not isinstance(value, str):
        raise TypeError(f"{key!r} must be a string, got {type(value).__name__}")
    return value
