"""benchmarks/quality_doc.py's shipping verdict on hand-built evaluation records: which goals a
candidate meets against the base, the last-target reference and the forgetting check, and
that a reference never run is reported as not measured (and unmet), never dropped."""

from __future__ import annotations

import argparse

import pytest

N = 100  # examples per cell


@pytest.fixture(scope="module")
def quality_doc(benchmark_module):
    return benchmark_module("quality_doc")


def records(correct: dict[tuple[str, str], int]) -> dict:
    """An evaluation whose cell (task, shots) answers its first `correct` examples right,
    for 3 seeds alike; paired with another evaluation, k more correct is +k/N exactly."""
    rows = [
        {"task": task, "shots": shots, "seed": seed, "metric": "choice", "shots_used": 1,
         "scores": [1.0] * k + [0.0] * (N - k)}
        for (task, shots), k in correct.items()
        for seed in range(3)
    ]  # fmt: skip
    return {"records": rows}


def model(natural: int, remapped: int) -> dict:
    return records({("t", "max"): natural, ("t~words", "max"): remapped})


def result(natural: int, remapped: int) -> dict:
    """model() with the per-cell score table an evaluation stage also returns."""
    from manyicl.evaluate.report import aggregate

    rows = model(natural, remapped)["records"]
    return {"records": rows, "scores": aggregate(rows)}


def doc_args(tmp_path) -> argparse.Namespace:
    """The arguments of benchmarks/quality.py that write_results reads, for a doc in tmp_path."""
    return argparse.Namespace(
        out=tmp_path / "RESULTS.md", model="default", mixture=tmp_path / "m.toml",
        mix_prob=None, steps=1, grad_accum=1, max_seq_len=64, lr=1e-3, schedule="cosine",
        lora_r=4,
    )  # fmt: skip


BASE, REF = model(40, 30), model(45, 40)
CASES = [
    # (name, candidate's (natural, remapped) correct, reference or None, forgetting
    #  candidate, expected verdicts)
    ("wins everywhere", (45, 45), REF, 50, [True, True, True, True, True]),
    ("ties the base", (40, 30), REF, 50, [False, False, False, False, True]),
    ("remapped short of +0.10", (45, 39), REF, 50, [False, True, True, False, True]),
    ("natural +0.02 only", (42, 45), REF, 50, [True, False, False, True, True]),
    ("forgets 3 points", (45, 45), REF, 47, [True, True, True, True, False]),
    ("no reference run", (45, 45), None, 50, [True, True, False, False, True]),
]


@pytest.mark.parametrize(("name", "ours", "ref", "zero_shot", "met"), CASES)
def test_goals(quality_doc, name, ours, ref, zero_shot, met):
    ev = {quality_doc.BASE: BASE, quality_doc.OURS: model(*ours)}
    if ref is not None:
        ev[quality_doc.REFERENCE] = ref
    fg = {
        quality_doc.BASE: records({("g", "0"): 50}),
        quality_doc.OURS: records({("g", "0"): zero_shot}),
    }
    verdict = quality_doc.goals({"eval": ev, "forgetting": fg})
    assert [g["met"] for g in verdict] == met, name
    measured = [g["measured"] for g in verdict]
    assert (measured[2] == "not measured") == (ref is None)
    assert measured[0].startswith(f"{(ours[1] - 30) / N:+.3f}")  # remapped, vs the base's 30


def test_goals_need_the_base_and_the_candidate(quality_doc):
    assert quality_doc.goals({"eval": {quality_doc.BASE: BASE}, "forgetting": {}}) == []


def test_results_doc_has_the_validation_section(quality_doc, tmp_path):
    """The validation stage gets its own section, means per label group and paired
    differences from the base, after the evaluation's; the goals never read it."""
    args = doc_args(tmp_path)
    ev = {quality_doc.BASE: result(40, 30), quality_doc.OURS: result(45, 45)}
    val = {quality_doc.BASE: result(50, 20), quality_doc.OURS: result(60, 15)}
    stages = {"eval": ev, "validation": val, "forgetting": {}, "scaling": {}}
    quality_doc.write_results(args, stages, {})
    doc = args.out.read_text()
    section = doc[doc.index("## Validation tasks") :]
    assert "Mean score, natural labels" in section and "Mean score, remapped labels" in section
    assert "| all-targets FT (ManyICL) | 0.600 |" in section  # its natural mean at max shots
    assert "+0.100" in section and "-0.050" in section  # paired: 60 vs 50, 15 vs 20 of 100
    assert "+0.050" in doc[: doc.index("## Validation tasks")]  # the eval's: 45 vs 40
    assert quality_doc.goals(stages) == quality_doc.goals({**stages, "validation": {}})


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (None, []),  # no earlier doc
        ("# T\n\n| a |\n", []),  # no hand-written part
        (
            "# T\n## Analysis\nours\n\n## Older\nmore\n\n",
            ["## Analysis", "ours", "", "## Older", "more"],
        ),
        ("# T\nsee ## Analysis below\n", []),  # only a heading line starts it
    ],
)
def test_kept_section(benchmark_module, tmp_path, text, kept):
    doc = tmp_path / "DOC.md"
    if text is not None:
        doc.write_text(text)
    assert benchmark_module("common").kept_section(doc, "## Analysis") == kept


def test_regenerating_the_results_doc_keeps_the_analysis(quality_doc, tmp_path):
    """The tables are rewritten from the records; the hand-written analysis below them stays."""
    args = doc_args(tmp_path)
    stages = {"eval": {}, "validation": {}, "forgetting": {}, "scaling": {}}
    quality_doc.write_results(args, stages, {})
    args.out.write_text(args.out.read_text() + "\n## Analysis\n\nWhat we read in them.\n")
    stages["eval"] = {quality_doc.BASE: result(40, 30), quality_doc.OURS: result(45, 45)}
    quality_doc.write_results(args, stages, {})
    doc = args.out.read_text()
    assert doc.count("## Analysis") == 1 and doc.endswith("## Analysis\n\nWhat we read in them.\n")
    assert "+0.050" in doc[: doc.index("## Analysis")]  # the new records' paired difference
