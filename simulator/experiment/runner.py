"""Run an experiment: validate -> expand the sweep -> per cell, build the scenario and run every method ->
keep the fronts, the chosen plans and a capped sample -> (an .onnx model with `accuracy.data`: measure the plans
and choose each method's plan by measured accuracy, `simulator.experiment.measured`) -> write tables, plots and
summary.md atomically.

Each (cell, method) result is checkpointed under `.checkpoints/` as soon as it is done, so `--resume`
continues a killed run where it stopped (and an Optuna journal storage continues the interrupted study).
"""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from hardware_models.errors import UserError
from simulator import atomic
from simulator.experiment.loading import LoadedExperiment
from simulator.experiment.provenance import provenance
from simulator.experiment.scenario import build_link, scenario_arguments
from simulator.experiment.storage import mask_secrets
from simulator.experiment.sweep import Cell, expand

# Methods always run (cheap) because the summary states speed-ups against them.
REFERENCE_METHODS = ("cloud", "edge-u8")
CHECKPOINTS = ".checkpoints"
OUTPUT_FILES = ("config.resolved.yaml", "plans.parquet", "plans.csv", "pareto.csv", "baselines.csv", "timings.csv",
                "summary.md", "pareto.png", "pareto.svg", "breakdown.png", "breakdown.svg", "bits.png", "bits.svg",
                "sweep.png", "sweep.svg", "measured.csv", "accuracy.png", "accuracy.svg")
PLAN_COLUMNS = ("method", "cut_index", "edge_layers", "latency_s", "edge_s", "transfer_s", "cloud_s", "accuracy",
                "accuracy_drop", "edge_memory_bytes", "edge_energy_j", "payload_bytes", "wire_bytes", "weight_bits",
                "activation_bits", "feasible")


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


@dataclass
class CellOutcome:
    cell: Cell
    layer_names: list[str]
    fp_accuracy: float | None
    outcomes: dict[str, MethodOutcome] = field(default_factory=dict)
    edge_bits: list[int] | None = None  # the bit-widths the edge could use (the preset's when not given)
    measurement: Any = None  # simulator.experiment.measured.CellMeasurement where the model has labelled data


@dataclass
class RunOutput:
    out_dir: Path
    cells: list[CellOutcome]
    files: list[Path]


# --- the work plan --------------------------------------------------------------------------------------
def methods_to_run(loaded: LoadedExperiment) -> list[str]:
    requested = list(loaded.config.search.methods)
    return [m for m in REFERENCE_METHODS if m not in requested] + requested


def budget_for(loaded: LoadedExperiment, method: str) -> dict:
    budget = loaded.config.search.budgets.get(method)
    return budget.as_dict() if budget is not None else {}


def reproducible(loaded: LoadedExperiment) -> bool:
    """True unless some method runs on a wall-clock budget."""
    return not any("seconds" in budget_for(loaded, m) for m in methods_to_run(loaded))


def default_out_dir(loaded: LoadedExperiment) -> Path:
    return Path(loaded.config.output.dir) if loaded.config.output.dir else Path("results") / loaded.stem


def cell_record(cell: Cell) -> dict:
    """A cell's scenario in SI units (for config.resolved.yaml, the dry run and the table columns)."""
    config = cell.config
    link = build_link(config.network)
    arguments = scenario_arguments(config)
    return {"cell": cell.index, "label": cell.label, "sweep": dict(cell.values),
            "model": config.model, "edge": config.edge, "cloud": config.cloud,
            "uplink_bps": float(link.uplink_bps), "rtt_s": float(link.rtt_s), "link": link.protocol,
            "loss_rate": float(link.loss_rate), "edge_memory_limit_bytes": arguments["edge_memory_bytes"],
            "max_accuracy_drop": arguments["max_accuracy_drop"], "memory_model": arguments["memory_model"],
            "edge_bits": list(arguments["edge_bits"]) if arguments["edge_bits"] else None,
            "cloud_bits": arguments["cloud_bits"], "accuracy_tier": arguments["accuracy_tier"],
            "accuracy_granularity": config.accuracy.granularity,
            "accuracy_confidence": arguments["accuracy_confidence"], "input_codec": arguments["input_codec"],
            "activation_codec": arguments["activation_codec"], "jpeg_quality": arguments["jpeg_quality"]}


def check_cells(loaded: LoadedExperiment, cells: list[Cell]) -> list[dict]:
    """Build every cell's scenario (graph, accelerators, link, bounds) and method settings without evaluating
    anything: what a run would refuse, the dry run refuses too. Returns the notes of methods a cell skips."""
    from simulator.experiment.scenario import build_scenario, uniform_bits_missing

    notes = []
    for cell in cells:
        try:
            scenario = build_scenario(cell.config, str(loaded.source))
        except UserError as exc:
            raise UserError(f"{exc}" + (f" (sweep cell {cell.label})" if cell.values else "")) from None
        for method in methods_to_run(loaded):
            note = uniform_bits_missing(method, scenario)
            if note:
                notes.append({"cell": cell.index, "method": method, "note": note})
    return notes


def check_out_dir(out_dir: Path) -> None:
    """A UserError when the results directory could not be created (what a dry run checks instead of writing)."""
    import os

    if out_dir.exists():
        if not out_dir.is_dir():
            raise UserError(f"--out {out_dir}: exists and is not a directory")
        return
    ancestor = out_dir.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"--out {out_dir}: cannot create the results directory ({ancestor} is not a directory)")
    try:  # permissions alone do not tell (root, read-only or virtual file systems): try, and leave nothing
        import tempfile

        os.rmdir(tempfile.mkdtemp(prefix=atomic.TEMP_PREFIX, dir=ancestor))
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot create the results directory ({ancestor}: "
                        f"{exc.strerror or exc})") from None


def work_plan(loaded: LoadedExperiment, out_dir: Path, storage: str | None) -> dict:
    check_out_dir(out_dir)
    cells = expand(loaded)
    notes = check_cells(loaded, cells)
    return {"skipped": notes, "experiment": str(loaded.source), "out_dir": str(out_dir), "out_dir_exists": out_dir.exists(),
            "cells": [cell_record(c) for c in cells],
            "methods": [{"method": m, "budget": budget_for(loaded, m)} for m in methods_to_run(loaded)],
            "seed": loaded.config.seed, "storage": mask_secrets(storage), "reproducible": reproducible(loaded),
            "executor": loaded.config.executor, "runs": len(cells) * len(methods_to_run(loaded))}


# keys that change where and how results are written, not what they are
_NOT_FINGERPRINTED = {"output", "name", "description", "storage", "executor", "scheduler"}


def experiment_fingerprint(loaded: LoadedExperiment) -> str:
    """What a results directory's numbers depend on: `--resume` refuses a directory with another fingerprint."""
    text = json.dumps(loaded.config.model_dump(mode="json", exclude=_NOT_FINGERPRINTED), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_resumable(loaded: LoadedExperiment, out_dir: Path) -> None:
    """A UserError when `out_dir` holds the results of another experiment (or the same one with another seed)."""
    path = out_dir / "config.resolved.yaml"
    if not path.is_file():
        return
    try:
        previous = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        previous = {}
    stored = previous.get("fingerprint") if isinstance(previous, dict) else None
    if stored == experiment_fingerprint(loaded):
        return
    theirs = previous.get("experiment") if isinstance(previous, dict) else None
    ours = loaded.config.model_dump(mode="json")
    differ = sorted(k for k in ours if k not in _NOT_FINGERPRINTED and isinstance(theirs, dict)
                    and theirs.get(k) != ours[k])
    if stored is None and isinstance(theirs, dict) and not differ:
        return  # results written before fingerprints: the same experiment
    what = f" (differs in: {', '.join(differ)})" if differ else ""
    raise UserError(f"--resume {out_dir}: the directory holds another experiment's results{what}; "
                    "give --force to start over there, or --out DIR")


def resolved_config(loaded: LoadedExperiment, storage: str | None, argv: list[str] | None) -> dict:
    config = loaded.config.model_dump(mode="json")
    config["storage"] = mask_secrets(config.get("storage"))  # a URL's password never reaches the results
    origin = provenance(loaded.source, argv)
    origin["command"] = mask_secrets(origin["command"])
    return {"autosplit_results": 1, "fingerprint": experiment_fingerprint(loaded), "provenance": origin,
            "overrides": [mask_secrets(o) for o in loaded.overrides], "seed": loaded.config.seed,
            "storage": mask_secrets(storage),
            "reproducible": reproducible(loaded),
            "methods": [{"method": m, "budget": budget_for(loaded, m)} for m in methods_to_run(loaded)],
            "experiment": config, "cells": [cell_record(c) for c in expand(loaded)]}


# --- running --------------------------------------------------------------------------------------------
def run_experiment(loaded: LoadedExperiment, out_dir: Path | None = None, *, force: bool = False,
                   resume: bool = False, storage: str | None = None, argv: list[str] | None = None,
                   show_progress: bool | None = None) -> RunOutput:
    """Run every (cell, method) of `loaded` and write the results directory; returns what was written."""
    if force and resume:
        raise UserError("run: give --force (start over) or --resume (continue), not both")
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(loaded)
    storage = storage if storage is not None else loaded.config.storage
    cells = expand(loaded)
    methods = methods_to_run(loaded)
    notes = check_cells(loaded, cells)  # what would fail in a cell fails now, before anything is written
    created_here = not out_dir.exists()
    _prepare_out_dir(out_dir, force=force, resume=resume)
    if resume:
        _check_resumable(loaded, out_dir)
    for note in notes:
        print(f"note: cell {note['cell']}: {note['note']}", file=sys.stderr)
    try:
        return _run_in(loaded, out_dir, cells, methods, force=force, storage=storage, argv=argv,
                       show_progress=show_progress)
    except Exception:
        # a run that failed before any (cell, method) finished leaves nothing worth resuming: a plain rerun
        # must not be blocked by its directory
        if created_here and not any((out_dir / CHECKPOINTS).rglob("*.pkl")):
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _run_in(loaded: LoadedExperiment, out_dir: Path, cells: list[Cell], methods: list[str], *, force: bool,
            storage: str | None, argv: list[str] | None, show_progress: bool | None) -> RunOutput:
    if force and storage and "optuna" in methods:  # start over: the cells' studies too
        from simulator.experiment.worker import forget_studies

        forget_studies(storage, [study_name(cell, budget_for(loaded, "optuna")) for cell in cells])
    resolved = resolved_config(loaded, storage, argv)
    atomic.write_text(out_dir / "config.resolved.yaml", yaml.safe_dump(resolved, sort_keys=False, width=120))

    from tqdm import tqdm

    results: list[CellOutcome] = []
    total = len(cells) * len(methods)
    logging_lines = show_progress is None and not sys.stderr.isatty()
    if logging_lines:  # piped or in a batch job: a line per stage instead of a silent bar
        bar = _LineProgress(total)
    else:
        bar = tqdm(total=total, unit="run", disable=None if show_progress is None else not show_progress,
                   dynamic_ncols=True)
    try:
        from simulator.experiment.executor import run_cells  # serial, or fanned out over Dask

        results = run_cells(loaded, cells, methods, out_dir, storage, bar)
    finally:
        bar.close()
    from simulator.experiment.tables import write_results

    files = write_results(loaded, results, out_dir, resolved)
    if getattr(loaded.config, "capacity", None) is not None:  # the fleet simulation, into capacity/
        from simulator.experiment.capacity_run import run_capacity

        log = (lambda text: print(text, file=sys.stderr, flush=True)) if logging_lines else None
        files = list(files) + run_capacity(loaded, out_dir, force=True, log=log).files
    return RunOutput(out_dir=out_dir, cells=results, files=files)


class _LineProgress:
    """tqdm's interface, printing one line per (cell, method) stage to stderr (for logs, where a bar is noise)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def set_description(self, text: str, *args, **kwargs) -> None:
        print(f"[{self.done}/{self.total} runs, {time.perf_counter() - self.started:.0f} s] {text}",
              file=sys.stderr, flush=True)

    def update(self, count: int = 1) -> None:
        self.done += count

    def close(self) -> None:
        print(f"[{self.done}/{self.total} runs, {time.perf_counter() - self.started:.0f} s] done; writing results",
              file=sys.stderr, flush=True)


def _prepare_out_dir(out_dir: Path, *, force: bool, resume: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a directory")
    occupied = out_dir.is_dir() and any(_holds_results(p) for p in out_dir.iterdir())
    if occupied and not (force or resume):
        interrupted = not (out_dir / "summary.md").exists()
        raise UserError(f"{out_dir}: results directory exists"
                        + (" (an interrupted run: continue it with --resume, or start over with --force)"
                           if interrupted else "; give --force to overwrite it, or --out DIR"))
    if resume and not occupied:
        raise UserError(f"{out_dir}: nothing to resume (no results directory); run without --resume")
    atomic.make_dir(out_dir)
    atomic.remove_stale_temporaries(out_dir)
    if force:
        shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
        for name in OUTPUT_FILES:
            (out_dir / name).unlink(missing_ok=True)


def _holds_results(entry: Path) -> bool:
    """False for what a run that computed nothing leaves: temporaries, its config, empty checkpoints."""
    if entry.name.startswith(atomic.TEMP_PREFIX) or entry.name == "config.resolved.yaml":
        return False
    if entry.name == CHECKPOINTS:
        return any(entry.rglob("*.pkl"))
    return True


def _fingerprint(cell: Cell, method: str, budget: dict, seed: int) -> str:
    """What a (cell, method) result depends on: a checkpoint with another fingerprint is run again."""
    text = json.dumps({"cell": cell.config.model_dump(mode="json", exclude={"sweep", "output", "name",
                                                                             "description", "storage", "executor",
                                                                             "scheduler"}),
                       "max_plan_rows": cell.config.output.max_plan_rows,
                       "method": method, "budget": budget, "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def method_options(config, method: str) -> dict:
    """What the YAML gives `method`'s constructor: optuna's sampler and objectives (`search.optuna`)."""
    if method != "optuna":
        return {}
    settings = config.search.optuna
    return {"sampler": settings.sampler, "objectives": tuple(settings.objectives)}


def run_options(cell: Cell, method: str, budget: dict, storage: str | None) -> dict:
    """What `method`'s run in `cell` takes besides the budget and seed: for optuna with a shared storage, that
    storage (opened here, on whichever machine runs the method) and the cell's study name."""
    if method != "optuna" or not storage:
        return {}
    from simulator.experiment.storage import open_storage

    return {"storage": open_storage(storage), "study_name": study_name(cell, budget)}


def study_name(cell: Cell, budget: dict) -> str:
    """The Optuna study of a cell in a shared storage: the same for `run`, `run --resume` and every `worker`
    (whatever their seeds), different for another scenario or budget."""
    text = json.dumps({"cell": cell.config.model_dump(mode="json", exclude={"sweep", "output", "name", "description",
                                                                            "storage", "executor", "scheduler",
                                                                            "seed"}),
                       "budget": budget}, sort_keys=True)
    return f"autosplit-cell{cell.index}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _checkpoint_path(out_dir: Path, cell: Cell, method: str) -> Path:
    return out_dir / CHECKPOINTS / f"cell-{cell.index:04d}" / f"{method}.pkl"


def _run_cell(loaded: LoadedExperiment, cell: Cell, methods: list[str], out_dir: Path, storage: str | None,
              bar, cell_count: int) -> CellOutcome:
    seed = loaded.config.seed
    scenario = None
    cell_info: dict | None = None
    info_path = out_dir / CHECKPOINTS / f"cell-{cell.index:04d}" / "cell.json"
    if info_path.is_file():
        cell_info = json.loads(info_path.read_text())
    outcome = CellOutcome(cell=cell, layer_names=[], fp_accuracy=None)
    for method in methods:
        budget = budget_for(loaded, method)
        fingerprint = _fingerprint(cell, method, budget, seed)
        bar.set_description(f"cell {cell.index + 1}/{cell_count} {method}")
        path = _checkpoint_path(out_dir, cell, method)
        done = _load_checkpoint(path, fingerprint)
        if done is None:
            if scenario is None:
                scenario, cell_info = _scenario_and_info(cell)
                atomic.write_text(info_path, json.dumps(cell_info))
            done = _run_method(method, scenario, cell, budget, seed, storage, loaded.config.output.max_plan_rows,
                               fingerprint)
            atomic.write_bytes(path, pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL))
        outcome.outcomes[method] = done
        bar.update(1)
    if cell_info is not None:
        outcome.layer_names = cell_info["layer_names"]
        outcome.fp_accuracy = cell_info["fp_accuracy"]
        outcome.edge_bits = cell_info.get("scenario_edge_bits")
    if cell.config.accuracy.data is not None:
        # fronts verified by measurement: each method's plan re-picked by measured accuracy (not checkpointed:
        # the checkpoints keep the methods' own answers, and measuring again gives the same numbers)
        from simulator.experiment.measured import measure_cell

        bar.set_description(f"cell {cell.index + 1}/{cell_count} measuring plans")
        outcome.measurement = measure_cell(cell.config, outcome.outcomes)
    return outcome


def _load_checkpoint(path: Path, fingerprint: str) -> MethodOutcome | None:
    if not path.is_file():
        return None
    try:
        done = pickle.loads(path.read_bytes())
    except Exception:  # a checkpoint from another version: run again
        return None
    return done if isinstance(done, MethodOutcome) and done.fingerprint == fingerprint else None


def _scenario_and_info(cell: Cell):
    from simulator.experiment.scenario import build_scenario

    scenario = build_scenario(cell.config)
    edge_bits = getattr(scenario, "edge_bits", None)
    return scenario, {"layer_names": _layer_names(scenario), "fp_accuracy": _fp_accuracy(scenario),
                      "scenario_edge_bits": [int(b) for b in edge_bits] if edge_bits else None}


def _layer_names(scenario) -> list[str]:
    graph = getattr(scenario, "graph", None)
    if graph is not None:
        return [layer.name for layer in graph.layers]
    names = getattr(getattr(scenario, "tables", None), "layer_names", None)
    return list(names) if names is not None else []


def _fp_accuracy(scenario) -> float | None:
    for owner in (getattr(scenario, "accuracy", None), scenario):
        for name in ("fp_accuracy", "reference_accuracy"):
            value = getattr(owner, name, None)
            if isinstance(value, (int, float)):
                return float(value)
    return None


def _run_method(method: str, scenario, cell: Cell, budget: dict, seed: int, storage: str | None,
                max_rows: int, fingerprint: str) -> MethodOutcome:
    from simulator.experiment.scenario import uniform_bits_missing
    from simulator.search import describe, make_method

    skipped = uniform_bits_missing(method, scenario)
    if skipped:
        empty = pd.DataFrame(columns=list(PLAN_COLUMNS))
        return MethodOutcome(method=method, best=None, front=empty, plans=empty.assign(kept_as=[]),
                             plans_evaluated=0, evaluations=0, elapsed_s=0.0, budget=budget,
                             fingerprint=fingerprint, note=skipped)
    search = make_method(method, **method_options(cell.config, method))
    result = search.run(scenario, budget=budget or None, seed=seed, **run_options(cell, method, budget, storage))
    elapsed_s = result.elapsed_s
    plans = _plan_frame(result.plans, method)
    limit = cell.config.constraints.edge_memory_bytes
    best = result.best
    kept = _keep_rows(plans, memory_front(plans, limit), best, max_rows, seed)
    return MethodOutcome(method=method, best=best, front=feasible_front(plans), plans=kept,
                         plans_evaluated=len(plans), evaluations=result.evaluations,
                         elapsed_s=elapsed_s, budget=budget, fingerprint=fingerprint,
                         guarantee=describe(method, result.info))


def _plan_frame(plans: pd.DataFrame, method: str) -> pd.DataFrame:
    plans = plans.copy()
    if "method" not in plans:
        plans.insert(0, "method", method)
    columns = [c for c in PLAN_COLUMNS if c in plans] + [c for c in plans if c not in PLAN_COLUMNS]
    return plans[columns].reset_index(drop=True)


def feasible_front(plans: pd.DataFrame) -> pd.DataFrame:
    """Non-dominated plans over (latency_s, accuracy_drop) among those that meet every bound."""
    from simulator.search.pareto import nondominated

    ok = plans[plans["feasible"].astype(bool)]
    if ok.empty:
        return ok.reset_index(drop=True)
    front = ok[np.asarray(nondominated(ok[["latency_s", "accuracy_drop"]].to_numpy(dtype=float)), dtype=bool)]
    return front.sort_values(["latency_s", "accuracy_drop"], kind="stable").reset_index(drop=True)


def memory_front(plans: pd.DataFrame, edge_memory_limit_bytes: float) -> pd.DataFrame:
    """Non-dominated plans over (latency_s, accuracy_drop) among those that fit the edge memory."""
    from simulator.search.pareto import nondominated

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


def _matching_row(plans: pd.DataFrame, best: dict):
    if plans.empty:
        return None
    latency = float(best.get("latency_s", np.nan))
    drop = float(best.get("accuracy_drop", np.nan))
    hit = np.flatnonzero(np.isclose(plans["latency_s"].to_numpy(float), latency, rtol=1e-12, atol=0)
                         & np.isclose(plans["accuracy_drop"].to_numpy(float), drop, rtol=1e-12, atol=1e-15))
    return plans.index[hit[0]] if hit.size else None
