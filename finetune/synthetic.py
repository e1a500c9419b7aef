"""`manyicl-finetune synthetic`: classification tasks whose labels only the demonstrations
reveal, made from the mixture's own training text, added to a mixture as JSONL tasks.

Why: a 135M model cannot learn many BIG-bench tasks in context even with natural labels, so
their remapped sequences teach the label prior, not reading. A synthetic task's label is a
function of its input that the demonstrations show and nothing else does:

- cue: each class owns a few cue words; an input is a snippet of training text with one cue
  word of its class put in at a random place (to answer: which demonstrations share a word);
- source: each class is one training task family; an input is a snippet of that family's
  inputs (to answer: which demonstrations look like the query).

Labels are words of the training label pool, and the tasks are remapped and flipped like any
classification task. Snippets come from the [[task]]s' training examples only: no held-out
text, no eval-pool label.

manyicl-finetune synthetic --out runs/synthetic              # tasks + runs/synthetic/mixture.toml
manyicl-finetune --mixture runs/synthetic/mixture.toml ...  # train on them

The text comes from the training split of `--seed`: train with the same seed, or a held-back
example's input may reach a synthetic training input (the mixture's eval loss, not the
held-out evaluation, would be the worse for it).
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from manyicl.cliargs import arg, run_command
from manyicl.finetune.mixing import family
from manyicl.finetune.mixture import DEFAULT_MIXTURE, Mixture, load_mixture, resolve_mixture
from manyicl.tasks.remap import LabelPools, strip_choices
from manyicl.tasks.task import TaskExample

KINDS = ("cue", "source")
SNIPPET_WORDS = (6, 24)  # words per snippet: about 10-40 tokens, so 2K tokens hold 40-100 shots
CUES_PER_CLASS = 3
CLASSES = (2, 8)


@dataclass(frozen=True)
class SyntheticConfig:
    out: Path = arg("folder for the tasks' JSONL files and mixture.toml (--mixture plus them)")
    mixture: Path = arg(
        "base mixture: copied into mixture.toml (relative file paths made absolute); its "
        "tasks' training inputs give the text",
        default=DEFAULT_MIXTURE,
    )
    tasks: int = arg("synthetic tasks, alternately cue and source tasks", default=32)
    examples: int = arg("examples per task (the mixture holds back eval_examples)", default=400)
    share: float = arg("share of the mixture's total [[task]] weight they get", default=0.25)
    seed: int = arg("seed of the tasks and of the base mixture's train/eval split", default=5)

    def __post_init__(self) -> None:
        if self.tasks < 1:
            raise ValueError("--tasks must be >= 1")
        if self.examples < 2 * CLASSES[1]:
            raise ValueError(f"--examples must be >= {2 * CLASSES[1]}")
        if not 0 < self.share < 1:
            raise ValueError("--share must be in (0, 1)")


def bare(word: str) -> str:
    """A word as cue checks compare it: no punctuation around it, lowercase."""
    return word.strip(string.punctuation).lower()


def snippet(rng: random.Random, text: str) -> list[str]:
    """A window of SNIPPET_WORDS words of `text` (all of it when shorter)."""
    words = text.split()
    n = rng.randint(*SNIPPET_WORDS)
    start = rng.randrange(max(1, len(words) - n + 1))
    return words[start : start + n]


def cue_examples(
    rng: random.Random,
    texts: Sequence[str],
    cues: Sequence[Sequence[str]],
    labels: Sequence[str],
    n: int,
) -> list[TaskExample]:
    """`n` examples: class c's input is a snippet holding one of `cues[c]` at a random place and
    no other cue word; its output is `labels[c]`."""
    every_cue = {w for ws in cues for w in ws}
    out: list[TaskExample] = []
    for _ in range(100 * n):  # a snippet that holds a cue word already is drawn again
        if len(out) == n:
            return out
        words = snippet(rng, rng.choice(texts))
        if every_cue & {bare(w) for w in words}:
            continue
        c = rng.randrange(len(labels))
        words.insert(rng.randint(0, len(words)), rng.choice(cues[c]))
        out.append(TaskExample(" ".join(words), labels[c]))
    if len(out) < n:
        raise ValueError(f"cue words {sorted(every_cue)} are in nearly every text")
    return out


def source_examples(
    rng: random.Random, sources: Sequence[Sequence[str]], labels: Sequence[str], n: int
) -> list[TaskExample]:
    """`n` examples: class c's input is a snippet of one of `sources[c]`, its output
    `labels[c]`."""
    out = []
    for _ in range(n):
        c = rng.randrange(len(labels))
        out.append(TaskExample(" ".join(snippet(rng, rng.choice(sources[c]))), labels[c]))
    return out


def cue_vocabulary(texts: Sequence[str], max_share: float = 0.005) -> list[str]:
    """Candidate cue words, sorted: lowercase alphabetic words of 4-10 letters found in at most
    `max_share` of the texts (at least one), so that a cue word is rarely in a snippet already."""
    counts = Counter(w for t in texts for w in {bare(w) for w in t.split()})
    most = max(1, int(max_share * len(texts)))
    return sorted(
        w
        for w, n in counts.items()
        if n <= most and w.isalpha() and w.islower() and 4 <= len(w) <= 10
    )


def make_task(
    kind: str,
    rng: random.Random,
    by_family: dict[str, list[str]],
    vocab: Sequence[str],
    pool: Sequence[str],
    n: int,
) -> list[TaskExample]:
    """One synthetic task of `kind` with 2..8 classes (source: at most one per family) drawn
    with `rng`."""
    families = sorted(by_family)
    if kind == "source" and len(families) < CLASSES[0]:
        raise ValueError(f"source tasks need {CLASSES[0]} task families, the mixture has 1")
    k = rng.randint(CLASSES[0], min(CLASSES[1], len(families)) if kind == "source" else CLASSES[1])
    labels = rng.sample(pool, k)
    if kind == "source":
        return source_examples(rng, [by_family[f] for f in rng.sample(families, k)], labels, n)
    if len(vocab) < k * CUES_PER_CLASS:
        raise ValueError(
            f"cue tasks need {k * CUES_PER_CLASS} distinct words, the text has {len(vocab)}"
        )
    words = rng.sample(vocab, k * CUES_PER_CLASS)
    cues = [words[i * CUES_PER_CLASS : (i + 1) * CUES_PER_CLASS] for i in range(k)]
    texts = by_family[rng.choice(families)]
    return cue_examples(rng, texts, cues, labels, n)


def task_weight(base_weights: Sequence[float], n_tasks: int, share: float) -> float:
    """Each synthetic task's weight, so that together they hold `share` of the total."""
    return share / (1 - share) * sum(base_weights) / n_tasks


def mixture_text(base: str, names: Sequence[str], weight: float) -> str:
    """The base mixture's text with one JSONL [[task]] per name (file `<name>.jsonl` beside it)."""
    lines = [base.rstrip("\n"), "", f"# {len(names)} synthetic tasks (manyicl-finetune synthetic)"]
    for name in names:
        lines += ["[[task]]", f'name = "{name}"', 'source = "jsonl"', f'path = "{name}.jsonl"']
        lines.append(f"weight = {weight:.6g}")
    return "\n".join(lines) + "\n"


# `path = "..."` at the start of a line: how mixtures name their files (a basic string)
PATH_LINE = re.compile(r'^(\s*path\s*=\s*)"([^"\\]*)"', re.M)


def rebased(text: str, base_dir: Path) -> str:
    """A mixture's text with each relative `path = "..."` made absolute from `base_dir` (its
    folder), so that the copy written to --out finds the same files."""

    def absolute(m: re.Match) -> str:
        path = Path(m.group(2))
        return m.group(0) if path.is_absolute() else m.group(1) + json.dumps(str(base_dir / path))

    return PATH_LINE.sub(absolute, text)


def family_inputs(mixture: Mixture) -> dict[str, list[str]]:
    """The training inputs of each task family (`family/subtask` -> `family`), choices cut off."""
    out: dict[str, list[str]] = {}
    for mt in mixture.tasks:
        out.setdefault(family(mt.task.name), []).extend(strip_choices(e) for e in mt.train)
    return out


def write(cfg: SyntheticConfig) -> list[str]:
    """Make the tasks and write them and mixture.toml to `cfg.out`; the tasks' names."""
    mixture = load_mixture(cfg.mixture, cfg.seed)
    by_family = family_inputs(mixture)
    vocab = cue_vocabulary([t for ts in by_family.values() for t in ts])
    pool = LabelPools.load("train").words
    cfg.out.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(cfg.tasks):
        kind = KINDS[i % len(KINDS)]
        name = f"synthetic-{kind}-{i:03d}"
        rng = random.Random(f"{cfg.seed}:{name}")
        examples = make_task(kind, rng, by_family, vocab, pool, cfg.examples)
        rows = [{"input": e.input, "output": e.output} for e in examples]
        (cfg.out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        names.append(name)
    weight = task_weight([mt.weight for mt in mixture.tasks], cfg.tasks, cfg.share)
    base = resolve_mixture(cfg.mixture).absolute()
    text = mixture_text(rebased(base.read_text(), base.parent), names, weight)
    (cfg.out / "mixture.toml").write_text(text)
    load_mixture(cfg.out / "mixture.toml", cfg.seed)  # loads as training will load it, or says why
    return names


def main(argv: list[str] | None = None) -> None:
    cfg, names = run_command(
        "manyicl-finetune synthetic",
        "Write classification tasks that only the demonstrations can solve (cue words, text "
        "sources) as JSONL, and a mixture adding them to --mixture.",
        SyntheticConfig,
        argv,
        write,
    )
    print(f"{cfg.out}/mixture.toml: {len(names)} synthetic tasks added to {cfg.mixture}")
