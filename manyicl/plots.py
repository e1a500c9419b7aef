"""Headless matplotlib figures saved straight to PNG (load tests, evaluation)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def axes(path: Path, **labels: str) -> Iterator:
    """A figure's axes; `labels` (title, xlabel, ylabel) applied and the PNG saved on exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    yield ax
    ax.set(**labels)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
