"""The OpenAPI document of the session server describes the real request models, their
extensions and the error schema, on every route that parses a body."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_the_openapi_document_describes_the_real_models(http):
    doc = http.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for path, model in [
        ("/v1/completions", "CompletionRequest"),
        ("/v1/chat/completions", "ChatCompletionRequest"),
        ("/v1/demo_sets", "DemoSetCreate"),
        ("/v1/responses", "ResponsesRequest"),
        ("/tokenize", "TokenizeRequest"),
        ("/detokenize", "DetokenizeRequest"),
    ]:
        post = doc["paths"][path]["post"]
        body = post["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model}"}
        assert post["responses"]["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    fields = schemas["CompletionRequest"]["properties"]
    assert {"prompt", "demonstrations", "demo_set", "answer_choices", "top_k"} <= set(fields)
    assert schemas["CompletionRequest"]["additionalProperties"] is False
    assert "messages" in schemas["ChatCompletionRequest"]["properties"]
    assert {"prompt_cache_key", "session_params", "user_id"} <= set(fields)
    assert "continuous_usage_stats" in schemas["StreamOptions"]["properties"]
    assert {"input", "instructions", "demonstrations"} <= set(
        schemas["ResponsesRequest"]["properties"]
    )
    assert "/tokenizer_info" in doc["paths"]
