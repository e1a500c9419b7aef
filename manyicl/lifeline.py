"""Engine processes that end with the process that started them.

vLLM's CPU engine runs in spawned processes (the engine core, its workers). Killed with
SIGKILL, or with SIGTERM where nothing handles it, the process that started them cannot stop
them, and they run on as orphans, each spinning a core. `claim_children()` marks the current
process as their owner; every spawned process imports its parent's main module again, which
imports this module, whose import starts a watch in any process that is not the owner: when its
parent goes, it stops itself (SIGTERM, so vLLM shuts its workers down, then a hard exit).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time

OWNER_PID = "MANYICL_OWNER_PID"  # inherited by every process the owner starts


def claim_children() -> None:
    """Make the processes started from now on (and theirs) exit when their parent is gone."""
    os.environ[OWNER_PID] = str(os.getpid())


def exit_with_parent(grace: float = 15.0) -> None:
    """In a process started under an owner, stop when the parent process is gone."""
    owner = os.environ.get(OWNER_PID)
    if owner is None or owner == str(os.getpid()):
        return
    threading.Thread(
        target=_watch, args=(os.getppid(), grace), name="manyicl-parent-watch", daemon=True
    ).start()


def _watch(parent: int, grace: float) -> None:
    # A spawned child imports its main module (and so this) before multiprocessing records
    # its parent; once recorded, the parent's sentinel closes when the parent dies, even if
    # that happened first. Until then, or in a child not started by multiprocessing, an orphan
    # shows as a new parent pid (init or a subreaper).
    while os.getppid() == parent != 1:
        if (recorded := multiprocessing.parent_process()) is not None:
            multiprocessing.connection.wait([recorded.sentinel])
            break
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os._exit(1)


exit_with_parent()  # a no-op in the owner and in any process started without one
