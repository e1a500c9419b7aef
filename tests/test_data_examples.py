"""scripts/data_examples.py: a task's examples become its markdown section, as rendered."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from manyicl.tasks import Task, TaskExample

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "data_examples.py"
_spec = importlib.util.spec_from_file_location("data_examples", SCRIPT)
data_examples = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(data_examples)

PAIRS = (TaskExample("cat", "cats"), TaskExample("ox", "oxen"), TaskExample("mouse", "mice"))
CHOICE = TaskExample("Is it `red`?", "yes", ("yes", "no"))

CASES = [
    pytest.param(
        Task("words:plural/en", PAIRS),
        False,
        "### `words:plural`\n\n"
        "Task `words:plural/en`: training; metric `exact_match`; 3 examples.\n\n"
        "```text\n"
        "Input: cat\nOutput: cats\n\nInput: ox\nOutput: oxen\n\nInput: mouse\nOutput: mice\n"
        "```\n",
        id="plain",
    ),
    pytest.param(
        Task("evals:colour", (CHOICE,), "Answer yes or no.", "multiple_choice"),
        True,
        "### `evals:colour`\n\n"
        "Task `evals:colour`: held out; metric `multiple_choice`; 1 examples.\n"
        "Choices scored: yes | no\n\n"
        "```text\n"
        "Answer yes or no.\n\nInput: Is it `red`?\nOutput: yes\n"
        "```\n",
        id="instruction-and-choices",
    ),
    pytest.param(
        Task("gym:long/a", (TaskExample("x" * 401, "y"),)),
        False,
        "### `gym:long`\n\n"
        "Task `gym:long/a`: training; metric `exact_match`; 1 examples.\n\n"
        f"```text\nInput: {'x' * 400} …\nOutput: y\n```\n",
        id="truncated",
    ),
    pytest.param(
        Task("gym:ticks", (TaskExample("a ``` b", "c"),)),
        False,
        "### `gym:ticks`\n\n"
        "Task `gym:ticks`: training; metric `exact_match`; 1 examples.\n\n"
        "````text\nInput: a ``` b\nOutput: c\n````\n",
        id="fence-longer-than-backticks",
    ),
]


@pytest.mark.parametrize(("task", "heldout", "expected"), CASES)
def test_section(task: Task, heldout: bool, expected: str) -> None:
    assert data_examples.section(task, list(task.examples), heldout) == expected
