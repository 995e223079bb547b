"""Run an experiment: validate -> expand the sweep -> per cell, build the scenario and run every method
(`cells`, serially or over Dask: `executor`) -> keep the fronts, the chosen plans and a capped sample -> (an
.onnx model with `accuracy.data`: measure the plans and choose each method's plan by measured accuracy,
`measured`) -> write tables, plots and summary.md atomically (`tables`) -> the fleet simulation where the
experiment has a `capacity:` section (`capacity_run`).

This module orchestrates from the top: it owns the results directory (never overwritten without --force,
resumed with --resume), the resolved config and the dry run's work plan; nothing else in the package imports it.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import yaml
from tqdm import tqdm

from hardware_models.errors import UserError
from simulator import atomic
from simulator.experiment.capacity_run import run_capacity
from simulator.experiment.cells import CHECKPOINTS, CellRun, PreparedCell, prepare_cell
from simulator.experiment.dir_lock import LOCK_NAME, locked
from simulator.experiment.executor import run_cells
from simulator.experiment.provenance import provenance
from simulator.experiment.settings import (
    NOT_FINGERPRINTED,
    budget_for,
    default_out_dir,
    fingerprint,
    methods_to_run,
    reproducible,
    resuming_methods,
    study_name,
)
from simulator.experiment.tables import write_results
from simulator.experiment.validated import LoadedExperiment
from simulator.experiment.worker import forget_studies
from simulator.search import skip_note
from simulator.search.optuna_storage import mask_secrets

OUTPUT_FILES = ("config.resolved.yaml", "plans.parquet", "plans.csv", "pareto.csv", "baselines.csv", "timings.csv",
                "summary.md", "pareto.png", "pareto.svg", "breakdown.png", "breakdown.svg", "bits.png", "bits.svg",
                "sweep.png", "sweep.svg", "measured.csv", "accuracy.png", "accuracy.svg", "convergence.png",
                "convergence.svg")


@dataclass
class RunResult:
    """What `run_experiment` produced: the results directory, every cell's run (none when the directory already
    held this experiment's results), the baselines table (each method's chosen plan per cell) and the files."""

    out_dir: Path
    cells: list[CellRun]
    baselines: pd.DataFrame
    files: list[Path]


# --- the work plan --------------------------------------------------------------------------------------
def prepare_cells(loaded: LoadedExperiment) -> list[PreparedCell]:
    """Build every cell's record and scenario (graph, accelerators, link, bounds) once, without evaluating
    anything: what a run would refuse, the dry run refuses too."""
    prepared = []
    for cell in loaded.cells:
        try:
            prepared.append(prepare_cell(cell, str(loaded.source)))
        except UserError as exc:
            raise UserError(f"{exc}" + (f" (sweep cell {cell.label})" if cell.values else "")) from None
    return prepared


def skipped_methods(loaded: LoadedExperiment, cells: list[PreparedCell]) -> list[dict]:
    """The notes of the methods a cell skips (an edge-uN baseline the edge cannot run)."""
    notes = []
    for prepared in cells:
        assert prepared.scenario is not None  # not run yet
        for method in methods_to_run(loaded):
            note = skip_note(method, prepared.scenario)
            if note:
                notes.append({"cell": prepared.cell.index, "method": method, "note": note})
    return notes


def check_out_dir(out_dir: Path) -> None:
    """A UserError when the results directory could not be created (what a dry run checks instead of writing)."""
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
        os.rmdir(tempfile.mkdtemp(prefix=atomic.TEMP_PREFIX, dir=ancestor))
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot create the results directory ({ancestor}: "
                        f"{exc.strerror or exc})") from None


@dataclass
class WorkPlan:
    """What `run --dry-run` prints: the methods each cell skips (and why), the experiment file, where the results
    would go (and whether it exists), every cell's record, the methods with their budgets, the seed, the storage
    (secrets masked), whether the tables are reproducible, the executor and the number of (cell, method) runs."""

    skipped: list[dict]
    experiment: str
    out_dir: str
    out_dir_exists: bool
    cells: list[dict]
    methods: list[dict]
    seed: int
    storage: str | None
    reproducible: bool
    executor: str
    runs: int

    def to_json(self) -> dict:
        return asdict(self)


def work_plan(loaded: LoadedExperiment, out_dir: Path, storage: str | None) -> WorkPlan:
    """The dry run's work plan: every cell's scenario is built (and refused) as a run would, nothing is
    evaluated or written."""
    check_out_dir(out_dir)
    cells = prepare_cells(loaded)
    methods = methods_to_run(loaded)
    return WorkPlan(skipped=skipped_methods(loaded, cells), experiment=str(loaded.source), out_dir=str(out_dir),
                    out_dir_exists=out_dir.exists(), cells=[c.record for c in cells],
                    methods=[{"method": m, "budget": budget_for(loaded, m)} for m in methods],
                    seed=loaded.config.seed, storage=mask_secrets(storage), reproducible=reproducible(loaded),
                    executor=loaded.config.executor, runs=len(cells) * len(methods))


def experiment_fingerprint(loaded: LoadedExperiment) -> str:
    """What a results directory's numbers depend on: `--resume` refuses a directory with another fingerprint."""
    return fingerprint(loaded.config)


def _stored_config(out_dir: Path) -> dict:
    """The results directory's config.resolved.yaml ({} when missing or unreadable)."""
    try:
        previous = yaml.safe_load((out_dir / "config.resolved.yaml").read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        previous = {}
    return previous if isinstance(previous, dict) else {}


def _same_experiment(loaded: LoadedExperiment, out_dir: Path) -> bool:
    return _stored_config(out_dir).get("fingerprint") == experiment_fingerprint(loaded)


def _check_resumable(loaded: LoadedExperiment, out_dir: Path, flag: str = "--resume") -> None:
    """A UserError when `out_dir` holds the results of another experiment (or the same one with another seed)."""
    if not (out_dir / "config.resolved.yaml").is_file():
        return
    previous = _stored_config(out_dir)
    stored = previous.get("fingerprint")
    if stored == experiment_fingerprint(loaded):
        return
    theirs = previous.get("experiment") if isinstance(previous, dict) else None
    ours = loaded.config.model_dump(mode="json")
    differ = sorted(k for k in ours if k not in NOT_FINGERPRINTED and isinstance(theirs, dict)
                    and theirs.get(k) != ours[k])
    if stored is None and isinstance(theirs, dict) and not differ:
        return  # results written before fingerprints: the same experiment
    what = f" (differs in: {', '.join(differ)})" if differ else ""
    raise UserError(f"{flag} {out_dir}: the directory holds another experiment's results{what}; "
                    "give --force to start over there, or --out DIR")


def resolved_config(loaded: LoadedExperiment, records: list[dict], storage: str | None,
                    argv: list[str] | None) -> dict:
    """config.resolved.yaml: the validated experiment, its cells in SI units (`records`), methods, budgets, seed,
    provenance (secrets masked)."""
    config = loaded.config.model_dump(mode="json")
    config["storage"] = mask_secrets(config.get("storage"))  # a URL's password never reaches the results
    origin = provenance(loaded.source, argv)
    origin["command"] = mask_secrets(origin["command"])
    return {"autosplit_results": 1, "fingerprint": experiment_fingerprint(loaded), "provenance": origin,
            "overrides": [mask_secrets(o) for o in loaded.overrides], "seed": loaded.config.seed,
            "storage": mask_secrets(storage),
            "reproducible": reproducible(loaded),
            "methods": [{"method": m, "budget": budget_for(loaded, m)} for m in methods_to_run(loaded)],
            "experiment": config, "cells": records}


# --- running --------------------------------------------------------------------------------------------
def run_experiment(loaded: LoadedExperiment, out_dir: Path | None = None, *, force: bool = False,
                   resume: bool = False, storage: str | None = None, argv: list[str] | None = None,
                   show_progress: bool | None = None) -> RunResult:
    """Run every (cell, method) of `loaded` and write the results directory; returns what was produced."""
    if force and resume:
        raise UserError("run: give --force (start over) or --resume (continue), not both")
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(loaded)
    storage = storage if storage is not None else loaded.config.storage
    methods = methods_to_run(loaded)
    cells = prepare_cells(loaded)  # what would fail in a cell fails now, before anything is written
    notes = skipped_methods(loaded, cells)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a directory")
    created_here = not out_dir.exists()
    atomic.make_dir(out_dir)
    try:
        with locked(out_dir):
            if not (force or resume) and _occupied(out_dir):
                if not _same_experiment(loaded, out_dir):
                    _check_resumable(loaded, out_dir, flag="run")  # raises, naming what differs
                if (out_dir / "summary.md").exists():  # done before: show it, compute nothing
                    print(f"note: {out_dir} already holds this experiment's results (same fingerprint); "
                          "give --force to compute them again", file=sys.stderr)
                    return RunResult(out_dir=out_dir, cells=[], baselines=pd.read_csv(out_dir / "baselines.csv"),
                                     files=sorted(p for p in out_dir.iterdir() if p.name in OUTPUT_FILES))
                print(f"note: {out_dir} holds an interrupted run of this experiment: resuming it", file=sys.stderr)
                resume = True
            _prepare_out_dir(out_dir, force=force, resume=resume)
            if resume:
                _check_resumable(loaded, out_dir)
            for note in notes:
                print(f"note: cell {note['cell']}: {note['note']}", file=sys.stderr)
            return _run_in(loaded, out_dir, cells, methods, force=force, storage=storage, argv=argv,
                           show_progress=show_progress)
    except Exception:
        # a run that failed before any (cell, method) finished leaves nothing worth resuming: a plain rerun
        # must not be blocked by its directory
        if created_here and not any((out_dir / CHECKPOINTS).rglob("*.pkl")):
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _run_in(loaded: LoadedExperiment, out_dir: Path, cells: list[PreparedCell], methods: list[str], *,
            force: bool, storage: str | None, argv: list[str] | None, show_progress: bool | None) -> RunResult:
    if force and storage:  # start over: the cells' studies too
        forget_studies(storage, [study_name(c.cell, method, budget_for(loaded, method))
                                 for method in resuming_methods(methods) for c in cells])
    resolved = resolved_config(loaded, [c.record for c in cells], storage, argv)
    atomic.write_text(out_dir / "config.resolved.yaml", yaml.safe_dump(resolved, sort_keys=False, width=120))

    total = len(cells) * len(methods)
    logging_lines = show_progress is None and not sys.stderr.isatty()
    bar: _LineProgress | tqdm
    if logging_lines:  # piped or in a batch job: a line per stage instead of a silent bar
        bar = _LineProgress(total)
    else:
        bar = tqdm(total=total, unit="run", disable=None if show_progress is None else not show_progress,
                   dynamic_ncols=True)
    try:
        results = run_cells(loaded, cells, methods, out_dir, storage, bar)  # serial, or fanned out over Dask
    finally:
        bar.close()
    baselines, files = write_results(loaded, results, out_dir, resolved)
    if loaded.config.capacity is not None:  # the fleet simulation, into capacity/
        log = (lambda text: print(text, file=sys.stderr, flush=True)) if logging_lines else None
        files = list(files) + run_capacity(loaded, out_dir, force=True, log=log).files
    return RunResult(out_dir=out_dir, cells=results, baselines=baselines, files=files)


class _LineProgress:
    """tqdm's interface, printing one line per (cell, method) stage to stderr (for logs, where a bar is noise)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.perf_counter()

    def set_description(self, text: str) -> None:
        print(f"[{self.done}/{self.total} runs, {time.perf_counter() - self.started:.0f} s] {text}",
              file=sys.stderr, flush=True)

    def update(self, count: int = 1) -> None:
        self.done += count

    def close(self) -> None:
        print(f"[{self.done}/{self.total} runs, {time.perf_counter() - self.started:.0f} s] done; writing results",
              file=sys.stderr, flush=True)


def _occupied(out_dir: Path) -> bool:
    return out_dir.is_dir() and any(_holds_results(p) for p in out_dir.iterdir())


def _prepare_out_dir(out_dir: Path, *, force: bool, resume: bool) -> None:
    if resume and not _occupied(out_dir):
        raise UserError(f"{out_dir}: nothing to resume (no results directory); run without --resume")
    atomic.remove_stale_temporaries(out_dir)
    if force:
        shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)
        for name in OUTPUT_FILES:
            (out_dir / name).unlink(missing_ok=True)


def _holds_results(entry: Path) -> bool:
    """False for what a run that computed nothing leaves: temporaries, its config, empty checkpoints."""
    if entry.name.startswith(atomic.TEMP_PREFIX) or entry.name in ("config.resolved.yaml", LOCK_NAME):
        return False
    if entry.name == CHECKPOINTS:
        return any(entry.rglob("*.pkl"))
    return True
