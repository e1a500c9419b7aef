"""Every class of bad input gets OpenAI-style error JSON with its 4xx status, against the real
server (the session fixture in conftest); a port already taken stops the start at once."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys

import httpx
import pytest

pytestmark = pytest.mark.slow


# body, status, error type, param, code
BAD = [
    ("{not json", 400, "invalid_request_error", None, None),
    (
        '{"model": "manyicl", "prompt": "x", "temperature": "hot"}',
        400,
        "invalid_request_error",
        "temperature",
        None,
    ),
    (
        '{"model": "manyicl", "prompt": "x", "max_tokens": -1}',
        400,
        "invalid_request_error",
        "max_tokens",
        None,
    ),
    ('{"model": "nope", "prompt": "x"}', 404, "invalid_request_error", "model", "model_not_found"),
    (
        '{"model": "manyicl", "prompt": "x", "demo_set": "ds-0"}',
        404,
        "invalid_request_error",
        "demo_set",
        "demo_set_not_found",
    ),
    (
        '{"model": "manyicl", "prompt": "x", "demonstrations": [{"input": 1, "output": "b"}]}',
        400,
        "invalid_request_error",
        "demonstrations.0.input",
        None,
    ),
    (
        '{"model": "manyicl", "prompt": "x", "shots": 3}',
        400,
        "invalid_request_error",
        "shots",
        None,
    ),
    (
        '{"model": "manyicl", "prompt": "x", "demonstrations": [{"input": "a"}]}',
        400,
        "invalid_request_error",
        "demonstrations.0.output",
        None,
    ),
    (
        '{"model": "manyicl", "prompt": "x", "max_tokens": 5000}',
        400,
        "invalid_request_error",
        "prompt",
        "context_length_exceeded",
    ),
    (
        '{"model": "manyicl", "prompt": "x", "max_tokens": 2047, "demonstrations": '
        '[{"input": "a", "output": "b"}]}',
        400,
        "invalid_request_error",
        "prompt",
        "context_length_exceeded",
    ),
    (
        '{"model": "manyicl", "prompt": [1, 2], "demonstrations": [{"input": "a", "output": "b"}]}',
        400,
        "invalid_request_error",
        "prompt",
        None,
    ),
    (
        '{"model": "manyicl", "prompt": "x", "best_of": 3}',
        400,
        "invalid_request_error",
        "best_of",
        None,
    ),
    ('{"model": "manyicl", "prompt": []}', 400, "invalid_request_error", "prompt", None),
]


@pytest.mark.parametrize("body,status,kind,param,code", BAD)
def test_bad_input_gets_an_openai_error(http, body, status, kind, param, code):
    r = http.post("/v1/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert (err["type"], err["param"], err["code"]) == (kind, param, code)
    assert err["message"]


def test_oversize_body_auth_and_unknown_routes(server, http):
    big = json.dumps({"model": "manyicl", "prompt": "x" * 2_000_000})
    r = http.post("/v1/completions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert httpx.get(server.url + "/health").status_code == 200  # no key needed
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.get(server.url + "/v1/models", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(server.url + "/metrics").status_code == 401
    r = http.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_a_busy_port_exits_2_with_the_reason_before_the_engine_starts():
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "manyicl.serve.cli", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "EngineCore" not in proc.stderr  # no engine was started for nothing


def test_an_adapter_above_vllms_largest_rank_exits_2_before_the_engine_starts(
    tmp_path, smollm2_adapter
):
    """A soup's ranks add up (manyicl-finetune soup): past 512 only a merged one can be served."""
    adapter = tmp_path / "wide"
    shutil.copytree(smollm2_adapter, adapter)
    manifest = json.loads((adapter / "manyicl.json").read_text())
    manifest["lora"]["r"] = 640
    (adapter / "manyicl.json").write_text(json.dumps(manifest))
    proc = subprocess.run(
        [sys.executable, "-m", "manyicl.serve.cli", "--adapter", str(adapter), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "LoRA rank 640 is above vLLM's largest (512); serve it with --merge-lora" in proc.stderr
    assert "EngineCore" not in proc.stderr


@pytest.mark.parametrize("rank,vllm_rank", [(8, 8), (16, 16), (100, 128), (208, 256), (512, 512)])
def test_a_lora_rank_is_served_at_the_smallest_rank_vllm_accepts(smollm2_adapter, rank, vllm_rank):
    from manyicl.manifest import read_manifest
    from manyicl.serve.launch import _vllm_rank

    manifest = read_manifest(smollm2_adapter)
    wide = manifest.model_copy(update={"lora": {**manifest.lora, "r": rank}})
    assert _vllm_rank(wide) == vllm_rank
