"""Sweep progress in the terminal: done, running and failed counts with an ETA."""

from __future__ import annotations

from ray import tune


class ProgressCallback(tune.Callback):
    def __init__(self, total: int, desc: str, unit: str = "run"):
        """`unit`: what one tick counts: a run, or a packed trial (several runs) or a shard."""
        self.total, self.desc, self.unit = total, desc, unit
        self.running = 0
        self.failed = 0
        self._bar = None

    def __getstate__(self):
        # Tune pickles its callbacks with the experiment state; the bar holds a terminal.
        return {**self.__dict__, "_bar": None}

    @property
    def bar(self):
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, unit=getattr(self, "unit", "run"), dynamic_ncols=True, smoothing=0.1)
        return self._bar

    def _refresh(self) -> None:
        self.bar.set_postfix(running=self.running, failed=self.failed, refresh=False)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running += 1
        self._refresh()

    def on_trial_restore(self, iteration, trials, trial, **info):
        self.running += 1
        self._refresh()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.running = max(0, self.running - 1)
        self.bar.update(1)
        self._refresh()

    def on_trial_error(self, iteration, trials, trial, **info):
        self.running = max(0, self.running - 1)
        self.failed += 1
        self.bar.update(1)
        self._refresh()

    def on_trial_recover(self, iteration, trials, trial, **info):
        # A failure Tune will retry: not final, so not counted as failed.
        self.running = max(0, self.running - 1)
        self._refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
