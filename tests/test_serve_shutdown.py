"""Stopping the server: SIGTERM (what systemd and supervisors send) and SIGINT (Ctrl-C) both
stop it with exit status 0 and leave none of the engine processes it started. One server per
signal: SIGINT with a request in flight, SIGTERM mid-stream past the drain timeout."""

from __future__ import annotations

import contextlib
import signal
import threading

import httpx
import psutil
import pytest

from serverproc import API_KEY, small_server


@pytest.mark.slow
def test_sigint_stops_the_server_and_every_engine_process(tmp_path, smollm2_dir):
    server = small_server(tmp_path, smollm2_dir)
    try:
        descendants = _engine_processes(server.pid)
        in_flight = threading.Thread(target=_long_request, args=(server.url,), daemon=True)
        in_flight.start()
        server.proc.send_signal(signal.SIGINT)
        _assert_all_gone(server, descendants)
    finally:
        server.stop()


def _engine_processes(pid: int) -> list[psutil.Process]:
    descendants = psutil.Process(pid).children(recursive=True)
    assert descendants, "the engine runs in child processes"
    return descendants


def _assert_all_gone(server, descendants: list[psutil.Process]) -> None:
    assert server.proc.wait(timeout=120) == 0, server.log.read_text()[-2000:]
    _, alive = psutil.wait_procs(descendants, timeout=30)
    assert not alive, f"left running: {[(p.pid, p.name()) for p in alive]}"


def _long_request(url: str) -> None:
    body = {"model": "smollm2-135m-instruct-0.1.2-bf16", "prompt": "Once", "max_tokens": 200}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with contextlib.suppress(httpx.HTTPError):  # the server may close the connection
        httpx.post(url + "/v1/completions", json=body, headers=headers, timeout=120)


@pytest.mark.slow
def test_sigterm_ends_a_stream_still_running_at_the_drain_timeout_with_an_error_event(
    tmp_path, smollm2_dir
):
    server = small_server(tmp_path, smollm2_dir, "--drain-timeout", "2")
    try:
        descendants = _engine_processes(server.pid)
        body = {
            "model": "smollm2-135m-instruct-0.1.2-bf16",
            "prompt": "Once",
            "stream": True,
            "max_tokens": 1000,
            "ignore_eos": True,
        }
        events = []
        with httpx.stream(
            "POST",
            server.url + "/v1/completions",
            json=body,
            timeout=120,
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(line[6:])
                    if len(events) == 1:
                        server.proc.send_signal(signal.SIGTERM)  # mid-stream
        assert '"shutting_down"' in events[-2] and events[-1] == "[DONE]", events[-3:]
        _assert_all_gone(server, descendants)
    finally:
        server.stop()
