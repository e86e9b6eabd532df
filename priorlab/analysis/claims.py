"""Who may run a run: the claim rule, in one SQL statement every store backend applies.

Two sweeps on one store may share runs. Each driver claims a run before its trial writes a
row, as an *owner* (`"host:pid:token"`, see `owner_id`) with a *lease*: the claim holds until
`lease_until`, and the owner's writer renews it every `LEASE_S / 4` seconds while it lives
(`Lease`). A claim is granted when the run is

- pending, error, interrupted, diverged or pruned (nobody is running it);
- `done` only with `force` (`--force` reruns a finished run);
- `running` only when the claim is this owner's own, has no owner (a store from before
  schema v3), its lease ran out (its driver died on another machine, or stopped renewing), or
  its owner is a process of this machine that no longer exists (a killed driver's claim is
  reclaimable at once, as before leases).

So a run another live sweep is running is never taken over, not even with `--force`: the trial
that wanted it waits until it is final (then skips it) or its claim lapses (then runs it).
The test and the takeover are one conditional UPDATE, so no interleaving of writers can reset
a run twice. Writes that finish a run are fenced by the owner (`FENCE`): a driver that lost its
claim cannot overwrite its successor's result.

Lease vs owner liveness: liveness alone cannot be checked across machines (a PostgreSQL store
is shared by drivers on many hosts), and a lease alone would keep a killed driver's runs
blocked for `LEASE_S`; the rule takes both, liveness only where it can be known (same host).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

# How long a claim holds without renewal. A writer renews every LEASE_S / 4; a run held by a
# driver that died on another machine is reclaimable this long after its last renewal.
LEASE_S = float(os.environ.get("PRIORLAB_LEASE_S", "120"))

# Parameters (named, so a PostgreSQL port only changes `:name` to `%(name)s`):
# run_id, node, owner, now, lease_until, force (0/1), dead (an owner known to be dead, or NULL).
CLAIM_SQL = """
UPDATE runs SET status = 'running', node = :node, owner = :owner, lease_until = :lease_until,
                started_at = :now, finished_at = NULL, error = NULL, summary = NULL,
                sent_metrics = NULL, sent_artifacts = NULL, attempts = attempts + 1
WHERE run_id = :run_id AND (
    status NOT IN ('done', 'running')
    OR (status = 'done' AND :force = 1)
    OR (status = 'running' AND (owner IS NULL OR owner = :owner OR owner = CAST(:dead AS TEXT)
                                OR lease_until IS NULL OR lease_until < :now)))
"""

# Renew every claim of one owner: params owner, lease_until.
RENEW_SQL = "UPDATE runs SET lease_until = :lease_until WHERE owner = :owner AND status = 'running'"

# A condition on `runs` that holds when `:owner` may still write the run's final status: its own
# claim, or a claim-less run (written by a process that claims nothing, e.g. an old tool).
FENCE = "(CAST(:owner AS TEXT) IS NULL OR owner IS NULL OR owner = :owner)"  # typed: PostgreSQL's NULL

# Runs `:owner` may mark unfinished: its own, claim-less ones, and stale claims (a lapsed lease,
# or an owner in the JSON list `:dead`): a killed driver's runs are this sweep's to call
# interrupted, a live sweep's are not.
STALE_OR_OWN = (f"({FENCE[1:-1]} OR lease_until < :now "
                "OR owner IN (SELECT value FROM json_each(:dead)))")


def owner_id(token: str | None = None) -> str:
    """This process as a claim owner: "host:pid", plus ":token" to tell apart two sweeps one
    process runs (tests do)."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}:{token}" if token else base


def new_owner() -> str:
    """A fresh owner for one sweep driver."""
    return owner_id(uuid.uuid4().hex[:8])


# Owners whose sweep ended in a process that lives on (a notebook, a test): their writer is
# gone, so their claims are as stale as a killed driver's. Passed on to each new writer.
_ENDED: set[str] = set()


def end_owner(owner: str) -> None:
    """`owner`'s sweep is over: a later sweep of this driver process may take its runs at once.
    (One that failed because the store went away could not mark them; they would otherwise
    wait out their lease, LEASE_S, when the same notebook cell runs again.)"""
    _ENDED.add(owner)


def ended_owners() -> list[str]:
    return sorted(_ENDED)


def is_dead(owner: str | None) -> bool:
    """True when `owner` names a process of this machine that no longer exists, or a sweep that
    ended (`end_owner`). An owner on another machine is never called dead here: its lease decides."""
    if not owner:
        return False
    if owner in _ENDED:
        return True
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: alive
        return False
    return False


def claim_params(run_id: str, node: str | None, owner: str, force: bool, holder: str | None,
                 now: float | None = None) -> dict:
    """The parameters of CLAIM_SQL; `holder` is the run's current owner, read just before
    (checked for liveness here; the UPDATE re-tests it, so a stale read cannot grant a claim)."""
    now = time.time() if now is None else now
    return {"run_id": run_id, "node": node, "owner": owner, "now": now, "lease_until": now + LEASE_S,
            "force": int(bool(force)), "dead": holder if is_dead(holder) else None}


def dead_owners(owners) -> str:
    """The JSON list of those of `owners` that `is_dead` (the `:dead` parameter of STALE_OR_OWN)."""
    import json

    return json.dumps(sorted({o for o in owners if is_dead(o)}))


class Lease:
    """Renews `owner`'s claims on `store` every LEASE_S / 4 seconds in a daemon thread, until
    `stop()`. A renewal that fails (a busy or full disk) is retried at the next tick; the lease
    leaves three ticks of slack."""

    def __init__(self, store, owner: str, every: float | None = None):
        self.store, self.owner = store, owner
        self.every = LEASE_S / 4 if every is None else every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{owner}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.store.renew_claims(self.owner)
            except Exception:  # the next tick tries again; the claim has slack for it
                pass

    def stop(self) -> None:
        self._stop.set()
