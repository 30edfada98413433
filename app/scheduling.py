"""The kernel's scheduling policy for a worker's threads (Linux; elsewhere nothing changes).

``batch`` (SCHED_BATCH) tells the kernel these threads do throughput work: a thread of theirs that
wakes runs at its turn instead of preempting the one running. The model thread, woken by the first
request of a batch, then no longer cuts in before the event loop has read the requests that came
with it (batches grow), and a proxy or sidecar on the same cores, woken by a packet, runs before
the service's threads rather than after them (python -m bench.scale, docs/operations.md). A thread
alone on an idle core runs at once either way.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

log = logging.getLogger(__name__)

CpuPolicy = Literal["batch", "normal"]


def apply_cpu_policy(policy: CpuPolicy) -> None:
    """Put every thread of this process under ``policy``; threads started later inherit it."""
    if not hasattr(os, "SCHED_BATCH"):
        log.info("CPU_POLICY=%s: not supported here, the system's default applies", policy)
        return
    for task in os.listdir("/proc/self/task"):
        if not _set(int(task), policy):
            return


def set_thread_policy(policy: CpuPolicy) -> bool:
    """Put the calling thread alone under ``policy``; False where the system does not let it."""
    return hasattr(os, "SCHED_BATCH") and _set(0, policy)


def _set(thread: int, policy: CpuPolicy) -> bool:
    """Whether the rest may go on: False once the system refused (it will refuse them all again)."""
    value = os.SCHED_BATCH if policy == "batch" else os.SCHED_OTHER
    try:
        # Linux takes a thread id here (0: the calling thread), not only a process id.
        os.sched_setscheduler(thread, value, os.sched_param(0))
    except ProcessLookupError:  # the thread ended meanwhile
        return True
    except PermissionError as exc:  # a seccomp profile may forbid it: serve anyway
        log.warning("CPU_POLICY=%s: not applied (%s), the system's default applies", policy, exc)
        return False
    return True
