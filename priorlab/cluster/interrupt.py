"""Ctrl-C: one interrupt stops a whole sweep, in any phase, and nothing finished is lost.

Tune's own SIGINT handler only ends the `Tuner.fit` it is inside, stays installed after a fit
that ended normally (so a Ctrl-C between two phases set a stale flag and did nothing), and a
sweep has several fits in a row (StyleGAN shard scoring, then the runs): a Ctrl-C during the
shards ended only that phase and the main phase ran on. So priorlab owns SIGINT for the whole
sweep (`TUNE_DISABLE_SIGINT_HANDLER=1` keeps Tune from replacing the handler):

- before anything is stored (config, files, connecting): the usual KeyboardInterrupt, exit 130;
- once the sweep is under way (`arm()`): the first Ctrl-C sets `requested`; a running fit sees
  it through a Tune `Stopper` (`stop_all`) and stops every trial the way Tune stops trials,
  no later phase starts, and the sweep marks what did not finish `interrupted` and exits 130;
  rerunning the command resumes (done runs and scored shards are kept);
- a second Ctrl-C raises KeyboardInterrupt at once, for a user who will not wait.

Ray's own processes block SIGINT, so a terminal's Ctrl-C reaches only the driver.
"""

from __future__ import annotations

import os
import signal
import threading

from ray import tune

_TUNE_FLAG = "TUNE_DISABLE_SIGINT_HANDLER"


class CtrlC:
    """`with CtrlC() as ctrl_c:` around a sweep; `ctrl_c.requested` is set by the first Ctrl-C."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._armed = False
        self._before = None
        self._flag_before: str | None = None

    def __enter__(self) -> "CtrlC":
        if threading.current_thread() is threading.main_thread():  # signals are the main thread's
            self._before = signal.signal(signal.SIGINT, self._handler)
        self._flag_before = os.environ.get(_TUNE_FLAG)
        os.environ[_TUNE_FLAG] = "1"
        return self

    def __exit__(self, *exc) -> None:
        if self._before is not None:
            signal.signal(signal.SIGINT, self._before)
        if self._flag_before is None:
            os.environ.pop(_TUNE_FLAG, None)
        else:
            os.environ[_TUNE_FLAG] = self._flag_before

    def arm(self) -> None:
        """From now on the first Ctrl-C stops the sweep gracefully (runs are being stored)."""
        self._armed = True

    def _handler(self, signum, frame) -> None:
        if not self._armed or self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()

    def stopper(self) -> tune.Stopper:
        """A Tune stopper that ends every trial of a fit once Ctrl-C was pressed."""
        return _Stop(self.requested)


class _Stop(tune.Stopper):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    # Tune pickles its run config (for Tuner.restore, which priorlab never uses); an Event does not
    # pickle, and a copy in another process would never hear this process's Ctrl-C anyway.
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.event = threading.Event()

    def __call__(self, trial_id: str, result: dict) -> bool:
        return self.event.is_set()

    def stop_all(self) -> bool:
        return self.event.is_set()
