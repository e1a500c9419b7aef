"""Clients written for vLLM, run unchanged against manyicl-serve: vLLM's own benchmark client,
GuideLLM (completions, chat and Responses, streamed with continuous usage), lm-evaluation-harness
(`local-completions` with the remote tokenizer, one generation and one log-likelihood task over
local JSONL files), and prompt log-probabilities compared with vLLM's own server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from manyicl.cpu import auto_dtype, cpu_flags
from manyicl.loadtests.servers import ServerProcess, vllm_command

from serverproc import API_KEY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory, smollm2_dir):
    """vLLM's own OpenAI server on the default model, in the dtype manyicl-serve's `auto` picks
    on this CPU (bfloat16 where it is native, else float32), so the two compute alike."""
    folder = tmp_path_factory.mktemp("vllm")
    args = [
        "--model",
        smollm2_dir,
        "--dtype",
        auto_dtype(True, cpu_flags())[0],
        "--max-model-len",
        "2048",
        "--enforce-eager",
        "--kv-cache-memory-bytes",
        str(256 << 20),
    ]
    proc = ServerProcess(lambda port: vllm_command(port, args), folder / "vllm.log")
    proc.start()
    yield proc
    proc.stop()


def _base_model(http) -> str:
    return next(m["id"] for m in http.get("/v1/models").json()["data"] if m["id"] != "manyicl")


def test_vllm_benchmark_client_runs_without_failures(server, smollm2_dir, tmp_path):
    driver = (
        "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
        "from vllm.benchmarks.serve import add_cli_args, main\n"
        "import sys\np = FlexibleArgumentParser(); add_cli_args(p)\n"
        "main(p.parse_args(sys.argv[1:]))\n"
    )
    args = [
        "--backend",
        "openai",
        "--endpoint",
        "/v1/completions",
        "--base-url",
        server.url,
        "--model",
        "manyicl",
        "--tokenizer",
        smollm2_dir,
        "--dataset-name",
        "prefix_repetition",
        "--prefix-repetition-prefix-len",
        "64",
        "--prefix-repetition-suffix-len",
        "16",
        "--prefix-repetition-num-prefixes",
        "2",
        "--prefix-repetition-output-len",
        "8",
        "--num-prompts",
        "24",  # the run that once got 24 x 400 (vLLM fields refused)
        "--save-result",
        "--result-dir",
        str(tmp_path),
        "--result-filename",
        "bench.json",
    ]
    env = {**os.environ, "OPENAI_API_KEY": API_KEY}
    run = subprocess.run(
        [sys.executable, "-c", driver, *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["completed"] == 24 and result.get("failed", 0) == 0, result


def test_prompt_logprobs_match_vllms_server(http, vllm_server):
    body = {
        "prompt": "The capital of France is Paris, and the capital of Italy is Rome.",
        "echo": True,
        "logprobs": 1,
        "max_tokens": 0,
    }
    ours = http.post("/v1/completions", json={"model": _base_model(http), **body}).json()
    theirs = httpx.post(
        vllm_server.url + "/v1/completions",
        timeout=120,
        json={"model": _served(vllm_server), **body},
    ).json()
    a, b = ours["choices"][0]["logprobs"], theirs["choices"][0]["logprobs"]
    assert a["tokens"] == b["tokens"] and a["token_logprobs"][0] is None
    assert a["token_logprobs"][1:] == pytest.approx(b["token_logprobs"][1:], abs=2e-3)
    assert ours["choices"][0]["text"] == theirs["choices"][0]["text"]


def _served(proc) -> str:
    return httpx.get(proc.url + "/v1/models").json()["data"][0]["id"]


def _lm_eval_tasks(folder) -> str:
    """A generation task and a multiple-choice (log-likelihood) task over local JSONL."""
    gen = [{"q": f"{a} + {b} =", "a": str(a + b)} for a, b in [(2, 3), (4, 4), (1, 6), (5, 2)]]
    mc = [
        {"q": f"Is {w} an animal?", "choices": ["yes", "no"], "gold": g}
        for w, g in [("a cat", 0), ("a chair", 1), ("a dog", 0), ("a spoon", 1)]
    ]
    for name, rows in (("gen", gen), ("mc", mc)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    specific = {
        "gen": [
            "output_type: generate_until",
            'doc_to_text: "{{q}}"',
            'doc_to_target: " {{a}}"',
            'generation_kwargs: {until: ["\\n"], max_gen_toks: 4, do_sample: false}',
            "metric_list: [{metric: exact_match}]",
        ],
        "mc": [
            "output_type: multiple_choice",
            'doc_to_text: "{{q}} Answer:"',
            'doc_to_choice: "{{choices}}"',
            "doc_to_target: gold",
            "metric_list: [{metric: acc}]",
        ],
    }
    for name, lines in specific.items():
        common = [
            f"task: manyicl_{name}",
            "dataset_path: json",
            f"dataset_kwargs: {{data_files: {{train: {folder / name}.jsonl}}}}",
            "test_split: train",
        ]
        (folder / f"{name}.yaml").write_text("\n".join(common + lines) + "\n")
    return str(folder)


@pytest.mark.parametrize("endpoint", ["/v1/completions", "/v1/chat/completions", "/v1/responses"])
def test_guidellm_runs_without_failures_and_sees_the_shared_prefix_cached(
    server, smollm2_dir, tmp_path, endpoint
):
    backend = f"kind=openai_http,target={server.url},model=manyicl,api_key={API_KEY}"
    data = {
        "kind": "synthetic_text",
        "prompt_tokens": 16,
        "output_tokens": 4,
        "prefix_buckets": [{"prefix_tokens": 256, "prefix_count": 1}],  # two whole KV blocks
    }
    report = tmp_path / "report.json"
    args = [
        *(sys.executable, "-m", "guidellm", "run"),
        *("--backend", f"{backend},request_format={endpoint}"),
        *("--profile", "kind=synchronous", "--constraint", "kind=max_requests,count=4"),
        *("--tokenizer", f"kind=huggingface_auto,model={smollm2_dir}"),
        *("--data", json.dumps(data), "--output", f"kind=json,path={report}"),
        "--disable-console",
    ]
    run = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    (bench,) = json.loads(report.read_text())["benchmarks"]
    totals = bench["metrics"]["request_totals"]
    assert totals["successful"] == 4 and totals["errored"] == totals["incomplete"] == 0, totals
    done = bench["requests"]["successful"]
    assert [r["output_tokens"] for r in done] == [4] * 4  # usage came back on every request
    assert all(r["cached_tokens"] >= 128 for r in done[1:]), done  # the prefix hit the cache


def _lm_eval(url: str, model: str, tokenizer: str, tasks: str, out) -> dict:
    """lm-eval's scores; `tokenizer` is its model_args for the tokenizer."""
    args = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "local-completions",
        "--model_args",
        f"model={model},base_url={url}/v1/completions,{tokenizer},"
        f"num_concurrent=1,max_retries=1,auth_token={API_KEY}",
        "--tasks",
        "manyicl_gen,manyicl_mc",
        "--include_path",
        tasks,
        "--output_path",
        str(out),
    ]
    env = {**os.environ, "OPENAI_API_KEY": API_KEY, "HF_DATASETS_OFFLINE": "1"}
    run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    (result,) = out.rglob("results_*.json")
    return {
        t: {k: v for k, v in r.items() if "," in k}
        for t, r in json.loads(result.read_text())["results"].items()
    }


def test_lm_eval_scores_with_the_remote_tokenizer_equal_vllms_server(
    http, vllm_server, smollm2_dir, tmp_path
):
    """Ours through `tokenizer_backend=remote` (/tokenizer_info, /tokenize, /detokenize);
    vLLM's server with the local Hugging Face tokenizer."""
    tasks = _lm_eval_tasks(tmp_path)
    url = str(http.base_url).rstrip("/")
    ours = _lm_eval(url, _base_model(http), "tokenizer_backend=remote", tasks, tmp_path / "ours")
    local = f"tokenizer={smollm2_dir},tokenizer_backend=huggingface"
    theirs = _lm_eval(vllm_server.url, _served(vllm_server), local, tasks, tmp_path / "v")
    assert set(ours) == {"manyicl_gen", "manyicl_mc"}
    assert ours == theirs
