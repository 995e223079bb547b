"""What every search method returns, and the one base class they share.

A method proposes candidate plans as arrays (cut index or edge mask, weight and activation bit indices) with
what it wants to say about them (`Proposal`); `run` evaluates them with the vectorised evaluator and turns
them into a `SearchResult`: a DataFrame of plans, the method's answer (the lowest-latency plan within the
bounds, or a baseline's own single plan), its front over (latency, accuracy drop) and the method's `info`.
A method's own settings are its constructor's arguments; `run` takes what changes from run to run (budget,
seed).
"""
from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from simulator.evaluate import CostTables, Evaluation, Scenario, evaluate, prefix_mask
from simulator.graph.cuts import prefix_index
from simulator.search.pareto import nondominated

_BREAKDOWN = ("edge_s", "transfer_s", "cloud_s")


@dataclass(frozen=True)
class Plan:
    """One split plan with its figures (SI units): which layers run on the edge (and the cut index when they are
    a prefix), their weight and activation bits (weight bits None for a layer without weights), the latency and
    its breakdown, the predicted accuracy (the bound's end of its interval, the drop from float, the expected value
    and the interval), edge memory and energy, the payload and what it takes on the wire, and whether it meets
    every bound. Its fields, in order, are the plan columns of every table (`PLAN_COLUMNS`)."""

    method: str
    model: str
    cut_index: int | None
    edge_layers: list[str]
    latency_s: float
    edge_s: float
    transfer_s: float
    cloud_s: float
    accuracy: float
    accuracy_drop: float
    edge_memory_bytes: float
    edge_energy_j: float
    payload_bytes: float
    wire_bytes: float
    weight_bits: list[int | None]
    activation_bits: list[int]
    feasible: bool
    accuracy_expected: float
    accuracy_low: float
    accuracy_high: float

    def to_json(self) -> dict[str, Any]:
        """DESIGN's `plan` JSON: the fields with the latency breakdown nested under `breakdown`."""
        out = {k: v for k, v in vars(self).items() if k not in _BREAKDOWN}
        out["breakdown"] = {k: getattr(self, k) for k in _BREAKDOWN}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        """The plan of `to_json`'s output (a `breakdown` mapping, or its three keys at the top level)."""
        flat = {**data, **(data.get("breakdown") or {})}
        return cls.from_row(flat)

    @classmethod
    def from_row(cls, row: Any) -> Plan:
        """The plan of a plans-table row (a Series or mapping with every `PLAN_COLUMNS` key), in plain Python
        values."""
        cut = row["cut_index"]
        return cls(method=str(row["method"]), model=str(row["model"]),
                   cut_index=None if cut is None or pd.isna(cut) else int(cut),
                   edge_layers=[str(n) for n in row["edge_layers"]],
                   weight_bits=[None if b is None or pd.isna(b) else int(b) for b in row["weight_bits"]],
                   activation_bits=[int(b) for b in row["activation_bits"]], feasible=bool(row["feasible"]),
                   **{k: float(row[k]) for k in _FIGURES})


PLAN_COLUMNS = tuple(f.name for f in fields(Plan))
_FIGURES = tuple(f.name for f in fields(Plan) if f.type == "float")

EVALUATE_CELLS = 2**21
"""Plans x layers evaluated in one call of the evaluator (bounded memory: about 16 MB per temporary)."""


@dataclass
class Candidates:
    """Plans as arrays: bit indices (plans, layers) into tables.bits, and a cut index or an edge mask each."""

    weight_bits: np.ndarray
    activation_bits: np.ndarray
    cut: np.ndarray | None = None
    edge_mask: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.weight_bits)

    def mask(self, layers: int) -> np.ndarray:
        """(plans, layers) bool: which layers each plan runs on the edge."""
        if self.edge_mask is not None:
            return self.edge_mask
        if self.cut is None:
            raise ValueError("Candidates: expected a cut index or an edge mask per plan")
        return prefix_mask(self.cut, layers)

    def subset(self, rows: np.ndarray | slice) -> Candidates:
        """The plans at `rows` (indices, a bool mask or a slice)."""
        return Candidates(self.weight_bits[rows], self.activation_bits[rows],
                          cut=None if self.cut is None else self.cut[rows],
                          edge_mask=None if self.edge_mask is None else self.edge_mask[rows])

    def evaluate(self, tables: CostTables) -> Evaluation:
        """The evaluator's results for every plan, EVALUATE_CELLS plans x layers at a time: its temporaries
        are (plans, layers) arrays, so a list of 10^5 plans on a network of hundreds of layers would need GBs."""
        rows = max(1, EVALUATE_CELLS // max(tables.layers, 1))
        if len(self) <= rows:
            return evaluate(tables, self.weight_bits, self.activation_bits, cut=self.cut, edge_mask=self.edge_mask)
        parts = [self.subset(slice(start, start + rows)).evaluate(tables) for start in range(0, len(self), rows)]
        return Evaluation(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Evaluation)))

    @staticmethod
    def concat(parts: list[Candidates], layers: int) -> Candidates:
        parts = [p for p in parts if len(p)]
        if all(p.edge_mask is None for p in parts):
            return Candidates(np.concatenate([p.weight_bits for p in parts]),
                              np.concatenate([p.activation_bits for p in parts]),
                              cut=np.concatenate([p.cut for p in parts]))
        return Candidates(np.concatenate([p.weight_bits for p in parts]),
                          np.concatenate([p.activation_bits for p in parts]),
                          edge_mask=np.concatenate([p.mask(layers) for p in parts]))


@dataclass
class Proposal:
    """What `SearchMethod.propose` returns: the plans a method found and what it reports about its search
    (`SearchResult.info`, e.g. Auto-Split's candidate splits, the exact front's epsilon)."""

    candidates: Candidates
    info: dict = field(default_factory=dict)


@dataclass
class SearchResult:
    """A method's run: its plans (its fronts, answer and a sample of the rest), its answer (None when no plan
    meets the bounds), its front over (latency, accuracy drop) and that of its plans that meet every bound (the
    rows of `plans`, fastest first), seconds spent, plans evaluated and its `info`."""

    method: str
    plans: pd.DataFrame
    plan: Plan | None
    front: pd.DataFrame
    feasible_front: pd.DataFrame
    elapsed_s: float
    evaluations: int
    info: dict = field(default_factory=dict)

    @property
    def best(self) -> dict | None:
        """The answer as DESIGN's `plan` JSON (None when there is none)."""
        return None if self.plan is None else self.plan.to_json()


class SearchMethod(abc.ABC):
    """A way of choosing plans. `single_answer` methods (the baselines) report their one plan even when it
    breaks the bounds; the others report the lowest-latency plan that meets them.

    A subclass sets `name` and implements `propose`; `run` (evaluation, the answer, the front) is shared.
    Register it with `simulator.search.register` to make it known by name to `run_method`, the experiment
    YAML and the plots."""

    name: str
    single_answer: bool = False

    @abc.abstractmethod
    def propose(self, tables: CostTables, budget: dict, seed: int) -> Proposal:
        """The plans this method finds in `tables` within `budget` (its own keys, e.g. {"trials": N}), seeded
        with `seed`; `run` evaluates them."""

    def run(self, scenario: Scenario, budget: dict | None = None, seed: int = 0) -> SearchResult:
        """Propose, evaluate and summarise: the method's `SearchResult` on `scenario`."""
        tables = scenario.tables
        start = time.perf_counter()
        proposal = self.propose(tables, dict(budget or {}), seed)
        elapsed_s = time.perf_counter() - start
        candidates = proposal.candidates
        return result_from(self.name, tables, candidates, candidates.evaluate(tables), elapsed_s,
                           single_answer=self.single_answer, info=proposal.info, seed=seed)


def result_from(name: str, tables: CostTables, candidates: Candidates, ev: Evaluation, elapsed_s: float,
                single_answer: bool = False, info: dict | None = None, evaluations: int | None = None,
                sample: int = 1000, seed: int = 0) -> SearchResult:
    """A SearchResult from evaluated candidates. Only the front, the answer and a random sample of at most
    `sample` other plans become DataFrame rows (the evaluation arrays can hold millions of plans)."""
    n = len(candidates)
    objectives = np.column_stack([ev.latency_s, ev.accuracy_drop])
    on_front = nondominated(objectives) if n else np.zeros(0, bool)
    # the front of the feasible plans too: what a reader compares against the bounds
    feasible = np.flatnonzero(ev.feasible)
    on_feasible_front = np.zeros(n, bool)
    on_feasible_front[feasible[nondominated(objectives[feasible])]] = True
    keep = on_front | on_feasible_front
    if single_answer:
        answer = 0 if n else None
    else:
        answer = int(feasible[np.argmin(ev.latency_s[feasible])]) if len(feasible) else None
    if answer is not None:
        keep[answer] = True
    rest = np.flatnonzero(~keep)
    if len(rest) > sample:
        rest = np.random.default_rng(seed).choice(rest, sample, replace=False)
    keep[rest] = True
    rows = np.flatnonzero(keep)
    plans = plans_frame(name, tables, candidates, ev, rows)
    plans["on_front"] = on_front[rows]
    best = Plan.from_row(plans.iloc[int(np.searchsorted(rows, answer))]) if answer is not None else None
    front = plans[plans["on_front"]].sort_values("latency_s").reset_index(drop=True)
    feasible_front = plans[on_feasible_front[rows]].sort_values(["latency_s", "accuracy_drop"], kind="stable")
    info = dict(info or {})
    outside = ~ev.inside_envelope
    if not tables.scenario.extrapolate and outside.any():
        # what the accuracy proxy's evidence envelope kept out: every plan outside it, and those of them that
        # the memory and accuracy bounds alone would have admitted
        admitted = (ev.edge_memory_bytes <= tables.scenario.edge_memory_bytes) & (
            ev.accuracy_drop <= tables.scenario.max_accuracy_drop + 1e-9)
        info["outside_envelope"] = int(outside.sum())
        info["excluded_by_envelope"] = int((outside & admitted).sum())
    return SearchResult(name, plans, best, front, feasible_front.reset_index(drop=True), elapsed_s,
                        evaluations if evaluations is not None else n, info)


def plans_frame(name: str, tables: CostTables, c: Candidates, ev: Evaluation,
                rows: np.ndarray | None = None) -> pd.DataFrame:
    """One row per plan (those in `rows`, default all) with DESIGN's plan keys; bit lists aligned with
    `edge_layers` (weight bits None for a layer without weights)."""
    graph = tables.scenario.graph
    rows = np.arange(len(c)) if rows is None else np.asarray(rows)
    masks = c.mask(tables.layers)
    bits = tables.bits
    records = []
    for p in rows:
        edge = np.flatnonzero(masks[p])
        names = [tables.names[i] for i in edge]
        cut_index = len(edge) if c.edge_mask is None else prefix_index(graph, names)
        records.append({
            "method": name, "model": graph.name, "cut_index": cut_index, "edge_layers": names,
            "weight_bits": [int(bits[c.weight_bits[p, i]]) if tables.has_weights[i] else None for i in edge],
            "activation_bits": [int(bits[c.activation_bits[p, i]]) for i in edge],
        })
    frame = pd.DataFrame(records, columns=["method", "model", "cut_index", "edge_layers", "weight_bits",
                                           "activation_bits"])
    for key in ("latency_s", "edge_s", "transfer_s", "cloud_s", "accuracy", "accuracy_drop", "accuracy_expected",
                "accuracy_low", "accuracy_high", "edge_memory_bytes", "edge_energy_j", "payload_bytes", "wire_bytes",
                "feasible"):
        frame[key] = getattr(ev, key)[rows]
    frame["cut_index"] = frame["cut_index"].astype("Int64")
    return frame[list(PLAN_COLUMNS)]


def predicted_column(plans: pd.DataFrame) -> str:
    """The central prediction's column of a plans table: `accuracy_expected` where the plans carry an interval
    (their `accuracy` is then the end of the interval the bound applies to), else `accuracy`."""
    if "accuracy_expected" in plans and plans["accuracy_expected"].notna().any():
        return "accuracy_expected"
    return "accuracy"


def uniform(tables: CostTables, bits: int, count: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(weight, activation) index arrays with every layer at `bits`."""
    index = int(np.flatnonzero(tables.bits == bits)[0])
    full = np.full((count, tables.layers), index)
    return full, full.copy()
