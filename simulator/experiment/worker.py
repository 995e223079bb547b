"""`autosplit worker`: another process (on this machine or another) joins the Optuna studies of an experiment.

The worker reads the same experiment YAML, so it builds the same scenario and names the same study per sweep
cell as `autosplit run` (`settings.study_name`: the scenario and the budget, not the seed), and it adds trials
with its own seed to each study in the shared storage (a journal file on a shared file system, PostgreSQL or
Redis) until the study holds the budget's trials. Results are written by `autosplit run`, which reads every
trial of the study, whoever ran it; a worker writes nothing but trials.
"""
from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

from hardware_models.errors import UserError
from simulator.experiment.scenario import build_scenario
from simulator.experiment.settings import budget_for, method_options, resuming_methods, run_options, study_name
from simulator.experiment.validated import LoadedExperiment
from simulator.search import make_method, registered_methods
from simulator.search.optuna_storage import describe, open_storage, storage_kind

if TYPE_CHECKING:  # Optuna is imported lazily: it takes a while
    from optuna.storages import BaseStorage


def new_seed() -> int:
    """A fresh seed for a worker that was given none (printed, so the run can be repeated)."""
    return secrets.randbelow(2**31 - 1) + 1


def join_studies(loaded: LoadedExperiment, storage: str | None, *, seed: int,
                 cells: list[int] | None = None) -> list[dict]:
    """Run trials with `seed` in each selected cell's study of every method that resumes (optuna: its Optuna
    study; such a method reports `trials_run` in its info); one row per cell and method with what was added."""
    storage = storage if storage is not None else loaded.config.storage
    if storage_kind(storage) == "memory":
        raise UserError("worker: needs a shared storage: --storage postgresql://... (or a journal file path on a "
                        "shared file system, or the experiment's storage: key)")
    methods = resuming_methods(list(loaded.config.search.methods))
    if not methods:
        resumable = [entry.name for entry in registered_methods() if entry.resumes]
        raise UserError(f"{loaded.source}: search.methods has no {' or '.join(resumable)}: a worker only joins "
                        "the studies of a method that resumes")
    opened = open_storage(storage)  # a wrong URL or password fails now, in one line, before any scenario is built
    assert opened is not None  # not in memory: refused above
    all_cells = loaded.cells
    if cells is not None:
        unknown = sorted(set(cells) - {c.index for c in all_cells})
        if unknown:
            raise UserError(f"worker --cell {unknown[0]}: the experiment has cells 0..{len(all_cells) - 1}")
    rows = []
    for cell in all_cells:
        if cells is not None and cell.index not in cells:
            continue
        scenario = build_scenario(cell.config)
        for method in methods:
            budget = budget_for(loaded, method)
            started = time.perf_counter()
            # the run's options (optuna: the study's directions match) and the cell's study, as `run` has them
            search = make_method(method, **method_options(cell.config, method))
            result = search.run(scenario, budget=budget or None, seed=seed,
                                **run_options(cell, method, budget, storage))
            elapsed_s = time.perf_counter() - started
            name = study_name(cell, method, budget)
            rows.append({"cell": cell.index, "label": cell.label, "method": method, "study": name,
                         "storage": describe(storage), "seed": seed, "trials_run": int(result.info["trials_run"]),
                         "study_trials": _study_trials(opened, name), "elapsed_s": elapsed_s})
    return rows


def _study_trials(storage: BaseStorage, name: str) -> int:
    """Completed trials in the study now (all workers together)."""
    import optuna  # lazily: importing Optuna takes a while

    study = optuna.load_study(study_name=name, storage=storage)
    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def forget_studies(storage: str | None, names: list[str]) -> None:
    """Delete the named studies from `storage` (for `run --force`: start over); absent ones are skipped."""
    opened = open_storage(storage)
    if opened is None:  # in memory: no study outlives its run
        return
    import optuna  # lazily: importing Optuna takes a while

    existing = {s.study_name for s in optuna.get_all_study_summaries(opened, include_best_trial=False)}
    for name in names:
        if name in existing:
            try:
                optuna.delete_study(study_name=name, storage=opened)
            except KeyError:  # another process deleted it first
                pass

