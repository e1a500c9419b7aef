"""OpenAI Evals' basic (exact, includes and fuzzy match) datasets, read out of the `evals` wheel.

The wheel is never installed (it pulls a large dependency tree); its data files are JSONL rows
of {"input": [chat messages], "ideal": answer or [answers]}. Each row becomes a bare example:
the item alone (the messages after the last demonstration turn, less the instruction that the
rows repeat) -> the first ideal answer, less a lead-in ("The correct option is: ") or brackets
that every answer carries (`evals_text`). Which files are "basic" evals is read from the eval
specs (`evals/registry/evals/*.yaml`); model-graded and agentic evals are left out, and so are
the folders whose data is licensed for non-commercial use only.

Task names are data folder paths under `evals/registry/data/`, plus the file stem where a
folder holds several usable files: "pig_latin", "word_association/related_words_3". The
family is the first path component.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import io
import itertools
import json
import os
import random
import re
import statistics
import zipfile
from collections import Counter
from pathlib import Path

import yaml

from manyicl.artifacts import Distribution, cache_root
from manyicl.tasks.evals_text import shared_sentences, strip_affixes, strip_lead, unwrap
from manyicl.tasks.generated import split_params
from manyicl.tasks.task import Task, TaskExample
from manyicl.tasks.wheels import members, open_wheel, read_text

DIST = Distribution(
    "evals", "3.0.1.post1", "0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78"
)
DATA = "evals/registry/data/"
SPECS = "evals/registry/evals/"
# Eval classes that compare the answer with `ideal` as a string (no model grader, no agent).
BASIC = {"Match", "Includes", "FuzzyMatch", "MatchWithSolvers"}
# Folders left out for their terms: data under a non-commercial licence (the wheel's LICENSE.md,
# and upstream terms), or text whose copyright lies with a third party.
NONCOMMERCIAL = {
    "steganography": "PiC/phrase_similarity and vicgalle/alpaca-gpt4 are CC BY-NC 4.0",
    "theory_of_mind": "ToMi is CC BY-NC 4.0",
    "logiqa-logical-reasoning-plus": "ReClor is non-commercial; LogiQA 2.0 is CC BY-NC-SA 4.0",
    "guess_the_singer": "snippets of song lyrics, copyright of their authors",
}
MAX_EXAMPLES = 2000
SCAN_ROWS = 5000  # rows read per file to decide whether it is usable (two files hold 200k+)
MIN_EXAMPLES = 100
MAX_INPUT_CHARS = 2000  # longer items are dropped: a sequence should hold many demonstrations
MAX_OUTPUT_WORDS, MAX_OUTPUT_CHARS = 16, 100
MEDIAN_INPUT_CHARS, MEDIAN_OUTPUT_WORDS, MEDIAN_OUTPUT_CHARS = 600, 5, 40
MAX_MAJORITY = 0.9  # a task answered (say) "Y" nine times in ten teaches nothing
MAX_INSTRUCTION = 200
_ANSWER = re.compile(r"^answer\s*:\s*", re.IGNORECASE)  # "ANSWER: 5" (to find in a reasoning)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C one is 10x faster


def list_tasks(cache: Path | None = None) -> list[str]:
    """Every usable task name (the first call in a process reads the wheel, ~10 s)."""
    return sorted(_catalog(_root(cache)))


def load_task(name: str, cache: Path | None = None) -> Task:
    """One task: its examples (at most MAX_EXAMPLES, a seeded sample) and an instruction where
    every row shares a short one."""
    base, _ = split_params(name, {})
    catalog = _catalog(_root(cache))
    if base not in catalog:
        near = difflib.get_close_matches(base, catalog, n=5) or sorted(catalog)[:5]
        raise FileNotFoundError(f"no evals task {base!r}; e.g. {', '.join(near)}")
    with open_wheel(DIST, cache) as wheel:
        rows = read_rows(wheel, catalog[base])
    examples, instruction = bare_examples(rows)
    if len(examples) > MAX_EXAMPLES:
        keep = random.Random(f"evals:{base}").sample(range(len(examples)), MAX_EXAMPLES)
        examples = [examples[i] for i in sorted(keep)]
    return Task(f"evals:{name}", tuple(examples), instruction)


def _root(cache: Path | None) -> Path:
    return (cache or cache_root()).resolve()


@functools.cache
def _catalog(root: Path) -> dict[str, str]:
    """Task name -> wheel member, for the basic-eval files that make usable tasks."""
    usable, seen = [], set()
    with open_wheel(DIST, root) as wheel:
        for member in basic_files(wheel):
            examples, _ = bare_examples(read_rows(wheel, member, SCAN_ROWS))
            # Some folders hold one dataset under several prompts that bare items make equal.
            digest = hashlib.sha256(json.dumps([(e.input, e.output) for e in examples]).encode())
            if usable_task(examples) and digest.hexdigest() not in seen:
                seen.add(digest.hexdigest())
                usable.append(member)
    return task_names(usable)


def basic_files(wheel: zipfile.ZipFile) -> list[str]:
    """Members under DATA that some basic eval spec reads, outside non-commercial folders."""
    present = set(members(wheel, DATA, ".jsonl"))
    files = set()
    for spec in members(wheel, SPECS, ".yaml"):
        for entry in (yaml.load(read_text(wheel, spec), _YAML_LOADER) or {}).values():
            if isinstance(entry, dict) and str(entry.get("class", "")).split(":")[-1] in BASIC:
                files |= {DATA + path for path in _jsonl_args(entry.get("args") or {})}
    return sorted(m for m in files & present if m[len(DATA) :].split("/")[0] not in NONCOMMERCIAL)


def _jsonl_args(args: dict) -> list[str]:
    values = itertools.chain.from_iterable(v if isinstance(v, list) else [v] for v in args.values())
    return [v for v in values if isinstance(v, str) and v.endswith(".jsonl")]


def task_names(files: list[str]) -> dict[str, str]:
    """Name each file by its folder, adding the file stem where the folder has several."""
    folders = [os.path.dirname(f[len(DATA) :]) for f in files]
    names = {}
    for folder, member in zip(folders, files, strict=True):
        stem = Path(member).stem
        names[f"{folder}/{stem}" if folders.count(folder) > 1 or not folder else folder] = member
    return names


def read_rows(wheel: zipfile.ZipFile, member: str, limit: int | None = None) -> list[dict]:
    """The JSON objects of a JSONL member, streamed (at most `limit`); bad lines are skipped."""
    rows = []
    with wheel.open(member) as raw:
        for line in io.TextIOWrapper(raw, encoding="utf-8"):
            if limit is not None and len(rows) >= limit:
                break
            try:
                row = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def usable_task(examples: list[TaskExample]) -> bool:
    """Enough examples, short answers, items that leave room for many demonstrations, and at
    least two distinct answers (several lexicon files answer "Y" to every row)."""
    if len(examples) < MIN_EXAMPLES or len({ex.output for ex in examples}) < 2:
        return False
    outputs = [ex.output for ex in examples]
    copies = sum(ex.output == ex.input for ex in examples)  # "translate" a text into itself
    majority = Counter(o.casefold() for o in outputs).most_common(1)[0][1]
    return (
        copies * 2 < len(examples)
        and majority <= MAX_MAJORITY * len(examples)
        and statistics.median(len(ex.input) for ex in examples) <= MEDIAN_INPUT_CHARS
        and statistics.median(len(o.split()) for o in outputs) <= MEDIAN_OUTPUT_WORDS
        and statistics.median(len(o) for o in outputs) <= MEDIAN_OUTPUT_CHARS
    )


def bare_examples(rows: list[dict]) -> tuple[list[TaskExample], str | None]:
    """Rows -> bare examples (deduplicated, long ones dropped) and the shared instruction."""
    parsed = [p for p in map(split_row, rows) if p is not None]
    systems, shared = shared_sentences([system for system, _, _ in parsed])
    items = [_join(s, parts) for s, (_, parts, _) in zip(systems, parsed, strict=True)]
    items, prefix = strip_affixes(items)
    examples, seen = [], set()
    answers = unwrap(strip_lead([ideal for _, _, ideal in parsed]))
    for item, ideal in zip(items, answers, strict=True):
        ex = TaskExample(item, ideal)
        if item and len(item) <= MAX_INPUT_CHARS and _short(ideal) and ex not in seen:
            seen.add(ex)
            examples.append(ex)
    return examples, _instruction(shared) or _instruction(prefix)


def split_row(row: dict) -> tuple[str, list[str], str] | None:
    """(leading system message or "", the item's messages, answer), or None for a row that is not
    a chat input with a text answer. The item is what follows the last demonstration answer;
    without demonstrations it is every message after the leading system one."""
    messages, ideal = row.get("input"), _ideal(row.get("ideal"))
    if not isinstance(messages, list) or not messages or ideal is None:
        return None
    if not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages):
        return None
    system = ""
    if messages[0].get("role") == "system" and messages[0].get("name") is None:
        system, messages = messages[0]["content"].strip(), messages[1:]
    answers = [i for i, m in enumerate(messages) if _is_answer(m)]
    tail = messages[answers[-1] + 1 :] if answers else messages
    parts = [m["content"].replace("\ufeff", "").strip() for m in tail]  # a stray BOM
    return system.replace("\ufeff", ""), [part for part in parts if part], ideal


def _is_answer(message: dict) -> bool:
    """An assistant turn, or a few-shot answer written as a named system message."""
    return message.get("role") == "assistant" or message.get("name") == "example_assistant"


def _ideal(value: object) -> str | None:
    """The first acceptable answer, less an "ANSWER:" marker meant for a reasoning model."""
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or isinstance(value, (dict, bool)):
        return None
    return _ANSWER.sub("", str(value).strip()).strip() or None


def _join(system: str, parts: list[str]) -> str:
    """A row's item: its own system message (when rows differ there), then its messages."""
    return "\n".join(([system] if system else []) + parts).strip()


def _short(answer: str) -> bool:
    return len(answer) <= MAX_OUTPUT_CHARS and len(answer.split()) <= MAX_OUTPUT_WORDS


def _instruction(text: str | None) -> str | None:
    """A shared text's first line as the task's instruction, where that line is short."""
    first = (text or "").strip().split("\n")[0].strip()
    return first if first and len(first) <= MAX_INSTRUCTION else None
