"""`autosplit run` end to end: the results directory, reproducibility, never overwriting, kill and resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from support import an_experiment

from simulator import atomic
from simulator.cli import main

METHODS = ["cloud", "edge-u8", "neurosurgeon", "qdmp", "autosplit", "optuna"]
SMALL = an_experiment(
    name="small sweep",
    search={"methods": METHODS, "budgets": {"optuna": {"trials": 100}}},
    sweep={"network.uplink": ["1Mbps", "20Mbps"]},
    seed=3,
    output={"max_plan_rows": 60, "plot_formats": ["png"]},
)
TABLES = ("plans.csv", "pareto.csv", "baselines.csv")
NO_PLOTS = ["--set", "output.plot_formats=[]"]  # the tables do not depend on the plots; drawing them costs seconds


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exp") / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def reference(experiment, tmp_path_factory) -> Path:
    """One uninterrupted run of the small sweep."""
    out = tmp_path_factory.mktemp("reference") / "small"
    assert main(["run", str(experiment), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.mark.slow
def test_results_directory_holds_the_files_of_the_design(reference):
    for name in ("config.resolved.yaml", "plans.parquet", "plans.csv", "pareto.csv", "baselines.csv", "summary.md",
                 "pareto.png", "breakdown.png", "bits.png", "sweep.png"):
        assert (reference / name).is_file(), name
    assert not any(p.name.startswith(atomic.TEMP_PREFIX) for p in reference.rglob("*"))
    import matplotlib.image

    for name in ("pareto.png", "breakdown.png", "bits.png", "sweep.png"):
        assert matplotlib.image.imread(reference / name).shape[0] > 200


def test_resolved_config_records_versions_seed_revision_and_cells(reference):
    resolved = yaml.safe_load((reference / "config.resolved.yaml").read_text())
    assert resolved["seed"] == 3 and resolved["reproducible"] is True
    assert resolved["provenance"]["packages"]["numpy"] == np.__version__
    assert resolved["provenance"]["packages"]["optuna"]
    assert "commit" in resolved["provenance"]["git"]
    assert [c["uplink_bps"] for c in resolved["cells"]] == [1e6, 20e6]
    assert resolved["experiment"]["constraints"]["memory_model"] == "peak_live"  # defaults filled in


def test_baselines_have_every_method_in_every_cell_with_speedups(reference):
    baselines = pd.read_csv(reference / "baselines.csv")
    assert len(baselines) == 2 * len(METHODS)
    for _cell, rows in baselines.groupby("cell"):
        assert list(rows["method"]) == METHODS
        cloud = rows[rows["method"] == "cloud"].iloc[0]
        assert cloud["speedup_vs_cloud"] == pytest.approx(1.0)
        found = rows[rows["found"]]
        assert np.allclose(found["speedup_vs_cloud"], cloud["latency_s"] / found["latency_s"])
        assert np.allclose(found["latency_s"], found["edge_s"] + found["transfer_s"] + found["cloud_s"], rtol=1e-9)
        for method in ("autosplit", "optuna"):
            chosen = rows[rows["method"] == method].iloc[0]
            if chosen["found"]:
                assert chosen["feasible"] and chosen["accuracy_drop"] <= 1.0 + 1e-9
    # a faster uplink never makes cloud-only slower
    cloud = baselines[baselines["method"] == "cloud"].sort_values("uplink_bps")["latency_s"].to_numpy()
    assert np.all(np.diff(cloud) < 0)


def test_plans_are_capped_and_keep_every_chosen_plan(reference):
    plans = pd.read_parquet(reference / "plans.parquet")
    csv = pd.read_csv(reference / "plans.csv")
    baselines = pd.read_csv(reference / "baselines.csv")
    assert len(plans) == len(csv) <= 60
    assert (plans["kept_as"] == "chosen").sum() == baselines["found"].sum()
    row = plans[plans["kept_as"] == "chosen"].iloc[-1]
    assert len(row["edge_layers"]) == len(row["activation_bits"]) == len(row["weight_bits"])
    assert json.loads(csv[csv["kept_as"] == "chosen"].iloc[-1]["edge_layers"]) == list(row["edge_layers"])
    summary = (reference / "summary.md").read_text()
    assert "the cap is 60 rows" in summary


def test_pareto_table_is_non_dominated_and_within_the_bounds(reference):
    pareto = pd.read_csv(reference / "pareto.csv")
    assert len(pareto)
    for _, front in pareto.groupby("cell"):
        points = front[["latency_s", "accuracy_drop"]].to_numpy()
        for p in points:
            dominated = np.all(points <= p, axis=1) & np.any(points < p, axis=1)
            assert not dominated.any()
        assert (front["edge_memory_bytes"] <= front["edge_memory_limit_bytes"]).all()
        assert (front["accuracy_drop"] <= front["max_accuracy_drop"] + 1e-9).all() and front["feasible"].all()


def test_summary_names_the_scenario_and_every_method(reference):
    summary = (reference / "summary.md").read_text()
    assert "small sweep" in summary and "resnet18" in summary and "eyeriss" in summary
    for method in SMALL["search"]["methods"]:
        assert f"| {method} |" in summary
    assert "Where the time goes" in summary
    assert "identical tables" in summary


@pytest.mark.slow
def test_same_yaml_and_seed_with_trial_budgets_give_identical_tables(experiment, reference, tmp_path):
    again = tmp_path / "again"
    assert main(["run", str(experiment), "--out", str(again), "--no-progress", *NO_PLOTS]) == 0
    for name in TABLES:
        assert (again / name).read_bytes() == (reference / name).read_bytes(), name
    pd.testing.assert_frame_equal(pd.read_parquet(again / "plans.parquet"), pd.read_parquet(reference / "plans.parquet"))


def test_existing_results_are_never_overwritten_without_force(experiment, reference, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in reference.iterdir() if p.is_file() and p.name != ".autosplit.lock"}
    # the same experiment again: its results are shown, nothing is computed or written
    assert main(["run", str(experiment), "--out", str(reference), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "already holds this experiment's results" in captured.err and " cloud " in captured.out
    # another experiment (another seed) into the same directory: refused, naming what differs
    assert main(["run", str(experiment), "--out", str(reference), "--no-progress", "--set", "seed=7"]) == 2
    message = capsys.readouterr().err
    assert str(reference) in message and "--force" in message and "seed" in message
    assert {p.name: p.stat().st_mtime_ns for p in reference.iterdir() if p.is_file() and p.name in before} == before
    assert main(["run", str(experiment), "--out", str(reference), "--force", "--resume"]) == 2


def _complete(path: Path) -> None:
    """Raises unless `path` is a whole file of its kind."""
    if path.suffix == ".csv":
        pd.read_csv(path)
    elif path.suffix == ".parquet":
        pd.read_parquet(path)
    elif path.suffix == ".yaml":
        assert isinstance(yaml.safe_load(path.read_text()), dict)
    elif path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".pkl":
        import pickle

        pickle.loads(path.read_bytes())
    elif path.suffix == ".png":
        import matplotlib.image

        matplotlib.image.imread(path)
    elif path.suffix == ".md":
        assert path.read_text().endswith("\n")


@pytest.mark.slow
def test_a_killed_run_leaves_no_partial_file_and_resume_finishes_it(experiment, reference, tmp_path, capsys):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "simulator.cli", "run", str(experiment), "--out", str(out),
                                "--no-progress", *NO_PLOTS], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    first = out / ".checkpoints" / "cell-0000"
    deadline = time.monotonic() + 120
    try:
        while not (first.is_dir() and any(p.suffix == ".pkl" for p in first.iterdir())):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the run never checkpointed"
            time.sleep(0.005)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (out / "summary.md").exists(), "the run finished before it was killed"
    finals = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(atomic.TEMP_PREFIX)]
    assert finals
    for path in finals:
        _complete(path)
    # a plain rerun of the same experiment resumes it (as --resume does) and finishes the same tables
    assert main(["run", str(experiment), "--out", str(out), "--no-progress", *NO_PLOTS]) == 0
    assert "resuming it" in capsys.readouterr().err
    assert not any(p.name.startswith(atomic.TEMP_PREFIX) for p in out.rglob("*"))
    for name in TABLES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_atomic_write_leaves_neither_file_nor_temporary_when_the_writer_fails(tmp_path):
    target = tmp_path / "table.csv"

    def broken(path: Path) -> None:
        path.write_text("half a ta")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic.write_with(target, broken)
    assert list(tmp_path.iterdir()) == []
    atomic.write_text(target, "a,b\n1,2\n")
    assert target.read_text() == "a,b\n1,2\n" and list(tmp_path.iterdir()) == [target]


@pytest.mark.slow
@pytest.mark.parametrize("failing_write", [2, 9])
def test_a_full_disk_ends_in_one_line_and_the_same_command_finishes_the_same_tables(
        experiment, reference, tmp_path, capsys, monkeypatch, failing_write):
    """Fault injection (issue 25): the disk fills at the Nth file written (a checkpoint, a table, a figure)."""
    out = tmp_path / "full"
    real_fsync = os.fsync
    writes = {"count": 0}

    def fsync(fd: int) -> None:
        writes["count"] += 1
        if writes["count"] >= failing_write:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    assert main(["run", str(experiment), "--out", str(out), "--no-progress", *NO_PLOTS]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "No space left on device" in line and "nothing written before was lost" in line
    assert not any(p.name.startswith(atomic.TEMP_PREFIX) for p in out.rglob("*")) if out.exists() else True
    monkeypatch.setattr(atomic.os, "fsync", real_fsync)
    assert main(["run", str(experiment), "--out", str(out), "--no-progress", *NO_PLOTS]) == 0
    for name in TABLES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_summary_names_which_accuracy_each_column_is_and_sizes_read_as_written(reference, capsys):
    """Issue 25: the expected accuracy and the bound's end are named apart; sizes in the unit a user writes."""
    from simulator.report.summary import _points, _size

    summary = (reference / "summary.md").read_text()
    assert "| expected accuracy (%) | 80% interval | drop at the bound's end (pt) |" in summary
    assert "edge memory 4 MiB" in summary and "at most 1 percentage point (" in summary
    assert _size(16 * 2**10) == "16 KiB" and _size(1.5 * 2**30) == "1.5 GiB" and _size(100) == "100 B"
    assert _points(1) == "1 percentage point" and _points(0.5) == "0.5 percentage points"


def test_the_run_commands_rows_name_the_expected_accuracy_and_the_bounds_end(experiment, reference, capsys):
    assert main(["run", str(experiment), "--out", str(reference), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["plans"]
    assert rows and all({"accuracy_expected", "accuracy_at_bound"} <= set(r) for r in rows)
    assert all(r["accuracy_at_bound"] <= r["accuracy_expected"] + 1e-9 for r in rows)
