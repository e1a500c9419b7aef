"""The demo-set scheduler: the policy as pure logic on a fake clock, the asyncio wrapper, and
a real engine whose tiny KV cache cannot hold two demo blocks at once."""

from __future__ import annotations

import asyncio

import pytest

from manyicl.serve.scheduler import DemoSetScheduler, SetAwareQueue


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _drain(q: SetAwareQueue) -> list[str | None]:
    """Admit while the policy allows; the keys in admission order."""
    order = []
    while (t := q.pick()) is not None:
        q.admit(t)
        order.append(t.key)
    return order


def _queue(capacity=100, max_inflight=8, max_wait=10.0):
    clock = Clock()
    return SetAwareQueue(capacity, max_inflight, max_wait, clock), clock


# requests (key, tokens) arriving together -> admitted at once (capacity 100)
# fmt: off
ADMIT_TABLE = [
    ([("a", 40), ("b", 40), ("a", 40)],            ["a", "a", "b"]),  # all fit: all, no wait
    ([("a", 60), ("b", 60), ("a", 60)],            ["a", "a"]),       # b waits for a's run
    ([("a", 60), ("b", 60), ("c", 60), ("b", 60)], ["a"]),            # one block at a time
    ([(None, 0), ("a", 40), (None, 0)],            [None, None, "a"]),  # no demo block: free
    ([("a", 150)],                                 ["a"]),            # too big, engine idle
    ([(None, 0), ("a", 150)],                      [None]),           # too big, engine busy
]
# fmt: on


@pytest.mark.parametrize("requests,admitted", ADMIT_TABLE)
def test_admission_table(requests, admitted):
    q, _ = _queue()
    for key, tokens in requests:
        q.submit(key, tokens)
    assert sorted(_drain(q), key=str) == sorted(admitted, key=str)


def test_a_new_set_runs_when_the_running_one_finishes_and_its_block_stays_preferred():
    q, _ = _queue()
    first = q.submit("a", 60)
    q.submit("b", 60)
    assert _drain(q) == ["a"]
    second = q.submit("a", 60)  # arrives after b, but a's block is resident
    assert _drain(q) == ["a"]
    q.finish(first)
    assert _drain(q) == []  # a still running: no room for b
    q.finish(second)
    assert _drain(q) == ["b"]
    assert list(q.resident) == ["b"]  # a's idle block left the model to make room


def test_aging_bounds_the_wait():
    q, clock = _queue(max_wait=5.0)
    q.submit("a", 60)
    _drain(q)
    q.submit("b", 60)  # does not fit beside running a
    for _ in range(4):
        q.submit("a", 60)
    assert _drain(q) == ["a", "a", "a", "a"]
    clock.now = 4.9
    q.submit("a", 60)
    assert _drain(q) == ["a"]  # b not yet starved
    clock.now = 5.0
    q.submit("a", 60)
    assert _drain(q)[0] == "b"  # starved: goes next although it does not fit


def test_max_inflight_is_respected():
    q, _ = _queue(max_inflight=2)
    tickets = [q.submit("a", 10) for _ in range(5)]
    assert _drain(q) == ["a", "a"]
    q.finish(tickets[0])
    assert _drain(q) == ["a"]
    assert q.state() == {"waiting": 2, "running": 2, "resident_sets": 1}


def test_asyncio_slots_admit_release_and_cancel():
    async def scenario():
        q, _ = _queue(capacity=100)
        s = DemoSetScheduler(q)
        order = []

        async def use(key, tokens, hold):
            async with s.slot(key, tokens):
                order.append(key)
                await hold.wait()

        hold_a = asyncio.Event()
        task_a = asyncio.create_task(use("a", 80, hold_a))
        await asyncio.sleep(0)
        task_b = asyncio.create_task(use("b", 80, asyncio.Event()))
        task_b2 = asyncio.create_task(use("b", 80, asyncio.Event()))
        await asyncio.sleep(0.01)
        assert order == ["a"] and len(q.waiting) == 2
        task_b2.cancel()  # a client that gives up while waiting
        await asyncio.sleep(0.01)
        assert len(q.waiting) == 1
        hold_a.set()
        await task_a
        await asyncio.sleep(0.01)
        assert order == ["a", "b"]
        task_b.cancel()
        await asyncio.gather(task_b, task_b2, return_exceptions=True)
        assert q.inflight == 0 and not q.waiting

    asyncio.run(scenario())


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", [True, False])
def test_real_engine_reuses_more_with_the_scheduler(
    scheduler, tmp_path, smollm2_adapter, smollm2_tok, cached_by_mode
):
    """Two ~2.5K-token demo blocks, a 4.2K-token KV cache, requests interleaved A B A B ..."""
    from manyicl.loadtests.runner import run_workload
    from manyicl.loadtests.workload import Mode, Workload
    from manyicl.manifest import read_manifest

    from serverproc import API_KEY, manyicl_server

    flag = "--demo-scheduler" if scheduler else "--no-demo-scheduler"
    server = manyicl_server(
        [
            "--adapter",
            str(smollm2_adapter),
            "--merge-lora",
            flag,
            "--enforce-eager",
            "--max-model-len",
            "4096",
            "--dtype",  # pinned: the KV cache's token count depends on it
            "float32",
            "--kv-cache-memory-bytes",
            str(200_000_000),  # 4.2K tokens of 46 KiB (30 layers x 3 KV heads x 64 x K,V x 4 B)
            "--demo-set-dir",
            str(tmp_path / "sets"),
        ],
        tmp_path / "server.log",
    )
    w = Workload(
        "interleaved", num_sets=2, block_tokens=2500, queries_per_set=4, concurrency=4, max_tokens=4
    )
    fmt = read_manifest(smollm2_adapter).prompt_format
    server.start()
    try:
        report = asyncio.run(
            run_workload(
                server.url, Mode.INLINE, "manyicl", w, fmt, smollm2_tok, API_KEY, progress=False
            )
        )
    finally:
        server.stop()
    assert report.summary["ok"] == 8
    cached_by_mode[scheduler] = report.summary["cached_tokens"]
    if len(cached_by_mode) == 2:
        assert cached_by_mode[True] > cached_by_mode[False], cached_by_mode


@pytest.fixture(scope="module")
def cached_by_mode() -> dict:
    return {}
