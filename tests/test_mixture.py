"""Mixture files and task sources: what loads, and what fails with a clear message."""

from __future__ import annotations

import json
import tomllib
import warnings
from collections import Counter

import pytest

from manyicl.finetune.mixing import family
from manyicl.finetune.mixture import DEFAULT_MIXTURE, MixtureError, load_mixture
from manyicl.tasks.task import load_hf_disk, load_jsonl


def _jsonl(path, n, **extra):
    rows = [{"input": f"q{i}", "output": f"a{i}", **extra} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _mixture(tmp_path, body: str):
    path = tmp_path / "mix.toml"
    path.write_text(body)
    return path


def test_jsonl_mixture_splits_train_and_eval(tmp_path):
    _jsonl(tmp_path / "a.jsonl", 20, instruction="Copy.")
    path = _mixture(
        tmp_path,
        """
[settings]
eval_examples = 5
min_examples = 10
[[task]]
name = "a"
source = "jsonl"
path = "a.jsonl"
weight = 2
""",
    )
    (task,) = load_mixture(path).tasks
    assert task.task.instruction == "Copy." and task.weight == 2.0
    assert len(task.train) == 15 and len(task.eval) == 5
    assert not set(task.train) & set(task.eval)
    assert load_mixture(path, seed=0) == load_mixture(path, seed=0)


@pytest.mark.parametrize(
    "body,message",
    [
        ("", "lists no"),
        ("[[task]\nname=", "cannot read"),
        ("[[task]]\nname = 'a'\nsource = 'jsonl'\npath = 'a.jsonl'\ncolour = 1", "unknown keys"),
        ("[settings]\nepochs = 3\n[[task]]\nname = 'a'", "unknown keys"),
        ("[settings]\nmix_prob = 1.5\n[[task]]\nname = 'a'", "mix_prob must be in"),
        ("[settings]\nmix_max_tasks = 1\n[[task]]\nname = 'a'", "mix_max_tasks"),
        ("[[task]]\nname = 'a'\nsource = 'jsonl'\npath = 'missing.jsonl'", "No such file"),
        ("[[task]]\nname = 'a'\nsource = 'csv'\npath = 'a.jsonl'", "unknown source"),
        ("[[task]]\nname = 'a'\nsource = 'jsonl'\npath = 'a.jsonl'\nweight = 0", "positive weight"),
        ("[[task]]\nname = 'a'\nsource = 'jsonl'\npath = 'a.jsonl'", "needs 64"),
        (
            "[heldout]\ntasks = ['a']\n[[task]]\nname = 'a'\nsource = 'jsonl'\npath = 'a.jsonl'",
            "held out",
        ),
        (
            "[heldout]\nprefixes = ['bigbench:modified_arithmetic/']\n[[task]]\n"
            "name = 'bigbench:modified_arithmetic/three_digit_addition_control'",
            "held out",
        ),
        ("[heldout]\nvalidation = ['b']\n[[task]]\nname = 'a'", r"validation: \['b'\] are not"),
        ("[heldout]\ntasks = ['c']\neval = ['b']\n[[task]]\nname = 'a'", r"eval: \['b'\] are not"),
        (
            "[heldout]\ntasks = ['b']\neval = ['b']\nvalidation = ['b']\n[[task]]\nname = 'a'",
            "both in eval and validation",
        ),
    ],
)
def test_bad_mixtures_fail_with_a_reason(tmp_path, body, message):
    _jsonl(tmp_path / "a.jsonl", 20)
    with pytest.raises(MixtureError, match=message):
        load_mixture(_mixture(tmp_path, body))


def test_unknown_big_bench_task_fails_with_a_reason(tmp_path, bigbench_tasks):
    with pytest.raises(MixtureError, match="no BIG-bench task"):
        load_mixture(_mixture(tmp_path, "[[task]]\nname = 'bigbench:no_such_task'"))


def _no_registry(tmp_path, monkeypatch):
    """An empty cache and a registry that lists nothing: every pinned file is missing."""
    monkeypatch.setenv("MANYICL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_INDEX_URL", (tmp_path / "no-registry").as_uri())


def test_big_bench_without_archive_says_where_to_put_one(tmp_path, monkeypatch):
    _no_registry(tmp_path, monkeypatch)
    body = "[[task]]\nname = 'bigbench:anachronisms'"
    with pytest.raises(
        MixtureError, match=r"bigbench:anachronisms.*put bigbench-1\.0\.0\.tar\.gz in .*cache"
    ):
        load_mixture(_mixture(tmp_path, body))


MISSING_AND_PRESENT = """
[settings]
eval_examples = 5
min_examples = 10
[[task]]
name = "evals:pig_latin"
[[task]]
name = "bigbench:anachronisms"
[[task]]
name = "a"
source = "jsonl"
path = "a.jsonl"
"""


def test_a_missing_source_leaves_its_tasks_out_with_one_warning(tmp_path, monkeypatch):
    _no_registry(tmp_path, monkeypatch)
    _jsonl(tmp_path / "a.jsonl", 20)
    path = _mixture(tmp_path, MISSING_AND_PRESENT)
    with pytest.warns(UserWarning, match="2 of 3 tasks left out") as caught:
        mixture = load_mixture(path)
    assert len(caught) == 1
    assert [t.task.name for t in mixture.tasks] == ["a"]
    assert [n for n, _ in mixture.missing] == ["evals:pig_latin", "bigbench:anachronisms"]
    assert all("put " in why for _, why in mixture.missing)  # says where a copy goes
    with pytest.raises(MixtureError, match="2 of 3 tasks left out"):
        load_mixture(path, strict=True)


def test_a_task_of_no_known_source_is_an_error(tmp_path):
    with pytest.raises(MixtureError, match="names no known source"):
        load_mixture(_mixture(tmp_path, "[[task]]\nname = 'nosuch:thing'"))


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": "a", "output": "b"}\n{"input": 3, "output": "b"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        load_jsonl(path)


def test_hf_disk_source_maps_columns(tmp_path):
    datasets = pytest.importorskip("datasets")
    data = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"question": ["q1", "q2"], "answer": ["a1", "a2"]})}
    )
    data.save_to_disk(str(tmp_path / "ds"))
    task = load_hf_disk(tmp_path / "ds", "train", "question", "answer", "qa")
    assert [(e.input, e.output) for e in task.examples] == [("q1", "a1"), ("q2", "a2")]
    with pytest.raises(ValueError, match="no column"):
        load_hf_disk(tmp_path / "ds", "train", "text", "answer")
    with pytest.raises(ValueError, match="split"):
        load_hf_disk(tmp_path / "ds", "test", "question", "answer")


@pytest.mark.slow
def test_default_mixture_spans_sources_and_never_trains_on_heldout():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # on a fresh machine every default source loads
        mixture = load_mixture(DEFAULT_MIXTURE)
    names = [t.task.name for t in mixture.tasks]
    sources = Counter(n.split(":")[0] for n in names)
    assert len(names) >= 200 and len(sources) >= 4 and "bigbench" not in sources
    assert max(sources.values()) < 0.5 * len(names)
    assert not any(mixture.is_heldout(n) for n in names) and not mixture.missing
    weight = Counter()
    for t in mixture.tasks:
        weight[t.task.name.split(":")[0]] += t.weight
    assert max(weight.values()) < 0.5 * sum(weight.values())  # no source dominates
    families = {family(n) for n in names}
    for prefix in mixture.heldout_prefixes:  # a held-out family or source stays on one side
        assert not [f for f in families if (f + "/").startswith(prefix)]


@pytest.mark.parametrize("key", ["eval", "validation", "forgetting"])
def test_evaluation_lists_are_held_out(key):
    from manyicl.finetune.mixture import heldout_eval_tasks

    names = heldout_eval_tasks(DEFAULT_MIXTURE, key)
    raw = tomllib.loads(DEFAULT_MIXTURE.read_text())
    trained = {t["name"] for t in raw["task"]}
    heldout = raw["heldout"]
    assert names and not set(names) & trained
    for name in names:
        assert name in heldout["tasks"] or name.startswith(tuple(heldout["prefixes"]))


@pytest.mark.parametrize(
    "spec,key", [("heldout", "eval"), ("validation", "validation"), ("forgetting", "forgetting")]
)
@pytest.mark.slow
def test_manyicl_eval_tasks_names_resolve_to_the_mixture_lists(spec, key):
    from manyicl.evaluate.cli import load_tasks
    from manyicl.finetune.mixture import heldout_eval_tasks

    names = [t.name for t in load_tasks(spec)]
    assert names and names == heldout_eval_tasks(key=key)
