"""Synthetic tasks that only the demonstrations solve: the pure pieces on hand-built text, and
the command end to end on a small JSONL mixture (no BIG-bench load)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from manyicl.finetune.cli import main as finetune_main
from manyicl.finetune.mixture import load_mixture
from manyicl.finetune.synthetic import (
    SNIPPET_WORDS,
    cue_examples,
    cue_vocabulary,
    make_task,
    mixture_text,
    rebased,
    snippet,
    source_examples,
    task_weight,
)
from manyicl.tasks.remap import label_set

TEXTS = [
    " ".join(f"w{j}" for j in range(40)),  # longer than any snippet
    "short text of five",  # shorter: the whole of it
    "one",
]
ADJECTIVES = ("cold", "warm", "dark", "loud", "soft", "tall", "flat", "bright", "quiet", "rough")
NOUNS = ("stone", "river", "field", "cloud", "hill", "tree", "road", "lake", "wall", "door")
WORDS = [a + b for a in ADJECTIVES for b in NOUNS]  # 100 words, 12 to a text


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_snippet_is_a_window_of_the_text(text, seed):
    words = text.split()
    got = snippet(random.Random(seed), text)
    assert 1 <= len(got) <= SNIPPET_WORDS[1]
    assert len(got) >= min(SNIPPET_WORDS[0], len(words))
    starts = [i for i in range(len(words)) if words[i : i + len(got)] == got]
    assert starts, got


@pytest.mark.parametrize(
    "texts, cues, labels",
    [
        (["the cat sat on the mat today"], [["alpha"], ["beta"]], ["red", "blue"]),
        (
            ["a b c d e f g h", "keep cue Gamma, out", "x y z"],  # one holds a cue: never used
            [["alpha", "delta"], ["beta"], ["gamma", "omega"]],
            ["0", "1", "2"],
        ),
    ],
)
def test_cue_examples_hold_one_cue_of_their_class(texts, cues, labels):
    examples = cue_examples(random.Random(3), texts, cues, labels, 200)
    assert len(examples) == 200
    for ex in examples:
        c = labels.index(ex.output)
        present = [w for ws in cues for w in ws if w in ex.input.split()]
        assert len(present) == 1 and present[0] in cues[c], ex
    assert {ex.output for ex in examples} == set(labels)  # every class drawn
    assert label_set([ex.output for ex in examples], 20) == tuple(sorted(labels))


def test_cue_examples_refuse_texts_that_all_hold_a_cue():
    with pytest.raises(ValueError, match="nearly every text"):
        cue_examples(random.Random(0), ["alpha beta"], [["alpha"], ["beta"]], ["a", "b"], 5)


def test_source_examples_come_from_their_class_texts():
    sources = [["red green blue cyan magenta yellow black white"], ["one two three four five six"]]
    examples = source_examples(random.Random(1), sources, ["colour", "number"], 50)
    for ex in examples:
        src = sources[["colour", "number"].index(ex.output)][0]
        assert ex.input in src


@pytest.mark.parametrize(
    "texts, want",
    [
        (
            ["The quick brown fox", "jumps over lazy dogs"],
            ["brown", "dogs", "jumps", "lazy", "over", "quick"],
        ),
        (["a an the", "x1y2 well-known", "toolongforacue"], []),
        (["common words here", "common words there"], ["here", "there"]),  # in 2 of 2: too common
        (["the River.", "river runs", "flows"], ["flows", "runs"]),  # "River." is "river": 2 of 3
    ],
)
def test_cue_vocabulary(texts, want):
    assert cue_vocabulary(texts) == want


@pytest.mark.parametrize("weights, n, share", [([1.0, 1.0, 2.0], 2, 0.25), ([0.5] * 10, 7, 0.5)])
def test_task_weight_gives_the_share(weights, n, share):
    w = task_weight(weights, n, share)
    assert n * w / (sum(weights) + n * w) == pytest.approx(share)


def test_mixture_text_appends_jsonl_tasks():
    text = mixture_text('[[task]]\nname = "a"\n', ["s-0", "s-1"], 0.5)
    assert text.count("[[task]]") == 3
    assert 'path = "s-1.jsonl"' in text and "weight = 0.5\n" in text


@pytest.mark.parametrize(
    "text, want",
    [
        ('path = "a.jsonl"', 'path = "/m/a.jsonl"'),
        ('path="d/a.jsonl"\n', 'path="/m/d/a.jsonl"\n'),
        ('  path = "/abs/a.jsonl"', '  path = "/abs/a.jsonl"'),  # absolute: kept
        ('name = "path"\nsplit = "train"', 'name = "path"\nsplit = "train"'),  # no path key
        ('x = 1\npath = "a"\npath = "/b"', 'x = 1\npath = "/m/a"\npath = "/b"'),
    ],
)
def test_rebased_makes_relative_paths_absolute(text, want):
    assert rebased(text, Path("/m")) == want


def test_command_writes_a_mixture_that_loads(tmp_path):
    base = tmp_path / "base.toml"
    lines = ["[settings]\nmin_examples = 16\neval_examples = 4\nremap_prob = 0.5\n"]
    for fam in ("poems", "recipes"):
        rare = [fam + "".join(chr(97 + int(d)) for d in f"{i:03d}") for i in range(40)]
        rows = [{"input": " ".join([*random.Random(f"{fam}{i}").sample(WORDS, 12), rare[i]]),
                 "output": str(i)} for i in range(40)]  # fmt: skip
        (tmp_path / f"{fam}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        path = tmp_path / fam if fam == "poems" else fam  # a relative path is made absolute
        lines.append(f'[[task]]\nname = "{fam}/x"\nsource = "jsonl"\npath = "{path}.jsonl"\n')
    base.write_text("\n".join(lines))
    out = tmp_path / "out"
    argv = ["synthetic", "--out", str(out), "--mixture", str(base), "--tasks", "4"]
    finetune_main([*argv, "--examples", "64", "--share", "0.5"])
    first = {p.name: p.read_text() for p in sorted(out.iterdir())}
    finetune_main([*argv, "--examples", "64", "--share", "0.5"])
    assert first == {p.name: p.read_text() for p in sorted(out.iterdir())}  # seeded
    mixture = load_mixture(out / "mixture.toml")
    synthetic = [t for t in mixture.tasks if t.task.name.startswith("synthetic-")]
    assert [t.task.name for t in synthetic] == [
        "synthetic-cue-000", "synthetic-source-001", "synthetic-cue-002", "synthetic-source-003"
    ]  # fmt: skip
    for t in synthetic:
        assert len(t.train) + len(t.eval) == 64
        assert label_set([e.output for e in t.task.examples], 20)  # remapped like any classifier
    total = sum(t.weight for t in mixture.tasks)
    assert sum(t.weight for t in synthetic) / total == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize(
    "kind, by_family, vocab, message",
    [
        ("source", {"only": ["some text here"]}, WORDS, "need 2 task families"),
        ("cue", {"a": ["x y"], "b": ["z w"]}, ["alpha", "beta"], "distinct words"),
    ],
)
def test_make_task_refuses_text_too_thin_for_it(kind, by_family, vocab, message):
    with pytest.raises(ValueError, match=message):
        make_task(kind, random.Random(0), by_family, vocab, [f"l{i}" for i in range(10)], 32)


@pytest.mark.parametrize("kind", ["cue", "source"])
def test_make_task_labels_are_pool_words_and_every_class_is_used(kind):
    by_family = {f"f{i}": [" ".join(random.Random(i).sample(WORDS, 10))] for i in range(9)}
    pool = [f"label{i}" for i in range(20)]
    cue_words = [w + "ish" for w in WORDS]  # not in the texts, as most words of a corpus
    examples = make_task(kind, random.Random(4), by_family, cue_words, pool, 300)
    labels = {e.output for e in examples}
    assert len(examples) == 300 and labels <= set(pool) and 2 <= len(labels) <= 8
