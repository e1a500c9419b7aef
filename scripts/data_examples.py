"""Write docs/DATA_EXAMPLES.md: one example of every task family, as the model sees it.

    .venv/bin/python scripts/data_examples.py

Families: those of the default mixture's `[[task]]` list and `[heldout]` lists, each shown by
its first task (by name): one demonstration and a query with its answer, filled into the plain
prompt format's templates. Examples are drawn with a seed per task, short ones first.
"""

from __future__ import annotations

import datetime
import random
import re
import tomllib
from collections import defaultdict
from pathlib import Path

from manyicl.finetune.mixing import family
from manyicl.finetune.mixture import DEFAULT_MIXTURE, HELDOUT_LISTS
from manyicl.prompting import PLAIN, PromptFormat
from manyicl.tasks import SourceUnavailable, Task, TaskExample, load_task

COMMAND = ".venv/bin/python scripts/data_examples.py"
OUT = Path(__file__).resolve().parents[1] / "docs" / "DATA_EXAMPLES.md"
SHORT = 300  # preferred length of an example (input plus output), in characters
MAX_TEXT = 400  # longer inputs, outputs and instructions are cut to this, ending " …"


def truncate(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def pick(task: Task, shots: int = 1) -> list[TaskExample]:
    """`shots` demonstrations, then the query: the task's chosen example, the first of a draw
    seeded by its name, short ones (under SHORT characters) first."""
    drawn = random.Random(f"examples:{task.name}").sample(task.examples, len(task.examples))
    query, *demos = sorted(drawn, key=lambda e: len(e.input) + len(e.output) >= SHORT)[: shots + 1]
    return [*demos, query]


def render_text(fmt: PromptFormat, task: Task, examples: list[TaskExample]) -> str:
    """Header or instruction, then each example (the query last, with its answer): the format's
    templates filled, as text."""
    head = fmt.header if task.instruction is None else fmt.instruction
    text = head.format(instruction=truncate(task.instruction or ""))
    for ex in examples:
        text += fmt.input.format(input=truncate(ex.input))
        text += fmt.output.format(output=truncate(ex.output))
    return text.rstrip("\n")


def fence(text: str) -> str:
    """`text` in a fenced code block whose fence no backtick run inside it can close."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def section(
    task: Task, examples: list[TaskExample], heldout: bool, fmt: PromptFormat = PLAIN
) -> str:
    """A family's markdown: its name, its task's split, metric and size, and the rendered text."""
    split = "held out" if heldout else "training"
    lines = [
        f"### `{family(task.name)}`",
        "",
        f"Task `{task.name}`: {split}; metric `{task.metric}`; {len(task.examples)} examples.",
    ]
    if choices := examples[-1].choices:
        lines.append(truncate("Choices scored: " + " | ".join(choices)))
    return "\n".join([*lines, "", fence(render_text(fmt, task, examples)), ""])


def first_tasks(mixture: dict) -> list[str]:
    """Each family's first task (by name), over the [[task]] list and the [heldout] lists."""
    names = {t["name"] for t in mixture.get("task", [])}
    for key in HELDOUT_LISTS:
        names.update(mixture.get("heldout", {}).get(key, []))
    firsts: dict[str, str] = {}
    for name in sorted(names):
        firsts.setdefault(family(name), name)
    return sorted(firsts.values())


def is_heldout(name: str, heldout: dict) -> bool:
    return name in heldout.get("tasks", []) or name.startswith(tuple(heldout.get("prefixes", [])))


def document(sections: dict[str, list[str]], today: datetime.date) -> str:
    """The whole doc: a header, then the family sections grouped by source."""
    count = sum(len(s) for s in sections.values())
    head = [
        "# Data examples: one per task family, as the model sees it",
        "",
        f"Written by `{COMMAND}` on {today.isoformat()}; {count} families of",
        f"`{DEFAULT_MIXTURE.parent.name}/{DEFAULT_MIXTURE.name}` (`[[task]]`, `[heldout]` lists),",
        "each shown by its first task. Two demonstrations and a query, rendered as text with the",
        "`plain` format's templates; the last `Output:` is the answer the model is to produce.",
        "Not shown: the tokenizer's BOS and the filler text that ends the demo block on a",
        f'multiple of {PLAIN.align} tokens. Texts over {MAX_TEXT} characters are cut (" …").',
        "",
    ]
    body = [f"## {source}\n\n" + "\n".join(parts) for source, parts in sorted(sections.items())]
    return "\n".join(head + body)


def main() -> None:
    mixture = tomllib.loads(DEFAULT_MIXTURE.read_text())
    heldout = mixture.get("heldout", {})
    sections: dict[str, list[str]] = defaultdict(list)
    for name in first_tasks(mixture):
        try:
            task = load_task(name)
        except (SourceUnavailable, FileNotFoundError) as e:  # a source or task that is gone
            sections[name.split(":")[0]].append(f"### `{family(name)}`\n\nNot loaded: {e}\n")
            continue
        sections[name.split(":")[0]].append(section(task, pick(task), is_heldout(name, heldout)))
    OUT.write_text(document(sections, datetime.date.today()))
    print(f"wrote {OUT} ({sum(len(s) for s in sections.values())} families)")


if __name__ == "__main__":
    main()
