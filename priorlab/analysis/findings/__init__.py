"""The seed report's claims, checked against the stored runs.

`claims` is the engine (a `Claim` record, the matched check, the verdict, the result row);
`dip` and `stylegan` hold the report's claims about each part of the study. `evaluate(runs)`
checks them all: one row per claim, `COLUMNS`.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from priorlab.analysis.findings import claims as _engine
from priorlab.analysis.findings.claims import (
    ALPHA, COLUMNS, CONTRADICTED, MIN_PAIRS, NOT_ENOUGH, SUPPORTED, Claim, Judgement, assess, describe_filter,
    evaluate_paired, judge, make_row, resolve_metric, select,
)
from priorlab.analysis.findings.dip import DIP_CLAIMS, SEED_ARCHS
from priorlab.analysis.findings.stylegan import STYLEGAN_CLAIMS
from priorlab.analysis.stylegan import IDENTITY_SSIM, MIN_MONOTONE

CLAIMS: list[Claim] = [*DIP_CLAIMS, *STYLEGAN_CLAIMS]


def evaluate(runs: pd.DataFrame, claims: Sequence[Claim] | None = None) -> pd.DataFrame:
    """One row per claim (all of `CLAIMS` unless told): `COLUMNS`, with the numbers, a verdict
    and a readable explanation (see `claims.evaluate`)."""
    return _engine.evaluate(runs, CLAIMS if claims is None else claims)


__all__ = ["ALPHA", "CLAIMS", "COLUMNS", "CONTRADICTED", "DIP_CLAIMS", "IDENTITY_SSIM", "MIN_MONOTONE", "MIN_PAIRS",
           "NOT_ENOUGH", "SEED_ARCHS", "STYLEGAN_CLAIMS", "SUPPORTED", "Claim", "Judgement", "assess",
           "describe_filter", "evaluate", "evaluate_paired", "judge", "make_row", "resolve_metric", "select"]
