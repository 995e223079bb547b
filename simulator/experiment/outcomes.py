"""What one search method produced in one sweep cell, as the results directory keeps it (and a checkpoint
stores it): its answer, its front, a capped sample of its plans, what it cost."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass
class MethodOutcome:
    """What one method produced in one cell, as kept in the results (plans capped, front complete)."""

    method: str
    best: dict | None
    front: pd.DataFrame        # the method's non-dominated feasible plans over (latency, accuracy drop)
    plans: pd.DataFrame        # its best, its front within memory and a seeded sample of its other plans
                               # (`kept_as`: chosen / front / sample)
    plans_evaluated: int       # rows of result.plans before sampling
    evaluations: int
    elapsed_s: float
    budget: dict
    fingerprint: str
    note: str | None = None    # why the method did not run in this cell (e.g. an edge-uN the edge cannot run)
    guarantee: str = ""        # what the method's answer guarantees (search.describe)
    hypervolume_trace: tuple = ()  # (wall seconds, front hypervolume) as an iterative search went (optuna)
