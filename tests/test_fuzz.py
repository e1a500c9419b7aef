"""Generated requests (schemathesis) against the server's own OpenAPI document: no response is
a 5xx, and every response conforms to the document (status, content type, body schema).

A bounded run (FUZZ_EXAMPLES per operation, a few minutes) is part of the suite; the long run
and its numbers are in docs/RELIABILITY.md. Generated bodies are kept cheap for a CPU: a few
tokens to generate, at most two choices and three answer choices."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from serverproc import API_KEY

pytestmark = [pytest.mark.slow, pytest.mark.fuzz]
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# No 5xx, and every response as the document says (status, content type, headers, body).
# Not `positive_data_acceptance`: a schema-valid body may still be refused with a 400 for what
# JSON Schema cannot state (the chat's last message must be the user's, a demo set must exist).
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
FUZZ_EXAMPLES = int(os.environ.get("MANYICL_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json", headers=AUTH)


@schemathesis.hook
def map_body(context, body):
    """Keep a generated request cheap: generation is the one costly thing a valid one does."""
    if not isinstance(body, dict):
        return body
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens", "min_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 4:
            body[key] = 4
    if "messages" in body or "prompt" in body:
        body.setdefault("max_tokens", 4)  # the default runs to the end of the context
    if "input" in body:  # /v1/responses
        body.setdefault("max_output_tokens", 4)
    if isinstance(body.get("n"), int) and not isinstance(body["n"], bool) and body["n"] > 2:
        body["n"] = 2
    if isinstance(body.get("answer_choices"), list):
        body["answer_choices"] = body["answer_choices"][:3]
    return body


def test_generated_requests_get_no_server_error_and_match_the_document(api_schema):
    # Driven through Hypothesis directly: schemathesis' pytest plugin (`from_fixture`) breaks
    # on pytest 9, which dropped the node attribute it rewrites.
    failures, sent = [], []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            sent.append(case.operation.label)
            case.call_and_validate(headers=AUTH, checks=CHECKS)

        try:
            check()
        except Exception as e:  # every operation is tried; all failures are reported
            # Hypothesis wraps a flaky failure in a group: its members say what failed.
            inner = "".join(f"\n  - {x!r}" for x in getattr(e, "exceptions", ()))
            failures.append(f"{operation.label}: {e}{inner}")
    print(f"{len(sent)} generated requests over {len(set(sent))} operations")  # pytest -s
    assert not failures, "\n\n".join(failures)
