"""The web process asks Linux for short CPU slices, so a webhook runs as soon as it arrives.

Every webhook is answered by the web process's event loop and its journal's flush thread.
When both CPUs are busy (the worker child, and on a small machine anything else it runs),
a thread that wakes for a webhook waits in the run queue until a running task's slice ends.
Measured by the inbound benchmark (the kernel's ``schedstat`` run delay of the web
process's threads, read every 50 ms), the web process waited 6.4-7.4 s for a CPU in a minute
at 200 messages/s, up to 25-45 ms within one 50 ms reading; webhooks over 30 ms that no disk
stall explains were such waits. Renicing the worker child changed nothing (the web process
waited behind every other process, not the worker alone).

Linux's EEVDF scheduler (kernel 6.12 and later) lets a task ask for a shorter slice than the
default (``sched_attr.sched_runtime`` of a normal task; 0.1-100 ms; no privilege needed):
its deadline comes sooner, so when it wakes it preempts the task running. That is what a
latency-bound thread should ask for, and it costs the others no share of the CPU (the slice
sets when a task runs, not how much). :func:`request_slice` asks it for every thread of this
process; threads and processes started afterwards inherit it, so ``connector worker`` asks
for the kernel's default again (its work is throughput, not latency; with ``serve
--worker-in-process`` the worker's threads keep the short slice). With it the web process
waited 3.9-5.9 s a minute at 200/s, at most 18-28 ms in one reading. Older kernels ignore
the request; other systems are left as they are.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys
import threading
from pathlib import Path

from connector.log_config import get_logger

log = get_logger(__name__)

_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}  # the syscall's number per architecture
_ATTR = struct.Struct("=IIQiIQQQ")  # struct sched_attr, first version (48 bytes)


def request_slice(ms: float) -> int:
    """Ask for a CPU slice of ``ms`` for each thread of this process (0: the kernel's
    default); how many threads the kernel took it for (0 where it cannot be asked). A
    thread's nice level and policy are kept; real-time and idle threads are left alone."""
    number = _SCHED_SETATTR.get(platform.machine())
    if not sys.platform.startswith("linux") or number is None:
        log.info("cpu_slice.unsupported", platform=sys.platform, machine=platform.machine())
        return 0
    fair = (os.SCHED_OTHER, os.SCHED_BATCH)
    syscall = ctypes.CDLL(None, use_errno=True).syscall
    runtime = int(ms * 1_000_000)
    taken = 0
    for tid in _threads():
        try:
            policy = os.sched_getscheduler(tid)
            nice = os.getpriority(os.PRIO_PROCESS, tid)
        except OSError:
            continue  # the thread ended meanwhile
        if policy not in fair:
            continue
        attr = ctypes.create_string_buffer(
            _ATTR.pack(_ATTR.size, policy, 0, nice, 0, runtime, 0, 0), _ATTR.size
        )
        if syscall(number, tid, attr, 0) == 0:
            taken += 1
        else:
            log.info("cpu_slice.refused", thread=tid, errno=ctypes.get_errno())
    log.info("cpu_slice.requested", ms=ms, threads=taken)
    return taken


def slice_ns(tid: int | None = None, *, pid: int | None = None) -> int | None:
    """The slice the kernel gives thread ``tid`` of process ``pid``, in ns (by default the
    calling thread, or ``pid``'s main thread); None where the kernel does not show it
    (``se.slice`` in the thread's ``sched`` file) or the thread is gone."""
    thread = tid or pid or threading.get_native_id()
    path = Path(f"/proc/{pid or 'self'}/task/{thread}/sched")
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip() == "se.slice":
            return int(value.strip())
    return None


def _threads() -> list[int]:
    try:
        return [int(task.name) for task in Path("/proc/self/task").iterdir()]
    except OSError:
        return [os.getpid()]
