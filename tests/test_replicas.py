"""`manyicl-serve --replicas 2`: two real servers behind the real vllm-router on loopback."""

from __future__ import annotations

import os
import re
import signal
import time

import httpx
import psutil
import pytest

from manyicl.loadtests.servers import ServerProcess, manyicl_command
from manyicl.prompting import DemoSet, Example, routing_key
from manyicl.serve.replicas import placement, replica_argv

# argv -> what one replica (port 9) gets
# fmt: off
ARGV_TABLE = [
    (["--replicas", "2", "--port", "80"], ["--host", "127.0.0.1", "--port", "9"]),
    (["--replicas=2", "--host=0.0.0.0", "--max-model-len", "1024"],
     ["--max-model-len", "1024", "--host", "127.0.0.1", "--port", "9"]),
    (["--router-policy", "round_robin", "--enforce-eager", "--replicas", "3"],
     ["--enforce-eager", "--host", "127.0.0.1", "--port", "9"]),
]
# fmt: on


@pytest.mark.parametrize("argv,want", ARGV_TABLE)
def test_replica_argv_drops_the_group_flags(argv, want):
    assert replica_argv(argv, 9) == want


def test_placement_splits_cores_or_gpus():
    cpu = placement(2, True, [0, 1, 2, 3, 5])
    assert [e["VLLM_CPU_OMP_THREADS_BIND"] for e in cpu] == ["0,1", "2,3"]
    assert all(e["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0" for e in cpu)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in placement(2, False, [])] == ["0", "1"]
    with pytest.raises(ValueError, match="at least 3 cores"):
        placement(3, True, [0, 1])


def _demos(k: int) -> list[dict]:
    return [{"input": f"set {k} item {i}", "output": "yes" if i % 2 else "no"} for i in range(8)]


class Group:
    """The supervisor, its replicas (from its log) and their request counters."""

    def __init__(self, proc: ServerProcess):
        self.proc, self.http = proc, httpx.Client(base_url=proc.url, timeout=300)
        found = re.findall(r"replica (\d): pid (\d+), (\S+)", proc.log.read_text())
        self.replicas = {int(i): (int(pid), url) for i, pid, url in found}

    def served(self) -> dict[int, float]:
        """Requests each live replica has finished (vLLM's counter)."""
        out = {}
        for i, (_, url) in self.replicas.items():
            try:
                text = httpx.get(url + "/metrics", timeout=5).text
            except httpx.HTTPError:
                continue
            counts = re.findall(r"^vllm:request_success_total\{[^}]*\} (\S+)", text, re.M)
            out[i] = sum(float(c) for c in counts)
        return out

    def ask(self, k: int, query: str = "set 1 item 3") -> tuple[dict, int]:
        """One request of set k with its routing header; (response, the replica it reached)."""
        before, demos = self.served(), _demos(k)
        key = routing_key(DemoSet(examples=[Example(**x) for x in demos]))
        r = self.http.post(
            "/v1/completions",
            json={"model": "m", "prompt": query, "max_tokens": 2, "demonstrations": demos},
            headers={"X-Session-ID": key},
        )
        assert r.status_code == 200, r.text
        assert r.json()["manyicl"]["routing_key"] == key  # the server names the same key
        after = self.served()
        (replica,) = [i for i in after if after[i] > before.get(i, 0)]
        return r.json(), replica


@pytest.fixture(scope="module")
def group(tmp_path_factory, smollm2_dir):
    folder = tmp_path_factory.mktemp("replicas")
    args = ["--replicas", "2", "--model", smollm2_dir, "--served-model-name", "m"]
    args += ["--max-model-len", "1024", "--enforce-eager", "--demo-set-dir", str(folder / "sets")]
    args += ["--kv-cache-memory-bytes", str(128 << 20)]
    proc = ServerProcess(lambda port: manyicl_command(port, args), folder / "group.log")
    proc.start(timeout=900)
    yield Group(proc)
    proc.stop()


@pytest.mark.slow
def test_sets_stick_to_one_replica_and_survive_the_loss_of_one(group):
    assert sorted(group.replicas) == [0, 1]
    tree = psutil.Process(group.proc.pid).children(recursive=True)
    # Sets spread: ask new sets until both replicas have one (a set's replica is fixed).
    home: dict[int, int] = {}
    for k in range(24):
        home[k] = group.ask(k)[1]
        if len(set(home.values())) == 2:
            break
    assert set(home.values()) == {0, 1}
    # Every request of a set lands on its replica; from the second on, its block is cached.
    for k_set in (0, k):
        for query in ("set 0 item 5", "set 0 item 6"):
            body, replica = group.ask(k_set, query)
            assert replica == home[k_set]
            cached = body["usage"]["prompt_tokens_details"]["cached_tokens"]
            assert cached == body["manyicl"]["prompts"][0]["demo_block_tokens"] > 0
    # A registered set reaches every replica through the shared folder.
    created = group.http.post("/v1/demo_sets", json={"examples": _demos(99)})
    assert created.status_code == 201, created.text
    listed = [httpx.get(url + "/v1/demo_sets").json()["data"] for _, url in group.replicas.values()]
    assert all([d["id"] for d in data] == [created.json()["id"]] for data in listed)
    # Kill the replica of set 0: the router drops it and set 0 moves, after one cold prefill.
    lost = home[0]
    os.kill(group.replicas[lost][0], signal.SIGKILL)
    deadline = time.time() + 60
    while group.http.get("/health").status_code == 200 and time.time() < deadline:
        time.sleep(0.5)
    first, replica = group.ask(0)
    again, _ = group.ask(0, "set 0 item 7")
    assert replica != lost
    assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert again["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    # Stopping the supervisor stops everything it started.
    group.proc.stop()
    _, alive = psutil.wait_procs(tree, timeout=60)
    assert not alive, [p.pid for p in alive]
