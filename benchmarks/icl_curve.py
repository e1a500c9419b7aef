"""Does a model read its demonstrations? Answer accuracy and loss against the number of
demonstrations before the answer, from one forward pass per many-shot sequence.

    .venv/bin/python benchmarks/icl_curve.py \\
        --adapter runs/quality/train/all-targets-ft--manyicl --out docs/ICL_CURVES.md

In a packed sequence the k-th answer sees exactly k-1 demonstrations (causal attention), so one
2K-token sequence measures every shot count up to the ones it holds at once. Groups:

- `train`: classification tasks of the training mixture (a seeded sample), natural labels and
  labels remapped as training draws them (train pools: words, letters, numbers, flipped). Tells
  whether the adapter learned to read remapped demonstrations on the tasks it trained on.
- `heldout`: the mixture's held-out classification tasks, natural labels, flipped labels and
  arbitrary words from the evaluation pool (words no training sequence used). Tells whether
  that skill transfers.

Accuracy is the share of answers whose first token the model ranks first among the first
tokens of the sequence's label set (answers whose labels share a first token are left out);
loss is the mean NLL of the answer's tokens. Under remapped labels the first answer of each label
is unpredictable and left out, as in training. Every model scores the same sequences; each
variant's difference from the base is paired by sequence, with a bootstrap 95 % interval.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections import defaultdict
from pathlib import Path

from common import command, machine, run_benchmark, today

BUCKETS = ((1, 4), (4, 16), (16, 64), (64, 256), (256, 10**9))  # demonstrations before


def bucket(k: int) -> str | None:
    for lo, hi in BUCKETS:
        if lo <= k < hi:
            return f"{lo}-{hi - 1}" if hi < 10**9 else f"{lo}+"
    return None


def build_sequences(args, fmt, tok) -> list[dict]:
    """[{group, kind, task, ids, spans: [(start, end, label first tokens or None, skip)]}]:
    the answer spans of each packed sequence; first tokens are None where labels share one."""
    from manyicl.finetune import mixture as mx
    from manyicl.finetune.tokenized import tokenize_tasks
    from manyicl.tasks import load_task
    from manyicl.tasks.remap import Kind, LabelPools, draw_mapping, label_set, mapping

    remapping = mx.Remapping(prob=1.0, flip_prob=0.2)
    mixture = mx.load_mixture(mx.DEFAULT_MIXTURE)
    classif = [m for m in mixture.tasks if label_set([e.output for e in m.train], 20)]
    train = random.Random("curve:train").sample(classif, min(args.train_tasks, len(classif)))
    heldout = []
    for name in mx.heldout_eval_tasks(mx.DEFAULT_MIXTURE):
        task = load_task(name)
        if label_set([e.output for e in task.examples], 20):
            heldout.append(mx.MixtureTask(task, 1.0, task.examples, ()))
    pools = {"train": LabelPools.load("train"), "eval": LabelPools.load("eval")}
    seqs = []
    for group, tasks in (("train", train), ("heldout", heldout)):
        for t in tokenize_tasks(tasks, fmt, tok, args.max_seq_len, remapping):
            for i in range(args.per_task):
                rng = random.Random(f"curve:{t.name}:{i}")
                seqs.append(_sequence(group, "natural", t, None, rng, args, fmt, tok))
                if group == "train":
                    labels = draw_mapping(rng, t.remap.labels, pools["train"], 0.2)
                    seqs.append(_sequence(group, "remapped", t, labels, rng, args, fmt, tok))
                    continue
                for kind in (Kind.FLIPPED, Kind.WORDS):
                    labels = mapping(rng, t.remap.labels, kind, pools["eval"])
                    seqs.append(_sequence(group, str(kind), t, labels, rng, args, fmt, tok))
    return seqs


def _sequence(group, kind, task, labels, rng, args, fmt, tok) -> dict:
    """One packed sequence of `task` in a seeded order, under `labels` (None: natural)."""
    from manyicl.evaluate.runner import answer_ids
    from manyicl.finetune.sequences import render_sequence
    from manyicl.prompting import TokenizedExample
    from manyicl.tasks.remap import first_occurrences

    r, natural = task.remap, labels is None
    labels = labels or r.labels
    answers = {label: answer_ids(fmt, tok, label) for label in labels}
    header = task.header if natural else r.header  # a remapped task loses its instruction
    order = rng.sample(range(len(r.stems)), len(r.stems))
    room = args.max_seq_len - len(header) - 128  # the filler pads to at most one 128 block
    examples, mapped, length = [], [], 0
    for j in order:
        label = labels[r.label_of[j]]
        # natural: the example as trained (with any listed choices); remapped: without them
        ex = task.train[j] if natural else TokenizedExample(r.stems[j], answers[label])
        if length + len(ex) > room:
            break
        examples.append(ex)
        mapped.append(label)
        length += len(ex)
    pairs = zip(examples, mapped, strict=True)
    if natural and any(ex.answer[0] != answers[m][0] for ex, m in pairs):
        raise ValueError(f"{task.name}: a demonstration's answer does not start as its label's")
    prompt = render_sequence(header, examples, task.padding)
    firsts = [answers[label][0] for label in labels]
    skip = [False] * len(mapped) if natural else first_occurrences(mapped)
    distinct = len(set(firsts)) == len(firsts)
    spans = [
        (s, e, firsts if distinct else None, sk)
        for (s, e), sk in zip(prompt.answer_spans, skip, strict=True)
    ]
    return {
        "group": group,
        "kind": kind,
        "task": task.name,
        "ids": prompt.token_ids,
        "spans": spans,
    }


def model_name(adapter: Path | None) -> str:
    """'base', the adapter folder's name, or 'run@step-N' for a training checkpoint."""
    if adapter is None:
        return "base"
    if adapter.parent.name == "checkpoints":
        return f"{adapter.parent.parent.name}@{adapter.name}"
    return adapter.name


def load_model(model_path: str, adapter: Path | None):
    """The base model in float32, with `adapter` merged into it when given."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model.eval()


def score(model, seq: dict) -> dict[str, tuple[list[float], list[float]]]:
    """{bucket: (accuracies, losses)} of one sequence's predictable answers."""
    import torch

    ids = torch.tensor([seq["ids"]])  # (1, T)
    spans = seq["spans"]
    keep = torch.tensor([p - 1 for s, e, _, _ in spans for p in range(s, e)])  # (K,)
    with torch.inference_mode():
        logits = model(input_ids=ids, logits_to_keep=keep).logits[0]  # (K, V)
    logp = torch.log_softmax(logits.float(), dim=-1)
    targets = ids[0, keep + 1]  # (K,)
    nll = -logp.gather(1, targets[:, None])[:, 0]  # (K,)
    out: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    row = 0
    for k, (s, e, firsts, skip) in enumerate(spans):
        name, n = bucket(k), e - s
        if name and not skip:
            acc, losses = out[name]
            losses.append(float(nll[row : row + n].mean()))
            if firsts is not None:
                best = max(firsts, key=lambda t: float(logp[row, t]))
                acc.append(float(best == seq["ids"][s]))
        row += n
    return dict(out)


def by_task(seqs: list[dict], scored: list[dict], group: tuple[str, str], metric: int) -> dict:
    """{bucket: {task: [mean accuracy (metric 0) or loss (1) of each of its sequences]}} for
    one (group, kind)."""
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for seq, buckets in zip(seqs, scored, strict=True):
        if (seq["group"], seq["kind"]) == group:
            for name, values in buckets.items():
                if values[metric]:
                    out[name][seq["task"]].append(sum(values[metric]) / len(values[metric]))
    return out


def report(seqs: list[dict], results: dict[str, list[dict]], args, seconds: dict) -> str:
    names = [bucket(lo) for lo, _ in BUCKETS]
    groups = sorted({(s["group"], s["kind"]) for s in seqs}, key=lambda g: (g[0] != "train", g))
    lines = [
        "# Reading the demonstrations: accuracy against shots, from packed sequences",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {machine()}  ",
        f"Date: {today()}",
        "",
        f"{len(seqs)} sequences of up to {args.max_seq_len} tokens. Columns: answers with k "
        "demonstrations before them; accuracy and mean answer NLL, mean over tasks; each "
        "variant minus the base, paired by sequence, 95 % bootstrap interval over sequences "
        "within tasks; "
        "**bold**: significant. How it is measured: `benchmarks/icl_curve.py`'s docstring.",
    ]
    for group in groups:
        tasks = {s["task"] for s in seqs if (s["group"], s["kind"]) == group}
        lines += ["", f"## {group[0]} tasks, {group[1]} labels ({len(tasks)} tasks)", ""]
        for metric, what in enumerate(("accuracy", "answer NLL")):
            tables = {m: by_task(seqs, scored, group, metric) for m, scored in results.items()}
            lines += [*_table(what, tables, names), ""]
    lines += ["", "Scoring time: " + ", ".join(f"{m} {s:.0f} s" for m, s in seconds.items())]
    return "\n".join(lines) + "\n"


def _table(what: str, tables: dict[str, dict], names: list[str]) -> list[str]:
    """Markdown rows: each model's mean over tasks per bucket; variants with their paired
    difference from the base."""
    from manyicl.evaluate.stats import bootstrap_mean

    lines = [f"| {what} | " + " | ".join(f"k {n}" for n in names) + " |"]
    lines += ["| --- |" + " ---: |" * len(names)]
    base = tables["base"]
    for model, table in tables.items():
        cells = []
        for n in names:
            if n not in table:
                cells.append("-")
                continue
            mean = sum(sum(v) / len(v) for v in table[n].values()) / len(table[n])  # over tasks
            if model == "base":
                cells.append(f"{mean:.3f}")
                continue
            diffs = [
                [v - b for v, b in zip(table[n][t], base[n][t], strict=True)] for t in table[n]
            ]
            ci = bootstrap_mean(diffs)
            text = f"{mean:.3f} ({ci.mean:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}])"
            cells.append(f"**{text}**" if ci.significant else text)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", type=Path, action="append", default=[], help="repeatable")
    parser.add_argument("--model", default=None, help="base model (default: the default model)")
    parser.add_argument("--train-tasks", type=int, default=24, help="training tasks sampled")
    parser.add_argument("--per-task", type=int, default=2, help="sequences per task and kind")
    parser.add_argument("--max-seq-len", type=int, default=2048)
    parser.add_argument("--out", type=Path, help="markdown file to write the report to")
    parser.add_argument(
        "--records",
        type=Path,
        default=Path("runs/icl_curve"),
        help="folder of each model's scores: a model already scored on the same sequences is "
        "not scored again",
    )
    return parser.parse_args()


def score_all(model_path: str, adapter: Path | None, name: str, seqs: list[dict], records: Path):
    """(scores per sequence, seconds) for one model; read back from `records` when this model
    was scored on the same sequences before."""
    import time

    from tqdm import tqdm

    key = hashlib.sha256(json.dumps([s["ids"] for s in seqs]).encode()).hexdigest()[:16]
    saved = records / f"{name}.json"
    if saved.is_file() and (got := json.loads(saved.read_text()))["sequences"] == key:
        return got["scored"], got["seconds"]
    model, started = load_model(model_path, adapter), time.perf_counter()
    scored = [score(model, s) for s in tqdm(seqs, desc=name, unit="seq")]
    seconds = time.perf_counter() - started
    records.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"sequences": key, "scored": scored, "seconds": seconds}))
    return scored, seconds


def main() -> None:
    from manyicl.finetune.setup import load_format
    from manyicl.manifest import read_manifest
    from manyicl.models import resolve_model
    from manyicl.prompting import HFTokenizer

    args = parse_args()
    model_path = resolve_model(args.model)
    tok = HFTokenizer.from_pretrained(model_path)
    fmt = read_manifest(args.adapter[0]).prompt_format if args.adapter else None
    fmt = fmt or load_format("plain", tok.hf)
    seqs = build_sequences(args, fmt, tok)
    results, seconds = {}, {}
    for adapter in [None, *args.adapter]:
        name = model_name(adapter)
        results[name], seconds[name] = score_all(model_path, adapter, name, seqs, args.records)
    text = report(seqs, results, args, seconds)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    run_benchmark(main)
