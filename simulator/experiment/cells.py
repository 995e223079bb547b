"""One sweep cell's work: build its scenario once, run each method (or read the method's checkpoint), keep what
the results need of it (`MethodOutcome`: the answer, the front, a capped sample) and, where the cell's model has
labelled data, measure the plans.

Each (cell, method) outcome is checkpointed under `.checkpoints/` as soon as it is done, with a fingerprint of
what it depends on, so that `--resume` continues a killed run where it stopped and a changed input runs again.
"""
from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from simulator import atomic
from simulator.evaluate import Scenario
from simulator.experiment.measured import CellMeasurement, measure_cell
from simulator.experiment.outcomes import MethodOutcome
from simulator.experiment.scenario import build_scenario
from simulator.experiment.settings import budget_for, fingerprint, method_options, run_options
from simulator.experiment.sweep import Cell
from simulator.experiment.validated import LoadedExperiment
from simulator.search import describe, make_method, skip_note
from simulator.search.pareto import nondominated

CHECKPOINTS = ".checkpoints"
PLAN_COLUMNS = ("method", "cut_index", "edge_layers", "latency_s", "edge_s", "transfer_s", "cloud_s", "accuracy",
                "accuracy_drop", "edge_memory_bytes", "edge_energy_j", "payload_bytes", "wire_bytes", "weight_bits",
                "activation_bits", "feasible")


class Progress(Protocol):
    """What a cell reports its progress to (a tqdm bar, or one line per stage in a log)."""

    def set_description(self, text: str) -> None: ...

    def update(self, count: int = 1) -> None: ...


@dataclass
class CellOutcome:
    """A cell's methods' outcomes, in run order, with what the results need of its scenario."""

    cell: Cell
    layer_names: list[str]
    fp_accuracy: float | None
    outcomes: dict[str, MethodOutcome] = field(default_factory=dict)
    edge_bits: list[int] | None = None  # the bit-widths the edge could use (the preset's when not given)
    measurement: CellMeasurement | None = None  # where the model has labelled data


# --- checkpoints ----------------------------------------------------------------------------------------
def checkpoint_fingerprint(cell: Cell, method: str, budget: dict, seed: int) -> str:
    """What a (cell, method) result depends on: a checkpoint with another fingerprint is run again."""
    return fingerprint(cell.config, ("sweep",), max_plan_rows=cell.config.output.max_plan_rows, method=method,
                       budget=budget, seed=seed)


def checkpoint_path(out_dir: Path, cell: Cell, method: str) -> Path:
    """Where the outcome of `method` in `cell` is checkpointed."""
    return out_dir / CHECKPOINTS / f"cell-{cell.index:04d}" / f"{method}.pkl"


def cell_info_path(out_dir: Path, cell: Cell) -> Path:
    """Where what the results need of a cell's scenario is kept (so that a resumed run need not rebuild it)."""
    return out_dir / CHECKPOINTS / f"cell-{cell.index:04d}" / "cell.json"


def load_checkpoint(path: Path, fingerprint: str) -> MethodOutcome | None:
    """The outcome checkpointed at `path` when it was made from the inputs `fingerprint` names, else None."""
    if not path.is_file():
        return None
    try:
        done = pickle.loads(path.read_bytes())
    except Exception:  # a checkpoint from another version: run again
        return None
    return done if isinstance(done, MethodOutcome) and done.fingerprint == fingerprint else None


def write_checkpoint(path: Path, outcome: MethodOutcome) -> None:
    """Checkpoint `outcome` at `path` (atomically)."""
    atomic.write_bytes(path, pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))


# --- running ----------------------------------------------------------------------------------------------
def run_cell(loaded: LoadedExperiment, cell: Cell, methods: list[str], out_dir: Path, storage: str | None,
             bar: Progress, cell_count: int) -> CellOutcome:
    """Every method's outcome in `cell`, from its checkpoint or run now (and checkpointed); then, where the
    model has labelled data, each method's plan chosen again by measured accuracy."""
    seed = loaded.config.seed
    scenario = None
    cell_info: dict | None = None
    info_path = cell_info_path(out_dir, cell)
    if info_path.is_file():
        cell_info = json.loads(info_path.read_text())
    outcome = CellOutcome(cell=cell, layer_names=[], fp_accuracy=None)
    for method in methods:
        budget = budget_for(loaded, method)
        key = checkpoint_fingerprint(cell, method, budget, seed)
        bar.set_description(f"cell {cell.index + 1}/{cell_count} {method}")
        path = checkpoint_path(out_dir, cell, method)
        done = load_checkpoint(path, key)
        if done is None:
            if scenario is None:
                scenario, cell_info = scenario_and_info(cell)
                atomic.write_text(info_path, json.dumps(cell_info))
            done = run_method_in_cell(method, scenario, cell, budget, seed, storage,
                                      loaded.config.output.max_plan_rows, key)
            write_checkpoint(path, done)
        outcome.outcomes[method] = done
        bar.update(1)
    if cell_info is not None:
        outcome.layer_names = cell_info["layer_names"]
        outcome.fp_accuracy = cell_info["fp_accuracy"]
        outcome.edge_bits = cell_info.get("scenario_edge_bits")
    if cell.config.accuracy.data is not None:
        # fronts verified by measurement: each method's plan re-picked by measured accuracy (not checkpointed:
        # the checkpoints keep the methods' own answers, and measuring again gives the same numbers)
        bar.set_description(f"cell {cell.index + 1}/{cell_count} measuring plans")
        outcome.measurement = measure_cell(cell.config, outcome.outcomes)
    return outcome


def scenario_and_info(cell: Cell) -> tuple[Scenario, dict[str, Any]]:
    """The cell's scenario and what the results need of it (layer names, float accuracy, edge bit-widths)."""
    scenario = build_scenario(cell.config)
    edge_bits = scenario.edge_bits
    return scenario, {"layer_names": [layer.name for layer in scenario.graph.layers],
                      "fp_accuracy": float(scenario.accuracy.fp_accuracy),
                      "scenario_edge_bits": [int(b) for b in edge_bits] if edge_bits else None}


def run_method_in_cell(method: str, scenario: Scenario, cell: Cell, budget: dict, seed: int, storage: str | None,
                       max_rows: int, fingerprint: str) -> MethodOutcome:
    """Run `method` on the cell's scenario and keep its answer, its front and at most `max_rows` of its plans
    (or a note, when the edge cannot run it)."""
    skipped = skip_note(method, scenario)
    if skipped:
        empty = pd.DataFrame(columns=list(PLAN_COLUMNS))
        return MethodOutcome(method=method, best=None, front=empty, plans=empty.assign(kept_as=[]),
                             plans_evaluated=0, evaluations=0, elapsed_s=0.0, budget=budget,
                             fingerprint=fingerprint, note=skipped)
    search = make_method(method, **method_options(cell.config, method))
    result = search.run(scenario, budget=budget or None, seed=seed, **run_options(cell, method, budget, storage))
    plans = _plan_frame(result.plans, method)
    limit = cell.config.constraints.edge_memory_bytes
    best = result.best
    kept = _keep_rows(plans, memory_front(plans, limit), best, max_rows, seed)
    return MethodOutcome(method=method, best=best, front=feasible_front(plans), plans=kept,
                         plans_evaluated=len(plans), evaluations=result.evaluations, elapsed_s=result.elapsed_s,
                         budget=budget, fingerprint=fingerprint, guarantee=describe(method, result.info),
                         hypervolume_trace=tuple((t[0], t[-1]) for t in result.info.get("hypervolume_trace", ())))


# --- what is kept of a method's plans ---------------------------------------------------------------------
def _plan_frame(plans: pd.DataFrame, method: str) -> pd.DataFrame:
    plans = plans.copy()
    if "method" not in plans:
        plans.insert(0, "method", method)
    columns = [c for c in PLAN_COLUMNS if c in plans] + [c for c in plans if c not in PLAN_COLUMNS]
    return plans[columns].reset_index(drop=True)


def feasible_front(plans: pd.DataFrame) -> pd.DataFrame:
    """Non-dominated plans over (latency_s, accuracy_drop) among those that meet every bound."""
    ok = plans[plans["feasible"].astype(bool)]
    if ok.empty:
        return ok.reset_index(drop=True)
    front = ok[np.asarray(nondominated(ok[["latency_s", "accuracy_drop"]].to_numpy(dtype=float)), dtype=bool)]
    return front.sort_values(["latency_s", "accuracy_drop"], kind="stable").reset_index(drop=True)


def memory_front(plans: pd.DataFrame, edge_memory_limit_bytes: float) -> pd.DataFrame:
    """Non-dominated plans over (latency_s, accuracy_drop) among those that fit the edge memory."""
    fits = plans[plans["edge_memory_bytes"] <= edge_memory_limit_bytes * (1 + 1e-12)]
    if fits.empty:
        return fits
    points = fits[["latency_s", "accuracy_drop"]].to_numpy(dtype=float)
    front = fits[np.asarray(nondominated(points), dtype=bool)]
    return front.sort_values(["latency_s", "accuracy_drop"], kind="stable")


def _keep_rows(plans: pd.DataFrame, front: pd.DataFrame, best: dict | None, max_rows: int, seed: int) -> pd.DataFrame:
    """The method's best plan and front, then a seeded random sample of its other plans, at most `max_rows`."""
    kept_as = pd.Series("sample", index=plans.index, dtype=object)
    kept_as[front.index] = "front"
    if best is not None:
        chosen = _matching_row(plans, best)
        if chosen is not None:
            kept_as[chosen] = "chosen"
    priority = kept_as[kept_as != "sample"].index
    rest = kept_as[kept_as == "sample"].index.to_numpy()
    room = max(0, max_rows - len(priority))
    if len(rest) > room:
        rng = np.random.default_rng(seed)
        rest = np.sort(rng.choice(rest, size=room, replace=False))
    keep = np.sort(np.concatenate([priority.to_numpy(), rest]).astype(int))[:max(max_rows, len(priority))]
    out = plans.loc[keep].copy()
    out.insert(1, "kept_as", kept_as[keep].to_numpy())
    return out.reset_index(drop=True)


def _matching_row(plans: pd.DataFrame, best: dict) -> Any:
    """The index label of the row of `plans` that is `best` (same latency and drop), or None."""
    if plans.empty:
        return None
    latency = float(best.get("latency_s", np.nan))
    drop = float(best.get("accuracy_drop", np.nan))
    hit = np.flatnonzero(np.isclose(plans["latency_s"].to_numpy(float), latency, rtol=1e-12, atol=0)
                         & np.isclose(plans["accuracy_drop"].to_numpy(float), drop, rtol=1e-12, atol=1e-15))
    return plans.index[hit[0]] if hit.size else None
