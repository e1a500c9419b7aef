"""The fine-tuning speed doc: ratios computed from the timings, the reading kept on rewrite."""

from argparse import Namespace
from pathlib import Path

import pytest


@pytest.fixture
def finetune_speed(benchmark_module):
    return benchmark_module("finetune_speed")


def timings(fs, before: float, after: float) -> dict[str, list[tuple[float, float]]]:
    """Every variant at 100 tokens/s but the two the headline compares (three rounds each)."""
    speeds = {fs.BEFORE: before, fs.AFTER: after}
    return {v: [(speeds.get(v, 100.0) + d, 1.0) for d in (-5, 0, 5)] for v in fs.VARIANTS}


def test_the_table_states_the_ratios_of_the_medians(finetune_speed):
    args = Namespace(max_seq_len=2048, mixture=Path("mix.toml"), steps=3)
    text = finetune_speed.table(timings(finetune_speed, 120.0, 300.0), args)
    assert "**2.50x** the tokens/s it did before (300 vs 120 tokens/s" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| {finetune_speed.AFTER} |"))
    assert "| 300 | 295-305 |" in row and "| 2.50x | 3.00x |" in row  # vs before, vs causal-LM


def test_rewriting_the_doc_keeps_the_reading(finetune_speed, tmp_path):
    doc = tmp_path / "FINETUNE_BENCHMARKS.md"
    finetune_speed.write_doc(doc, "# Speed\n\n| old |\n")
    assert doc.read_text() == "# Speed\n\n| old |\n"  # nothing hand-written yet
    doc.write_text(doc.read_text() + f"\n{finetune_speed.READING}\n\nOur reading.\n")
    finetune_speed.write_doc(doc, "# Speed\n\n| new |\n")
    text = doc.read_text()
    assert "| old |" not in text and "| new |" in text
    assert text.endswith(f"{finetune_speed.READING}\n\nOur reading.\n")
