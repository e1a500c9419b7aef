"""The OpenAPI document (`GET /openapi.json`): the real request and response models, with the
extensions, and the OpenAI-style error schema on every route that can fail."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from manyicl.serve.protocol import ErrorResponse

ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 500, 503, 507)}
SSE = {"text/event-stream": {"schema": {"type": "string"}}}  # `stream: true`: chunks as SSE


def responses(model: type[BaseModel] | None = None, created: bool = False, stream: bool = False):
    """OpenAPI responses of a route: its model (and an SSE stream of its chunks where it
    streams) and the OpenAI-style errors any route can answer."""
    ok: dict = {"model": model} if model else {}
    if stream:
        ok["content"] = SSE
    codes = (200, 201) if created else (200,)
    return {**({code: ok for code in codes} if ok else {}), **ERRORS}


def document_bodies(app: FastAPI, bodies: dict[str, type[BaseModel]]) -> None:
    """Put the request models in the OpenAPI document: the routes parse their bodies
    themselves (for OpenAI-style 400s), so FastAPI does not see them. Client generators and
    schemathesis read the document."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for path, model in bodies.items():
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(body.pop("$defs", {}))
                components[model.__name__] = body
                schema["paths"][path]["post"]["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                        }
                    },
                }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
