"""What scaling out costs and buys: Optuna trials per second on each storage, one vs two `autosplit worker`
processes on one PostgreSQL study, and a sweep run serially vs fanned out over a Dask LocalCluster.

    python benchmarks/scale_throughput.py --postgres postgresql://USER:PASSWORD@127.0.0.1:5432/DB
    python benchmarks/scale_throughput.py --only storage        # no server needed (memory and journal file)

Prints one table per part; figures depend on the machine and its load (say which when quoting them).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.search.optuna_storage import describe, mask_secrets, open_storage  # noqa: E402

EXPERIMENT = {
    "model": "resnet18",
    "edge": "eyeriss",
    "cloud": "tpu_v1",
    "network": {"uplink": "3Mbps", "rtt": "20ms", "link": "tcp"},
    "constraints": {"edge_memory": "4MiB", "max_accuracy_drop": 1.0},
    "search": {"methods": ["optuna"], "budgets": {"optuna": {"trials": 2000}}},
    "seed": 0,
}


def storage_overhead(specs: list[str | None], trials: int, parameters: int) -> list[dict]:
    """Trials per second of ask/tell with `parameters` categorical bit-widths and a free objective: what
    the storage alone costs per trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for spec in specs:
        name = f"bench-storage-{os.getpid()}-{len(rows)}"
        storage = open_storage(spec)
        study = optuna.create_study(storage=storage, study_name=name, directions=["minimize", "minimize"],
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        started = time.perf_counter()
        for _ in range(trials):
            trial = study.ask()
            bits = [trial.suggest_categorical(f"w{i}", [2, 4, 6, 8]) for i in range(parameters)]
            study.tell(trial, [sum(bits), -sum(bits)])
        elapsed_s = time.perf_counter() - started
        rows.append({"storage": describe(spec), "trials": trials, "parameters": parameters,
                     "trials_per_s": trials / elapsed_s, "ms_per_trial": 1e3 * elapsed_s / trials})
        if spec is not None:
            optuna.delete_study(study_name=name, storage=storage)
    return rows


def workers_on_postgres(url: str, counts: list[int], trials: int) -> list[dict]:
    """`autosplit worker` processes on one study: wall time from start to the last worker's exit."""
    import optuna

    from simulator.experiment import settings
    from simulator.experiment.loading import load_experiment
    from simulator.experiment.sweep import expand
    from simulator.experiment.worker import forget_studies

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.yaml"
        content = {**EXPERIMENT, "search": {"methods": ["optuna"], "budgets": {"optuna": {"trials": trials}}}}
        path.write_text(yaml.safe_dump(content))
        loaded = load_experiment(str(path), [])
        name = settings.study_name(expand(loaded)[0], settings.budget_for(loaded, "optuna"))
        for count in counts:
            forget_studies(url, [name])
            started = time.perf_counter()
            processes = [subprocess.Popen([sys.executable, "-m", "simulator.cli", "worker", str(path), "--storage",
                                           url, "--seed", str(seed + 1), "--format", "json"],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
                         for seed in range(count)]
            outputs = [p.communicate() for p in processes]
            elapsed_s = time.perf_counter() - started
            for process, (_out, err) in zip(processes, outputs):
                if process.returncode:
                    raise SystemExit(f"worker failed: {mask_secrets(err)[-2000:]}")
            study = optuna.load_study(study_name=name, storage=open_storage(url))
            complete = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
            per_worker = [json.loads(out)["cells"][0]["trials_run"] for out, _ in outputs]
            rows.append({"workers": count, "trials": complete, "per_worker": per_worker, "wall_s": elapsed_s,
                         "trials_per_s": complete / elapsed_s})
            forget_studies(url, [name])
    return rows


def sweep_serial_vs_dask(experiment: Path, uplinks: list[str]) -> list[dict]:
    """`autosplit run` of `experiment` swept over `uplinks`, serially and on a LocalCluster (one worker per
    core), each in a fresh process, as a user runs it; tables compared."""
    rows = []
    tables = {}
    with tempfile.TemporaryDirectory() as folder:
        for executor in ("serial", "dask"):
            out = Path(folder) / executor
            command = [sys.executable, "-m", "simulator.cli", "run", str(experiment), "--out", str(out),
                       "--no-progress", "--set", f"sweep={{network.uplink: [{', '.join(uplinks)}]}}",
                       "--set", "output.plot_formats=[]", "--set", f"executor={executor}"]
            started = time.perf_counter()
            subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
            elapsed_s = time.perf_counter() - started
            tables[executor] = [(out / name).read_bytes() for name in ("plans.csv", "pareto.csv", "baselines.csv")]
            rows.append({"executor": executor, "cells": len(uplinks), "wall_s": elapsed_s,
                         "cells_per_s": len(uplinks) / elapsed_s})
    for row in rows:
        row["same_tables"] = tables["dask"] == tables["serial"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("AUTOSPLIT_TEST_POSTGRES"),
                        help="PostgreSQL URL (default: $AUTOSPLIT_TEST_POSTGRES)")
    parser.add_argument("--only", choices=["storage", "workers", "sweep"], action="append")
    parser.add_argument("--trials", type=int, default=2000, help="trials per study for the worker part")
    parser.add_argument("--experiment", default=str(ROOT / "experiments" / "quickstart.yaml"))
    args = parser.parse_args()
    parts = args.only or ["storage", "workers", "sweep"]
    print(f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    if "storage" in parts:
        with tempfile.TemporaryDirectory() as folder:
            specs = [None, str(Path(folder) / "bench.log")] + ([args.postgres] if args.postgres else [])
            _print("storage cost per trial (ask/tell, 20 categorical parameters, free objective)",
                   storage_overhead(specs, trials=100, parameters=20))
    if "workers" in parts and args.postgres:
        _print(f"autosplit worker processes on one PostgreSQL study ({args.trials} trials, resnet18)",
               workers_on_postgres(args.postgres, [1, 2], args.trials))
    if "sweep" in parts:
        _print(f"{Path(args.experiment).name} swept over 4 uplinks: serial vs Dask LocalCluster",
               sweep_serial_vs_dask(Path(args.experiment), ["1Mbps", "3Mbps", "10Mbps", "20Mbps"]))


def _print(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    if not rows:
        return
    keys = list(rows[0])
    print("  ".join(f"{k:>14}" for k in keys))
    for row in rows:
        print("  ".join(f"{v:>14.4g}" if isinstance(v, float) else f"{str(v):>14}" for k, v in row.items()))


if __name__ == "__main__":
    main()
