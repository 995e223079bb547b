"""What an experiment asks of its sweep cells: which methods run (the speed-up references first) with which
budgets and options, the Optuna study of each cell in a shared storage, and where the results go."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from simulator.experiment.schema import Experiment
from simulator.experiment.sweep import Cell
from simulator.experiment.validated import LoadedExperiment
from simulator.search import registered
from simulator.search.optuna_storage import open_storage

# Methods always run (cheap) because the summary states speed-ups against them.
REFERENCE_METHODS = ("cloud", "edge-u8")


def methods_to_run(loaded: LoadedExperiment) -> list[str]:
    """The requested methods, after the reference methods that were not requested."""
    requested = list(loaded.config.search.methods)
    return [m for m in REFERENCE_METHODS if m not in requested] + requested


def budget_for(loaded: LoadedExperiment, method: str) -> dict:
    """`method`'s budget from `search.budgets` in SI units ({} when none is given)."""
    budget = loaded.config.search.budgets.get(method)
    return budget.as_dict() if budget is not None else {}


def reproducible(loaded: LoadedExperiment) -> bool:
    """True unless some method runs on a wall-clock budget."""
    return not any("seconds" in budget_for(loaded, m) for m in methods_to_run(loaded))


def default_out_dir(loaded: LoadedExperiment) -> Path:
    """`output.dir`, else results/<experiment file stem>."""
    return Path(loaded.config.output.dir) if loaded.config.output.dir else Path("results") / loaded.stem


def method_options(config: Experiment, method: str) -> dict[str, Any]:
    """What the YAML gives `method`'s constructor: the fields of its registered options model
    (`search.<method>`, e.g. optuna's sampler and objectives); {} for a method without options."""
    options = config.search.options(method)
    return {} if options is None else dict(options)


def resuming_methods(methods: list[str]) -> list[str]:
    """Those of `methods` whose runs live in a study other processes may resume or join (`autosplit worker`)."""
    return [m for m in methods if registered(m).resumes]


def run_options(cell: Cell, method: str, budget: dict, storage: str | None) -> dict[str, Any]:
    """What `method`'s run in `cell` takes besides its budget and seed: for a method that resumes (optuna),
    with a shared storage, the storage (opened here, on whichever machine runs the method) and the cell's
    study name; `autosplit run` and every `autosplit worker` build them here, so they join the same study."""
    if not registered(method).resumes or not storage:
        return {}
    return {"storage": open_storage(storage), "study_name": study_name(cell, method, budget)}


def study_name(cell: Cell, method: str, budget: dict) -> str:
    """The Optuna study of a method in a cell in a shared storage: the same for `run`, `run --resume` and every
    `worker` (whatever their seeds), different for another scenario, method or budget."""
    return f"autosplit-cell{cell.index}-{fingerprint(cell.config, ('sweep', 'seed'), 12, method=method, budget=budget)}"


# keys that change where and how results are written, not what they are
NOT_FINGERPRINTED = frozenset({"output", "name", "description", "storage", "executor", "scheduler"})


def fingerprint(config: Experiment, leave_out: tuple[str, ...] = (), length: int = 16, **inputs: Any) -> str:
    """A short hash of what results made from `config` depend on: its keys except NOT_FINGERPRINTED and
    `leave_out`, and the `inputs` beside it (method, budget, seed). A results directory, a (cell, method)
    checkpoint and a shared Optuna study are each reused only under the same fingerprint. (With `inputs` the
    config is hashed under the key "cell", as before this helper: earlier results keep their fingerprints.)"""
    kept = config.model_dump(mode="json", exclude=set(NOT_FINGERPRINTED | set(leave_out)))
    text = json.dumps({"cell": kept, **inputs} if inputs else kept, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
