"""Demonstrations as data: an `Example` is one input/output pair, a `DemoSet` a list of them."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, StrictStr


class Example(BaseModel):
    """One demonstration: the model sees `input`, and learns to produce `output`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: StrictStr
    output: StrictStr


class DemoSet(BaseModel):
    """A task's demonstrations, with an optional instruction rendered once before them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    examples: list[Example]  # may be empty: the query rendered alone, in the same format
    instruction: StrictStr | None = None
    name: StrictStr | None = None

    def save(self, path: str | Path) -> None:
        """Write the set as JSON."""
        Path(path).write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DemoSet:
        """Read a set written by `save` (or any JSON of the same shape)."""
        return cls.model_validate(json.loads(Path(path).read_text()))
