"""A process spawned under an owner exits by itself when its parent is killed with SIGKILL
(which no handler of the parent sees): what keeps vLLM's engine processes from outliving the
server or the evaluation that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil

OWNER = textwrap.dedent("""\
    import multiprocessing, time
    import manyicl.lifeline as lifeline

    def sleep():
        time.sleep(300)

    if __name__ == "__main__":
        lifeline.claim_children()
        child = multiprocessing.get_context("spawn").Process(target=sleep)
        child.start()
        print(child.pid, flush=True)
        time.sleep(300)
    """)


def test_a_spawned_child_exits_when_its_owner_is_killed(tmp_path):
    script = tmp_path / "owner.py"
    script.write_text(OWNER)
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        child = psutil.Process(int(owner.stdout.readline()))
        assert child.is_running()
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        _, alive = psutil.wait_procs([child], timeout=20)
        assert not alive
    finally:
        owner.kill()
