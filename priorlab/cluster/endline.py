"""What `priorlab dip` says when a run ends: where it stopped, why, and what the answer is.

One line (issue 18 §5): a stopped run names the detector, its reason and its step, and says
that its gap to the oracle is unknown (the run did not go on, so nobody saw the steps after
the stop: the summary leaves every stop_gap_<d> absent rather than report a flattering 0);
a run that went to `iterations` lists where each detector would have stopped and its gap.
"""

from __future__ import annotations

from typing import Any

from priorlab import vocab


def _db(x: Any) -> str:
    return "-" if x is None else f"{x:.2f} dB"


def end_line(summary: dict[str, Any], params: dict[str, Any]) -> str:
    from priorlab.tasks.dip.detectors import DETECTORS

    total, done = params.get("iterations"), summary.get("iterations_done")
    if summary.get("status") == "diverged":
        return f"diverged at step {summary.get('diverged_at')} of {total} (the loss became NaN or infinite)"
    dets = [d for d in DETECTORS if f"stop_step_{d}" in summary]
    ref = summary.get(vocab.REFERENCE) != vocab.NO_REFERENCE
    sigma = summary.get("sigma_est")
    noise = (f"; noise level {sigma:.3g} estimated" if params.get("sigma") == "auto" and sigma is not None
             else "")
    stopped = summary.get("stopped_by")
    if stopped:
        step = summary.get(f"stop_step_{stopped}")
        line = (f"stopped at step {done} of {total} by {stopped} ({DETECTORS[stopped].why}){noise}; "
                f"restored = the output at step {step}")
        if ref:
            line += (f", {_db(summary.get(f'stop_psnr_{stopped}'))} vs the clean image; gap to the oracle: "
                     "unknown (the run did not go on past the stop)")
        return line
    rule = params.get("stop")
    if rule in DETECTORS:
        why = f"{rule} never decided, restored = its best guess, the output at step {summary.get(f'stop_step_{rule}')}"
    else:
        why = "no stop rule, restored = the last output"
    line = f"ran all {done} steps ({why}){noise}"
    if ref and dets:
        where = ", ".join(f"{d} {summary.get(f'stop_step_{d}')} (gap {_db(summary.get(f'stop_gap_{d}'))})" for d in dets)
        line += f"; detectors would stop at: {where}; oracle best {_db(summary.get('best_psnr'))} at step " \
                f"{summary.get('best_step')}"
    elif dets:
        line += "; detectors would stop at: " + ", ".join(f"{d} {summary.get(f'stop_step_{d}')}" for d in dets)
    return line


def blind_warning(params: dict[str, Any]) -> str | None:
    """A run with no clean reference and no stop rule returns overfitted noise: say so first."""
    if params.get("corrupted") is not None and params.get("image") is None and params.get("stop") == "none":
        return ("no clean reference and stop none: restored will be the last output, which has fitted the noise "
                "(leave stop out to stop where the default detector decides)")
    return None
