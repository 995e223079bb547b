"""Fronts verified by measurement: when the experiment's model is an .onnx file with labelled data
(`accuracy.data`), the plans the methods return are run, fake-quantized, with onnxruntime.

Per cell, in this order, until `accuracy.max_measured_plans` distinct bit assignments have been measured:
1. every method's choice by the proxy;
2. each method's choice by measurement: the fastest plan on its memory front (within the edge memory,
   non-dominated over latency and predicted drop) whose measured drop meets the bound. The front, ordered by
   latency, is bisected on the measurement (along a front, measured accuracy falls as plans get faster, nearly
   monotonically), then the plans just faster than the one found are tried until one misses the bound: about
   log2(front size) + 2 measurements per method, whatever the proxy's bias. The prediction is not used to skip
   plans: a biased proxy or a narrow interval would hide the plans measurement is there to find;
3. the fronts: the memory fronts of all methods together, spread evenly over latency, for the plot and for
   predicted-against-measured statistics (Spearman, mean absolute error, interval coverage).
A measurement quantizes the plan's edge layers at its bits and leaves the cloud layers in float (the
arithmetic of `autosplit accuracy --data`), on the whole data file; results are cached by bit assignment.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from simulator.accuracy.distortion import FLOAT_BITS
from simulator.experiment.outcomes import MeasuredVerdict, MethodOutcome
from simulator.experiment.scenario import accuracy_meter, measured_proxy, meter_key
from simulator.experiment.schema import Experiment
from simulator.json_values import json_safe
from simulator.search.base import Plan, predicted_column
from simulator.search.pareto import nondominated

FRONT_ROLES = ("chosen", "front")
_MEASUREMENTS: dict[tuple, dict[tuple, float]] = {}  # per meter (scenario.meter_key): bit assignment -> top-1
TOLERANCE_POINTS = 1e-9
CAP_SPENT = -1  # _fastest_passing: the measurement cap ran out before anything could be said


# --- one measurement --------------------------------------------------------------------------------------
def bit_assignment(edge_layers, weight_bits, activation_bits) -> tuple:
    """The quantized tensors of a plan as a hashable key: ((layer, weight bits, activation bits), ...) for the
    edge layers below float (`FLOAT_BITS`); weight bits of a layer without weights (None) count as float."""
    key = []
    for name, w, a in zip(_as_list(edge_layers), _as_list(weight_bits), _as_list(activation_bits)):
        w = FLOAT_BITS if w is None or _nan(w) else min(int(w), FLOAT_BITS)
        a = FLOAT_BITS if a is None or _nan(a) else min(int(a), FLOAT_BITS)
        if w < FLOAT_BITS or a < FLOAT_BITS:
            key.append((str(name), w, a))
    return tuple(key)


def measure_assignment(meter, key: tuple) -> float:
    """Top-1 (percent) of `meter`'s model with the layers in `key` at their bits and every other layer float."""
    weights = {name: w for name, w, _ in key if w < FLOAT_BITS and name in meter.weight_layers}
    activations = {name: a for name, _, a in key if a < FLOAT_BITS}
    return float(meter.accuracy(weight_bits=weights, activation_bits=activations))


class PlanMeasurer:
    """Measures plans (`Plan`s, or rows with edge_layers, weight_bits, activation_bits), each bit assignment once,
    at most `cap` distinct assignments; `measured(plan)` is None once the cap is spent."""

    def __init__(self, meter, cap: int, shared: dict[tuple, float] | None = None) -> None:
        self.meter = meter
        self.cap = cap
        self.results: dict[tuple, float] = {}
        self.refused: set[tuple] = set()
        self.shared = {} if shared is None else shared  # measurements of the same meter in earlier cells

    def key(self, plan) -> tuple:
        if isinstance(plan, Plan):
            return bit_assignment(plan.edge_layers, plan.weight_bits, plan.activation_bits)
        return bit_assignment(plan["edge_layers"], plan["weight_bits"], plan["activation_bits"])

    def measured(self, plan) -> float | None:
        key = self.key(plan)
        if key not in self.results:
            if len(self.results) >= self.cap:
                self.refused.add(key)
                return None
            if key not in self.shared:
                self.shared[key] = measure_assignment(self.meter, key)
            self.results[key] = self.shared[key]
        return self.results[key]

    def known(self, plan) -> float:
        """The measurement of `plan` if it was made, NaN otherwise (never measures)."""
        return self.results.get(self.key(plan), math.nan)


# --- statistics ---------------------------------------------------------------------------------------------
def prediction_agreement(predicted, measured, low=None, high=None) -> dict:
    """How well predictions match measurements (accuracies in percent): `plans` compared, `spearman` (rank
    correlation, ties averaged; NaN when fewer than 3 plans or a side is constant), `mae_points` (mean absolute
    error in percentage points) and `coverage` (the fraction of measurements inside [low, high]; None without an
    interval)."""
    predicted = np.asarray(predicted, dtype=float)
    measured = np.asarray(measured, dtype=float)
    ok = np.isfinite(predicted) & np.isfinite(measured)
    predicted, measured = predicted[ok], measured[ok]
    out: dict[str, Any] = {"plans": int(ok.sum()), "spearman": math.nan, "mae_points": math.nan, "coverage": None}
    if ok.sum() == 0:
        return out
    out["mae_points"] = float(np.mean(np.abs(predicted - measured)))
    if ok.sum() >= 3:
        ranks_p = pd.Series(predicted).rank().to_numpy()
        ranks_m = pd.Series(measured).rank().to_numpy()
        if np.std(ranks_p) > 0 and np.std(ranks_m) > 0:
            out["spearman"] = float(np.corrcoef(ranks_p, ranks_m)[0, 1])
    if low is not None and high is not None:
        low = np.asarray(low, dtype=float)[ok]
        high = np.asarray(high, dtype=float)[ok]
        inside = (measured >= low - TOLERANCE_POINTS) & (measured <= high + TOLERANCE_POINTS)
        out["coverage"] = float(np.mean(inside))
    return out


def agreement_of_table(table: pd.DataFrame) -> dict:
    """`prediction_agreement` over a table's central prediction (`predicted_column`) and `measured_accuracy`
    (and its interval columns `accuracy_low` / `accuracy_high` where it has them)."""
    if table is None or table.empty:
        return prediction_agreement([], [])
    interval = "accuracy_low" in table and "accuracy_high" in table
    return prediction_agreement(table[predicted_column(table)], table["measured_accuracy"],
                                table["accuracy_low"] if interval else None,
                                table["accuracy_high"] if interval else None)


# --- a cell ---------------------------------------------------------------------------------------------------
@dataclass
class CellMeasurement:
    """What was measured in one cell: `table` has one row per measured plan and role (method, role: chosen (by
    measurement) / proxy choice (where the proxy chose another plan) / front), `front` the plans of the combined memory front that were measured, and
    `agreement` the statistics over `front`."""

    fp_accuracy: float
    max_accuracy_drop: float
    cap: int
    measured: int
    refused: int
    proxy_source: str  # how the proxy's sensitivities were obtained (e.g. 'fitted to 168 single-layer ...')
    table: pd.DataFrame
    front: pd.DataFrame
    agreement: dict
    front_plans: int
    repicked: dict[str, str] = field(default_factory=dict)  # method -> what measurement changed, in words


def measure_cell(config: Experiment, outcomes: dict[str, MethodOutcome]) -> CellMeasurement:
    """Measure the plans of one cell's methods (see the module docstring), re-pick each method's plan by measured
    accuracy, and add `measured_accuracy` / `measured_drop` to the methods' plans, fronts and choices in place."""
    meter = accuracy_meter(config)
    proxy = measured_proxy(config)
    measurer = PlanMeasurer(meter, config.accuracy.max_measured_plans,
                            _MEASUREMENTS.setdefault(meter_key(config), {}))
    fp = float(meter.fp_accuracy)
    bound = float(config.constraints.max_accuracy_drop)
    memory_limit = float(config.constraints.edge_memory_bytes)
    rows: list[dict] = []

    # 1. every method's choice by the proxy
    proxy_choices = {name: outcome.best for name, outcome in outcomes.items()}
    for best in proxy_choices.values():
        if best is not None:
            measurer.measured(best)
    # 2. each method's choice by measurement ("chosen"; the proxy's own, where it differs, as "proxy choice")
    repicked: dict[str, str] = {}
    for name, outcome in outcomes.items():
        note = _repick(name, outcome, measurer, fp, bound, memory_limit)
        if note:
            repicked[name] = note
        proxy_best, best, verdict = proxy_choices[name], outcome.best, outcome.measured
        if best is not None:
            rows.append(_row(name, "chosen", best.to_json(), verdict.measured_accuracy if verdict else None, fp))
        if proxy_best is not None and (best is None or measurer.key(best) != measurer.key(proxy_best)):
            rows.append(_row(name, "proxy choice", proxy_best.to_json(), measurer.known(proxy_best), fp))
    # 3. the fronts, spread over latency
    front = _combined_memory_front(outcomes, memory_limit)
    if len(front):
        order = _spread(len(front), max(0, measurer.cap - len(measurer.results)), [
            i for i in range(len(front)) if measurer.key(front.iloc[i]) in measurer.results])
        for i in order:
            measurer.measured(front.iloc[i])
        front = front.copy()
        front["measured_accuracy"] = [measurer.known(front.iloc[i]) for i in range(len(front))]
        front_plans = len(front)
        front = front[np.isfinite(front["measured_accuracy"].to_numpy(float))].reset_index(drop=True)
        front["measured_drop"] = fp - front["measured_accuracy"]
        for _, plan in front.iterrows():
            rows.append(_row(plan["method"], "front", plan, plan["measured_accuracy"], fp))
    else:
        front_plans = 0
    # measured values into every table the methods carry
    for outcome in outcomes.values():
        outcome.plans = _with_measurements(outcome.plans, measurer, fp)
        outcome.front = _with_measurements(outcome.front, measurer, fp)
    table = pd.DataFrame(rows)
    return CellMeasurement(fp_accuracy=fp, max_accuracy_drop=bound, cap=measurer.cap, measured=len(measurer.results),
                           refused=len(measurer.refused),
                           proxy_source=proxy.sensitivity_source,
                           table=table, front=front, agreement=agreement_of_table(front), front_plans=front_plans,
                           repicked=repicked)


def _repick(name: str, outcome: MethodOutcome, measurer: PlanMeasurer, fp: float, bound: float,
            memory_limit: float) -> str:
    """Replace `outcome.best` by the fastest plan of the method's memory front whose measured drop meets the
    bound; returns a sentence when the choice changed or none was found, '' otherwise."""
    proxy_best = outcome.best
    plans = outcome.plans
    fits = plans["edge_memory_bytes"].to_numpy(float) <= memory_limit * (1 + 1e-12)
    candidates = plans[plans["kept_as"].isin(FRONT_ROLES).to_numpy() & fits]
    candidates = candidates.sort_values(["latency_s", "accuracy_drop"], kind="stable")
    index = _fastest_passing(candidates, measurer, fp, bound)
    proxy_measured = measurer.known(proxy_best) if proxy_best is not None else math.nan
    if index == CAP_SPENT:
        if proxy_best is not None:
            _judge(outcome, proxy_best, proxy_measured, fp, bound, memory_limit, "proxy (measurement cap reached)")
        return "the measurement cap was reached before its front could be searched; the proxy's choice is kept"
    chosen = None if index is None else candidates.iloc[index]
    if chosen is None:
        if proxy_best is None:
            return ""
        if len(plans) <= 1:  # a single-answer method (cloud, edge-uN): its plan stays, judged by measurement
            _judge(outcome, proxy_best, proxy_measured, fp, bound, memory_limit, "method (single answer)")
            missed = fp - proxy_measured > bound + TOLERANCE_POINTS
            return f"its only plan misses the accuracy bound when measured ({_pts(fp - proxy_measured)} drop)" \
                if missed else ""
        outcome.best = None
        _relabel(outcome, None, proxy_best)
        return (f"no plan of its front meets the bound when measured (the proxy's choice measures "
                f"{_pts(fp - proxy_measured)} drop)")
    _judge(outcome, Plan.from_row(chosen), measurer.known(chosen), fp, bound, memory_limit, "measured accuracy",
           on_front=bool(chosen["on_front"]) if "on_front" in chosen else None, proxy=proxy_best,
           proxy_measured=proxy_measured)
    best, verdict = outcome.best, outcome.measured
    assert best is not None and verdict is not None  # just judged
    _relabel(outcome, chosen.name, proxy_best)
    if proxy_best is None:
        return (f"the proxy found no plan within the bound; measurement found one at "
                f"{_ms(best.latency_s)}")
    if measurer.key(proxy_best) == measurer.key(chosen):
        return ""
    return (f"the proxy's choice ({_ms(proxy_best.latency_s)}, predicted drop "
            f"{_pts(proxy_best.accuracy_drop)}) measures {_pts(fp - proxy_measured)} drop; measurement chose "
            f"{_ms(best.latency_s)} (predicted drop {_pts(best.accuracy_drop)}, measured "
            f"{_pts(verdict.measured_drop)})")


def _judge(outcome: MethodOutcome, plan: Plan, measured: float, fp: float, bound: float, memory_limit: float,
           chosen_by: str, on_front: bool | None = None, proxy: Plan | None = None,
           proxy_measured: float = math.nan) -> None:
    """Make `plan` the method's answer, `feasible` judged on its measurement (on its prediction when the cap left
    it unmeasured) and within the edge memory, with how it was chosen (`proxy`: the proxy's choice it replaces)."""
    fits = plan.edge_memory_bytes <= memory_limit * (1 + 1e-12)
    ok = fp - measured <= bound + TOLERANCE_POINTS if np.isfinite(measured) else plan.feasible
    outcome.best = replace(plan, feasible=bool(fits and ok))
    outcome.measured = MeasuredVerdict(
        measured_accuracy=float(measured), measured_drop=float(fp - measured), predicted_feasible=plan.feasible,
        chosen_by=chosen_by, on_front=on_front,
        proxy_choice_latency_s=None if proxy is None else proxy.latency_s,
        proxy_choice_accuracy=None if proxy is None else proxy.accuracy,
        proxy_choice_measured_accuracy=None if proxy is None else proxy_measured)


def _fastest_passing(candidates: pd.DataFrame, measurer: PlanMeasurer, fp: float, bound: float) -> int | None:
    """Position in `candidates` (fastest first) of the fastest plan found whose measured drop meets `bound`:
    bisection for the first passing plan (passing assumed monotone in the position), then a walk towards
    faster plans while they pass too. None when none passes; CAP_SPENT when the measurement cap ran out before
    the slowest plan was measured."""

    def passes(i: int) -> bool | None:
        value = measurer.measured(candidates.iloc[i])
        return None if value is None else fp - value <= bound + TOLERANCE_POINTS

    if candidates.empty:
        return None
    last = len(candidates) - 1
    verdict = passes(last)
    if verdict is None:
        return CAP_SPENT
    if not verdict:
        return None
    low, high = 0, last  # invariant: `high` passes; every position below `low` was found to fail
    while low < high:
        middle = (low + high) // 2
        verdict = passes(middle)
        if verdict is None:
            break
        if verdict:
            high = middle
        else:
            low = middle + 1
    while high > 0 and passes(high - 1):  # a non-monotone stretch: faster plans that pass too
        high -= 1
    return high


def _relabel(outcome: MethodOutcome, chosen_index, proxy_best: Plan | None) -> None:
    """kept_as: `chosen` for the measured choice, `proxy choice` for the proxy's when they differ."""
    plans = outcome.plans.copy()
    kept_as = plans["kept_as"].astype(object).to_numpy().copy()
    old = np.flatnonzero(kept_as == "chosen")
    kept_as[old] = "proxy choice"
    if chosen_index is not None:
        kept_as[chosen_index] = "chosen"
    plans["kept_as"] = kept_as
    outcome.plans = plans


def _with_measurements(frame: pd.DataFrame, measurer: PlanMeasurer, fp: float) -> pd.DataFrame:
    """`frame` with measured_accuracy and measured_drop (NaN where not measured) just after accuracy_drop."""
    if frame is None or frame.empty or "edge_layers" not in frame:
        return frame
    frame = frame.drop(columns=[c for c in ("measured_accuracy", "measured_drop") if c in frame])
    measured = np.array([measurer.known(frame.iloc[i]) for i in range(len(frame))], dtype=float)
    position = list(frame.columns).index("accuracy_drop") + 1 if "accuracy_drop" in frame else len(frame.columns)
    frame.insert(position, "measured_accuracy", measured)
    frame.insert(position + 1, "measured_drop", fp - measured)
    return frame


def _combined_memory_front(outcomes: dict[str, MethodOutcome], memory_limit: float) -> pd.DataFrame:
    """Non-dominated plans over (latency, predicted drop) of all methods together, within the edge memory, one
    row per bit assignment (credited to the first method in run order), fastest first."""
    frames = []
    for outcome in outcomes.values():
        plans = outcome.plans
        if plans is None or plans.empty:
            continue
        keep = plans["kept_as"].isin(FRONT_ROLES + ("proxy choice",)).to_numpy()
        keep = keep & (plans["edge_memory_bytes"].to_numpy(float) <= memory_limit * (1 + 1e-12))
        frames.append(plans[keep])
    if not frames:
        return pd.DataFrame()
    union = pd.concat(frames, ignore_index=True)
    mask = np.asarray(nondominated(union[["latency_s", "accuracy_drop"]].to_numpy(dtype=float)), dtype=bool)
    front = union[mask].sort_values(["latency_s", "accuracy_drop"], kind="stable")
    keys = [bit_assignment(r["edge_layers"], r["weight_bits"], r["activation_bits"]) for _, r in front.iterrows()]
    front = front[~pd.Series(keys, index=front.index).duplicated().to_numpy()]
    return front.drop(columns=[c for c in ("measured_accuracy", "measured_drop") if c in front]).reset_index(drop=True)


def _spread(count: int, room: int, done: list[int]) -> list[int]:
    """Indices of `count` rows (fastest first) to measure with `room` measurements left: all of them when they
    fit, else `room` of them spread evenly, the fastest and the slowest included; `done` ones are free."""
    todo = [i for i in range(count) if i not in set(done)]
    if len(todo) <= room:
        return todo
    if room <= 0:
        return []
    picks = np.unique(np.round(np.linspace(0, len(todo) - 1, room)).astype(int))
    return [todo[i] for i in picks]


def _row(method: str, role: str, plan, measured, fp: float) -> dict:
    row: dict[str, Any] = {"method": method, "role": role}
    for key in ("cut_index", "latency_s", "accuracy", "accuracy_expected", "accuracy_low", "accuracy_high",
                "accuracy_drop",
                "edge_memory_bytes", "feasible"):
        if key in plan and plan[key] is not None:
            row[key] = json_safe(plan[key])
    value = math.nan if measured is None else float(measured)
    row["measured_accuracy"] = value
    row["measured_drop"] = fp - value
    for key in ("edge_layers", "weight_bits", "activation_bits"):
        row[key] = json_safe(plan[key]) if key in plan else None
    return row


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return list(json.loads(value))
    return list(value)


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _ms(seconds) -> str:
    return f"{float(seconds) * 1e3:.3f} ms"


def _pts(value) -> str:
    return "-" if value is None or not np.isfinite(float(value)) else f"{float(value):.2f} pt"
