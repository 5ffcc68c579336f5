"""The web process's short CPU slice (Linux 6.12 and later): asked for every thread, kept by
threads started later, given back with 0, the nice level untouched; a slice the kernel
cannot take is a clear configuration error."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from connector.errors import ConfigurationError
from connector.settings import load_settings

PROBE = """
import json, os, threading
from connector.bootstrap.cpu_slice import request_slice, slice_ns
before = slice_ns()
early = []
ready, done = threading.Event(), threading.Event()
def running_before():
    ready.set(); done.wait(); early.append(slice_ns())
t = threading.Thread(target=running_before); t.start(); ready.wait()
os.nice(2)
taken = request_slice(0.1)
done.set(); t.join()
later = []
t = threading.Thread(target=lambda: later.append(slice_ns())); t.start(); t.join()
asked = slice_ns()
back = request_slice(0)
print(json.dumps(dict(before=before, taken=taken, asked=asked, early=early[0], later=later[0],
                      back=slice_ns(), nice=os.nice(0), threads_back=back)))
"""


def _probe() -> dict[str, int]:
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    found: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_every_thread_gets_the_slice_and_zero_gives_the_default_back() -> None:
    seen = _probe()
    if seen["before"] is None:
        pytest.skip("this kernel does not show a task's slice (/proc/.../sched se.slice)")
    if seen["asked"] == seen["before"]:
        pytest.skip("this kernel takes no custom slice (Linux 6.12 and later do)")
    assert seen["taken"] == 2  # the main thread and the one already running
    assert seen["asked"] == seen["early"] == 100_000  # 0.1 ms, running threads included
    assert seen["later"] == 100_000  # a thread started afterwards inherits it
    assert seen["threads_back"] == 1
    assert seen["back"] == seen["before"]  # 0: the kernel's default again
    assert seen["nice"] == 2  # the nice level was kept, not reset to 0


@pytest.mark.parametrize("value", ["0.05", "-1", "101"])
def test_a_slice_the_kernel_cannot_take_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigurationError, match="CONNECTOR_SERVER__CPU_SLICE_MS"):
        load_settings({"CONNECTOR_SERVER__CPU_SLICE_MS": value})


def test_the_default_slice_is_the_kernels_shortest_and_zero_is_allowed() -> None:
    assert load_settings({}).server.cpu_slice_ms == 0.1
    assert load_settings({"CONNECTOR_SERVER__CPU_SLICE_MS": "0"}).server.cpu_slice_ms == 0
