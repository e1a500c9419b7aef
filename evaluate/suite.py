"""The evaluation suite: held-out tasks, each split once into evaluation examples (stratified by
label for classification) and a demonstration pool, and label-remapped copies of the
classification tasks, which only a model that reads its demonstrations can solve.

    suite = build_suite(load_tasks("heldout"), eval_examples=100, remap=(Kind.FLIPPED, Kind.WORDS))
    pool, evals, choices = suite[0].at_seed(seed)   # a remapped task remaps per seed

Metrics: a task whose examples have a fixed label set or listed choices is scored by `choice`
(the choice the model ranks first, see `scoring.pick_choice`); other tasks by exact match or
ROUGE-L, as BIG-bench prefers for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from manyicl.tasks.remap import Kind, LabelPools, label_set, remap_example, seeded_mapping
from manyicl.tasks.split import stratified_split
from manyicl.tasks.task import Task, TaskExample

MAX_LABELS = 20  # as the default mixture's classification rule


@dataclass(frozen=True)
class EvalTask:
    """One evaluated task: its split, metric, and (for a remapped copy) how it is remapped."""

    name: str  # "bigbench:navigate", or "bigbench:navigate~flipped" for a remapped copy
    base: str  # the natural task's name
    metric: str  # choice | exact_match | rouge
    instruction: str | None
    pool: tuple[TaskExample, ...]  # demonstrations come only from here
    evals: tuple[TaskExample, ...]
    labels: tuple[str, ...] = ()  # the natural label set of a classification task
    remap: Kind | None = None

    def at_seed(self, seed: int) -> tuple[list[TaskExample], list[TaskExample]]:
        """(pool, evals) as seed `seed` sees them: a remapped task under that seed's mapping;
        every example then carries its choices (the label set) for choice scoring."""
        if self.remap is None:
            choices = self.labels or None
            fix = (lambda ex: ex) if choices is None else (lambda ex: _with_choices(ex, choices))
            return [fix(e) for e in self.pool], [fix(e) for e in self.evals]
        pools = LabelPools.load("eval")
        mapped = seeded_mapping(self.base, self.labels, self.remap, seed, pools)
        return (
            [remap_example(e, self.labels, mapped) for e in self.pool],
            [remap_example(e, self.labels, mapped) for e in self.evals],
        )

    @property
    def instruction_at(self) -> str | None:
        """A remapped task has no instruction: it names the natural labels."""
        return None if self.remap else self.instruction


def _with_choices(ex: TaskExample, labels: tuple[str, ...]) -> TaskExample:
    return ex if ex.choices else TaskExample(ex.input, ex.output, labels)


def eval_task(task: Task, eval_examples: int) -> EvalTask:
    """A natural task split once: at most half its examples are evaluated."""
    labels = label_set([e.output for e in task.examples], MAX_LABELS)
    n = min(eval_examples, len(task.examples) // 2)
    pool, evals = stratified_split(task.examples, n, labels, f"eval:{task.name}")
    has_choices = bool(labels) or any(e.choices for e in task.examples)
    metric = "choice" if has_choices else ("rouge" if task.metric == "rouge" else "exact_match")
    return EvalTask(
        task.name, task.name, metric, task.instruction, tuple(pool), tuple(evals), labels
    )


def build_suite(
    tasks: Sequence[Task], eval_examples: int, remap: Sequence[Kind] = ()
) -> list[EvalTask]:
    """Every task, then a remapped copy of each classification task for each kind in `remap`
    (same split: the remapped copy evaluates the same examples)."""
    natural = [eval_task(t, eval_examples) for t in tasks]
    copies = [
        EvalTask(**{**t.__dict__, "name": f"{t.name}~{kind}", "metric": "choice", "remap": kind})
        for t in natural
        if t.labels
        for kind in remap
    ]
    return natural + copies
