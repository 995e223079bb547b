"""What one search method produced in one sweep cell, as the results directory keeps it (and a checkpoint
stores it): its answer, its front, a capped sample of its plans, what it cost."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from simulator.search.base import Plan


@dataclass(frozen=True)
class MeasuredVerdict:
    """How a method's plan fared when measured (where the model has labelled data): its measured top-1 and drop
    (percent, points; NaN when the cap left it unmeasured), the proxy's verdict on the bounds, how it was chosen,
    whether it lay on the method's front (when chosen from its plans) and, when measurement chose another plan
    than the proxy, the proxy's choice's latency (seconds), predicted and measured accuracy."""

    measured_accuracy: float
    measured_drop: float
    predicted_feasible: bool
    chosen_by: str
    on_front: bool | None = None
    proxy_choice_latency_s: float | None = None
    proxy_choice_accuracy: float | None = None
    proxy_choice_measured_accuracy: float | None = None


@dataclass
class MethodOutcome:
    """What one method produced in one cell, as kept in the results (plans capped, front complete)."""

    method: str
    best: Plan | None          # its answer (after measurement: the plan measurement chose, `feasible` judged so)
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
    measured: MeasuredVerdict | None = None  # how `best` fared when measured (never checkpointed)
