"""How the cells of a sweep run: one after another in this process (`executor: serial`, the default), in a pool
of worker processes on this machine, one per core (`executor: processes`), or fanned out over a
dask.distributed cluster (`executor: dask`): a LocalCluster on this machine by default, or the scheduler at
`scheduler: tcp://host:port` (workers started with `dask worker tcp://host:port` on any machine where autosplit
is installed).

Whichever executor runs them, a cell's methods get the same seeds and their results go through the same
checkpoints and the same table writer, so the results directory is the same. Only this process writes
files: a worker (process or Dask) returns its cell's outcomes and this process checkpoints them as they
arrive, so workers need no shared file system, and `--resume` sends out only the (cell, method) runs that have
no checkpoint.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardware_models.errors import UserError
from simulator import atomic
from simulator.experiment.cells import (
    CellRun,
    PreparedCell,
    Progress,
    cell_info_path,
    checkpoint_fingerprint,
    checkpoint_path,
    load_checkpoint,
    run_cell,
    run_method_in_cell,
    scenario_info,
    write_checkpoint,
)
from simulator.experiment.outcomes import MethodOutcome
from simulator.experiment.scenario import build_scenario
from simulator.experiment.settings import budget_for
from simulator.experiment.sweep import Cell
from simulator.experiment.validated import LoadedExperiment
from simulator.freed_memory import keep_freed_memory


@dataclass(frozen=True)
class PendingRun:
    """One (cell, method) run without a valid checkpoint: what a worker needs to do it."""

    method: str
    budget: dict
    fingerprint: str


def run_cells(loaded: LoadedExperiment, cells: list[PreparedCell], methods: list[str], out_dir: Path,
              storage: str | None, bar: Progress) -> list[CellRun]:
    """Every cell's run, in cell order, by the experiment's executor."""
    if loaded.config.executor != "serial":
        _run_pending_elsewhere(loaded, [p.cell for p in cells], methods, out_dir, storage, bar)
        bar = _NoBar()  # every run is checkpointed now: the serial pass below only reads the checkpoints
    return [run_cell(loaded, prepared, methods, out_dir, storage, bar, len(cells)) for prepared in cells]


def pending_runs(loaded: LoadedExperiment, cell: Cell, methods: list[str], out_dir: Path) -> list[PendingRun]:
    """The (cell, method) runs whose checkpoint is missing or was made from other inputs."""
    seed = loaded.config.seed
    pending = []
    for method in methods:
        budget = budget_for(loaded, method)
        key = checkpoint_fingerprint(cell, method, budget, seed)
        if load_checkpoint(checkpoint_path(out_dir, cell, method), key) is None:
            pending.append(PendingRun(method, budget, key))
    return pending


def run_cell_remotely(cell: Cell, pending: list[PendingRun], seed: int, storage: str | None,
                      max_rows: int) -> tuple[int, dict[str, Any], dict[str, MethodOutcome]]:
    """In a worker process or on a Dask worker: build the cell's scenario once and run its pending methods.

    Returns (cell index, the cell's info, {method: MethodOutcome}); writes nothing.
    """
    keep_freed_memory()  # Dask's nanny freezes glibc's mmap threshold low: 7x slower cost tables without this
    scenario = build_scenario(cell.config)
    info = scenario_info(scenario)
    outcomes = {run.method: run_method_in_cell(run.method, scenario, cell, run.budget, seed, storage, max_rows,
                                               run.fingerprint)
                for run in pending}
    return cell.index, info, outcomes


def _run_pending_elsewhere(loaded: LoadedExperiment, cells: list[Cell], methods: list[str], out_dir: Path,
                           storage: str | None, bar: Progress) -> None:
    """Run the cells' pending (cell, method) runs in worker processes or on Dask, checkpointing each cell's
    outcomes as they arrive."""
    work = {cell.index: pending_runs(loaded, cell, methods, out_dir) for cell in cells}
    bar.update(sum(len(methods) - len(p) for p in work.values()))
    todo = [cell for cell in cells if work[cell.index]]
    if not todo:
        return
    by_index = {cell.index: cell for cell in cells}

    def checkpoint(index: int, info: dict[str, Any], outcomes: dict[str, MethodOutcome]) -> None:
        cell = by_index[index]
        atomic.write_text(cell_info_path(out_dir, cell), json.dumps(info))
        for method, outcome in outcomes.items():
            write_checkpoint(checkpoint_path(out_dir, cell, method), outcome)
        bar.update(len(outcomes))

    arguments = {cell.index: (cell, work[cell.index], loaded.config.seed, storage, loaded.config.output.max_plan_rows)
                 for cell in todo}
    if loaded.config.executor == "processes":
        # one single-threaded process per core (the evaluation is numpy; the GIL would serialise threads)
        workers = max(1, min(len(todo), os.cpu_count() or 1))
        bar.set_description(f"{len(todo)} cell(s) in {workers} worker process(es)")
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for done in as_completed([pool.submit(run_cell_remotely, *arguments[cell.index]) for cell in todo]):
                checkpoint(*done.result())
        return
    from dask.distributed import as_completed as dask_completed  # lazily: Dask is optional and slow to import

    with _client(loaded.config.scheduler, len(todo)) as client:
        bar.set_description(f"dask: {len(todo)} cell(s) on {len(client.scheduler_info().get('workers', {}))} "
                            "worker(s)")
        futures = [client.submit(run_cell_remotely, *arguments[cell.index],
                                 key=f"autosplit-cell-{cell.index}-{os.getpid()}", pure=False) for cell in todo]
        for future in dask_completed(futures):
            checkpoint(*future.result())


@contextlib.contextmanager
def _client(scheduler: str | None, cell_count: int) -> Iterator[Any]:
    """A Dask client on the scheduler at `scheduler`, or on a LocalCluster that lives for this run."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UserError("executor dask: dask.distributed is not installed (pip install 'autosplit[scale]')") from None
    if scheduler:
        try:
            client = Client(scheduler)  # waits distributed.comm.timeouts.connect (30 s by default)
        except (OSError, TimeoutError) as exc:
            raise UserError(f"scheduler {scheduler}: cannot connect: {' '.join(str(exc).split())[:200]}") from None
        try:
            yield client
        finally:
            client.close()
        return
    # one single-threaded worker process per core (the evaluation is numpy; the GIL would serialise threads),
    # never more workers than cells
    workers = max(1, min(cell_count, os.cpu_count() or 1))
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            yield client


class _NoBar:
    """Progress that nobody sees."""

    def set_description(self, text: str) -> None:
        pass

    def update(self, count: int = 1) -> None:
        pass
