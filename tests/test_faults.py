"""Faults with nothing lost: the server killed with SIGKILL mid-burst of registrations (every
set it confirmed comes back, its engine processes exit by themselves), the demo-set folder
gone (a clear 5xx, stored sets still served), and the engine killed under load (JSON 5xx,
no hang, /health 503)."""

from __future__ import annotations

import shutil
import signal
import threading

import httpx
import psutil
import pytest

from serverproc import API_KEY, small_server

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def _register_burst(url: str, n: int, created: list[str]) -> None:
    for i in range(n):
        body = {"examples": [{"input": f"q{i}-{j}", "output": f"a{j}"} for j in range(20)]}
        try:
            r = httpx.post(url + "/v1/demo_sets", json=body, headers=AUTH, timeout=30)
        except httpx.HTTPError:
            return  # the server is gone
        if r.status_code == 201:
            created.append(r.json()["id"])


def test_sigkill_loses_no_confirmed_set_and_leaves_no_engine(tmp_path, smollm2_dir):
    first = small_server(tmp_path, smollm2_dir, name="first")
    engine = psutil.Process(first.pid).children(recursive=True)
    created: list[str] = []
    burst = threading.Thread(target=_register_burst, args=(first.url, 10_000, created))
    burst.start()
    while len(created) < 20:
        burst.join(0.05)
    first.proc.send_signal(signal.SIGKILL)
    burst.join(60)
    _, alive = psutil.wait_procs(engine, timeout=30)  # they notice their parent is gone
    assert not alive, [(p.pid, p.name()) for p in alive]
    second = small_server(tmp_path, smollm2_dir, name="second")
    try:
        stored = {
            s["id"] for s in httpx.get(second.url + "/v1/demo_sets", headers=AUTH).json()["data"]
        }
        assert set(created) <= stored
        assert not list((tmp_path / "sets").glob(".tmp-*"))
        _storage_fault_keeps_stored_sets(second.url, tmp_path / "sets", created[0])
        _engine_death_gives_json_errors(second)
    finally:
        second.stop()


def _storage_fault_keeps_stored_sets(url: str, folder, kept: str) -> None:
    shutil.rmtree(folder)
    folder.write_text("the disk is gone")
    r = httpx.post(
        url + "/v1/demo_sets",
        json={"examples": [{"input": "x", "output": "y"}]},
        headers=AUTH,
        timeout=30,
    )
    assert r.status_code == 507 and r.json()["error"]["code"] == "storage_error", r.text
    r = httpx.post(
        url + "/v1/completions",
        headers=AUTH,
        timeout=120,
        json={
            "model": "smollm2-135m-instruct-0.1.2-bf16",
            "prompt": "z",
            "demo_set": kept,
            "max_tokens": 2,
        },
    )
    assert r.status_code == 200, r.text


def _engine_death_gives_json_errors(server) -> None:
    results: list[httpx.Response | Exception] = []

    def request():
        try:
            results.append(
                httpx.post(
                    server.url + "/v1/completions",
                    headers=AUTH,
                    timeout=60,
                    json={
                        "model": "smollm2-135m-instruct-0.1.2-bf16",
                        "prompt": "Tell me a story.",
                        "max_tokens": 500,
                        "ignore_eos": True,
                    },
                )
            )
        except httpx.HTTPError as e:
            results.append(e)

    threads = [threading.Thread(target=request) for _ in range(3)]
    for t in threads:
        t.start()
    engine_core = next(
        p
        for p in psutil.Process(server.pid).children()
        if "EngineCore" in " ".join(p.cmdline()) or "VLLM" in p.name()
    )
    engine_core.kill()
    for t in threads:
        t.join(90)
    assert len(results) == 3 and all(isinstance(r, httpx.Response) for r in results), results
    assert all(r.status_code >= 500 and "error" in r.json() for r in results)
    assert httpx.get(server.url + "/health").status_code == 503
