"""Subprocesses that cannot hang a test session.

`subprocess.run(..., capture_output=True, timeout=...)` kills only its direct child on timeout,
then waits for the pipes to close; a Ray driver's raylet and workers inherit those pipes and
keep them open, so the wait never ends (CI sat there until its 90 minutes ran out). Here the
child leads its own process group, output goes to files, and a timeout kills the whole group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile


def run(cmd: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """Like `subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)`,
    but on timeout every process the child started is killed too, and TimeoutExpired carries
    what the child had printed."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, start_new_session=True, **kwargs)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)  # before reading: the group may still be writing
            out.seek(0), err.seek(0)
            raise subprocess.TimeoutExpired(cmd, timeout, output=out.read()[-5000:], stderr=err.read()[-5000:])
        kill_group(proc)  # what the child left behind (Ray's daemons) goes with it
        out.seek(0), err.seek(0)
        return subprocess.CompletedProcess(cmd, code, out.read(), err.read())


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
