"""Request and response models of /v1/demo_sets, manyicl's registry of demonstration sets
(no OpenAI counterpart; shaped like its file and model objects)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, StrictStr

from manyicl.prompting import Example
from manyicl.serve.protocol import OpenAIModel, RequestModel


class DemoSetCreate(RequestModel):
    examples: list[Example] = Field(min_length=1)
    instruction: StrictStr | None = None
    name: StrictStr | None = None
    warm: StrictBool = False  # prefill the demo block into the prefix cache now


class DemoSetInfo(OpenAIModel):
    id: str
    object: Literal["demo_set"] = "demo_set"
    name: str | None = None
    created: int
    num_examples: int
    num_tokens: int  # header plus every demonstration, in the server's prompt format
    warmed: bool = False


class DemoSetList(OpenAIModel):
    object: Literal["list"] = "list"
    data: list[DemoSetInfo]


class DemoSetDeleted(OpenAIModel):
    id: str
    object: Literal["demo_set"] = "demo_set"
    deleted: bool = True
