"""Starting Ray on this machine, or joining a cluster."""

from __future__ import annotations

import logging
import os
from typing import Any

import ray

from priorlab.tasks.plugins import is_plugin, module_root

# The logger of Ray's "Token authentication is enabled for this Ray cluster" warning.
TOKEN_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"

PLUGIN_FIELDS = ("arch", "loss", "classifier")  # parameters that may name user code


def plugin_modules(trials: list[dict[str, Any]]) -> list[str]:
    """Folders/files of the user code the trials name (`package.module:function`), to ship to
    every node with Ray's runtime_env; priorlab and installed packages are not shipped."""
    roots = set()
    for t in trials:
        for field in PLUGIN_FIELDS:
            value = t["params"].get(field)
            spec = value.get("source") if isinstance(value, dict) else value  # a classifier's source
            if is_plugin(spec) and not spec.startswith(("torchscript:", "torchvision:", "builtin:")):
                root = module_root(spec.removeprefix("python:").split(":")[0])
                if root is not None:
                    roots.add(str(root))
    return sorted(roots)


def connect(address: str | None = None, num_cpus: int | None = None, py_modules: list[str] | None = None) -> str:
    """Join `address` (or `RAY_ADDRESS`); without either, start Ray embedded here.

    Returns a one-line description for the user. Token authentication (on by default since
    Ray 2.60) is left on: joining a cluster needs its token in `RAY_AUTH_TOKEN` or
    `~/.ray/auth_token`, which the cluster launch files put on every node.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        return "ray: already connected"
    # Trials of many sweeps would otherwise flood the terminal with worker logs.
    common = dict(log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    if py_modules:
        common["runtime_env"] = {"py_modules": list(py_modules)}
    if address:
        ray.init(address=address, **common)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return f"ray: joined {address} ({len(nodes)} nodes, {ray.cluster_resources().get('CPU', 0):g} CPUs, {ray.cluster_resources().get('GPU', 0):g} GPUs)"
    # "local" always starts a new instance; a bare init() would attach to any Ray already
    # running on this machine (another sweep's, a stale test cluster).
    # Ray warns on every start that token auth is on for the new local cluster. It stays on;
    # the warning only tells a user of embedded Ray about a setting they need not touch.
    auth_log = logging.getLogger(TOKEN_AUTH_LOGGER)
    level = auth_log.level
    auth_log.setLevel(logging.ERROR)
    try:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **common)
    finally:
        auth_log.setLevel(level)
    return f"ray: started embedded ({ray.cluster_resources().get('CPU', 0):g} CPUs, {ray.cluster_resources().get('GPU', 0):g} GPUs)"
