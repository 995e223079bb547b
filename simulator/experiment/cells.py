"""One sweep cell's work: build its record and scenario once (`prepare_cell`), run each method (or read the
method's checkpoint), keep what the results need of it (`MethodOutcome`: the answer, the front, a capped sample)
and, where the cell's model has labelled data, measure the plans; the cell's `CellRun` is what the tables, the
report and the CLI read.

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
from simulator.experiment.scenario import build_link, build_scenario, cell_record
from simulator.experiment.settings import budget_for, fingerprint, method_options, run_options
from simulator.experiment.sweep import Cell
from simulator.experiment.validated import LoadedExperiment
from simulator.search import describe, make_method, skip_note
from simulator.search.base import PLAN_COLUMNS, Plan
from simulator.search.pareto import nondominated

CHECKPOINTS = ".checkpoints"
CHECKPOINT_FORMAT = 2  # a MethodOutcome's `best` is a Plan (1: a dict): older checkpoints run again
_NOT_IN_SKIPPED = ("model", "accuracy_expected", "accuracy_low", "accuracy_high")


class Progress(Protocol):
    """What a cell reports its progress to (a tqdm bar, or one line per stage in a log)."""

    def set_description(self, text: str) -> None: ...

    def update(self, count: int = 1) -> None: ...


@dataclass
class PreparedCell:
    """A cell's data, built once per run before anything runs: its record (`cell_record`: the scenario in SI
    units, for config.resolved.yaml, the dry run and the tables' cell columns) and its search scenario (None
    once the cell has run, so that a sweep holds one cell's cost tables at a time)."""

    cell: Cell
    record: dict[str, Any]
    scenario: Scenario | None


def prepare_cell(cell: Cell, source: str = "") -> PreparedCell:
    """Build `cell`'s link, record and scenario, once (errors name the user's keys and `source`)."""
    link = build_link(cell.config.network)
    return PreparedCell(cell, cell_record(cell, link), build_scenario(cell.config, source, link=link))


@dataclass
class CellRun:
    """A cell's run: its record, its methods' outcomes in run order, and what the results need of its scenario."""

    cell: Cell
    record: dict[str, Any]
    layer_names: list[str] = field(default_factory=list)
    fp_accuracy: float | None = None
    outcomes: dict[str, MethodOutcome] = field(default_factory=dict)
    edge_bits: list[int] | None = None  # the bit-widths the edge could use (the preset's when not given)
    measurement: CellMeasurement | None = None  # where the model has labelled data


# --- checkpoints ----------------------------------------------------------------------------------------
def checkpoint_fingerprint(cell: Cell, method: str, budget: dict, seed: int) -> str:
    """What a (cell, method) result depends on: a checkpoint with another fingerprint is run again."""
    return fingerprint(cell.config, ("sweep",), max_plan_rows=cell.config.output.max_plan_rows, method=method,
                       budget=budget, seed=seed, format=CHECKPOINT_FORMAT)


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
def run_cell(loaded: LoadedExperiment, prepared: PreparedCell, methods: list[str], out_dir: Path,
             storage: str | None, bar: Progress, cell_count: int) -> CellRun:
    """Every method's outcome in the prepared cell, from its checkpoint or run now (and checkpointed); then, where
    the model has labelled data, each method's plan chosen again by measured accuracy. The cell's scenario is
    released when it is done."""
    seed = loaded.config.seed
    cell = prepared.cell
    scenario = prepared.scenario
    prepared.scenario = None
    info_path = cell_info_path(out_dir, cell)
    cell_info: dict | None = None
    if scenario is not None:
        cell_info = scenario_info(scenario)
    elif info_path.is_file():
        cell_info = json.loads(info_path.read_text())
    info_written = False
    outcome = CellRun(cell=cell, record=prepared.record)
    for method in methods:
        budget = budget_for(loaded, method)
        key = checkpoint_fingerprint(cell, method, budget, seed)
        bar.set_description(f"cell {cell.index + 1}/{cell_count} {method}")
        path = checkpoint_path(out_dir, cell, method)
        done = load_checkpoint(path, key)
        if done is None:
            if scenario is None:
                scenario = build_scenario(cell.config)
                cell_info = scenario_info(scenario)
            if not info_written:  # beside the checkpoints, for a resumed run
                atomic.write_text(info_path, json.dumps(cell_info))
                info_written = True
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


def scenario_info(scenario: Scenario) -> dict[str, Any]:
    """What the results need of a cell's scenario (layer names, float accuracy, edge bit-widths), kept beside the
    checkpoints so that a resumed run need not build the scenario."""
    edge_bits = scenario.edge_bits
    return {"layer_names": [layer.name for layer in scenario.graph.layers],
            "fp_accuracy": float(scenario.accuracy.fp_accuracy),
            "scenario_edge_bits": [int(b) for b in edge_bits] if edge_bits else None}


def run_method_in_cell(method: str, scenario: Scenario, cell: Cell, budget: dict, seed: int, storage: str | None,
                       max_rows: int, fingerprint: str) -> MethodOutcome:
    """Run `method` on the cell's scenario and keep its answer, its front and at most `max_rows` of its plans
    (or a note, when the edge cannot run it)."""
    skipped = skip_note(method, scenario)
    if skipped:
        # without model and the prediction's interval, as results have had it (plans.csv's columns follow the
        # first method's table)
        empty = pd.DataFrame(columns=[c for c in PLAN_COLUMNS if c not in _NOT_IN_SKIPPED])
        return MethodOutcome(method=method, best=None, front=empty, plans=empty.assign(kept_as=[]),
                             plans_evaluated=0, evaluations=0, elapsed_s=0.0, budget=budget,
                             fingerprint=fingerprint, note=skipped)
    search = make_method(method, **method_options(cell.config, method))
    result = search.run(scenario, budget=budget or None, seed=seed, **run_options(cell, method, budget, storage))
    plans = result.plans
    limit = cell.config.constraints.edge_memory_bytes
    best = result.plan
    kept = _keep_rows(plans, memory_front(plans, limit), best, max_rows, seed)
    return MethodOutcome(method=method, best=best, front=result.feasible_front, plans=kept,
                         plans_evaluated=len(plans), evaluations=result.evaluations, elapsed_s=result.elapsed_s,
                         budget=budget, fingerprint=fingerprint, guarantee=describe(method, result.info),
                         hypervolume_trace=tuple((t[0], t[-1]) for t in result.info.get("hypervolume_trace", ())))


# --- what is kept of a method's plans ---------------------------------------------------------------------
def memory_front(plans: pd.DataFrame, edge_memory_limit_bytes: float) -> pd.DataFrame:
    """Non-dominated plans over (latency_s, accuracy_drop) among those that fit the edge memory."""
    fits = plans[plans["edge_memory_bytes"] <= edge_memory_limit_bytes * (1 + 1e-12)]
    if fits.empty:
        return fits
    points = fits[["latency_s", "accuracy_drop"]].to_numpy(dtype=float)
    front = fits[np.asarray(nondominated(points), dtype=bool)]
    return front.sort_values(["latency_s", "accuracy_drop"], kind="stable")


def _keep_rows(plans: pd.DataFrame, front: pd.DataFrame, best: Plan | None, max_rows: int, seed: int) -> pd.DataFrame:
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


def _matching_row(plans: pd.DataFrame, best: Plan) -> Any:
    """The index label of the row of `plans` that is `best` (same latency and drop), or None."""
    if plans.empty:
        return None
    latency, drop = best.latency_s, best.accuracy_drop
    hit = np.flatnonzero(np.isclose(plans["latency_s"].to_numpy(float), latency, rtol=1e-12, atol=0)
                         & np.isclose(plans["accuracy_drop"].to_numpy(float), drop, rtol=1e-12, atol=1e-15))
    return plans.index[hit[0]] if hit.size else None
