"""How a run's data flows (issue 26): each cell's expansion, record, link, model and scenario are built once a
run, whatever reads them (the checks before the run, config.resolved.yaml, the methods, the tables), and the
CLI reports the run's own result instead of reading its tables back."""
from __future__ import annotations

import collections
import functools

import pandas as pd
import pytest
import yaml

from simulator.cli import main

TWO_CELLS = {
    "model": "resnet18", "edge": "edge_tpu", "cloud": "tpu_v1",
    "network": {"uplink": "3Mbps", "rtt": "20ms"},
    "constraints": {"edge_memory": "4MiB", "max_accuracy_drop": 1.0},
    "search": {"methods": ["cloud", "edge-u8", "neurosurgeon"]},
    "sweep": {"network.uplink": ["3Mbps", "20Mbps"]},
    "output": {"plot_formats": []},
}


@pytest.fixture
def counted(monkeypatch) -> collections.Counter:
    """Calls of the functions that build a cell's data, wherever the pipeline calls them from."""
    from simulator import evaluate
    from simulator.experiment import cells, executor, loading, scenario

    calls: collections.Counter = collections.Counter()

    def count(module, name: str) -> None:
        original = getattr(module, name)

        @functools.wraps(original)
        def counting(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)

    count(loading, "expand")
    for module in (cells, executor):
        count(module, "build_scenario")
    count(cells, "cell_record")
    for module in (cells, scenario):
        count(module, "build_link")
    for module in (evaluate, scenario):  # the scenario's graph (the accuracy data's own cached graphs aside)
        count(module, "load_model")
    return calls


def _experiment(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(TWO_CELLS, sort_keys=False))
    return path


@pytest.mark.slow
def test_a_run_builds_each_cells_data_once(tmp_path, counted, capsys):
    assert main(["run", str(_experiment(tmp_path)), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert counted == {"expand": 1, "build_scenario": 2, "cell_record": 2, "build_link": 2, "load_model": 2}


def test_a_dry_run_builds_each_cells_data_once(tmp_path, counted, capsys):
    assert main(["run", str(_experiment(tmp_path)), "--dry-run", "--format", "json"]) == 0
    assert counted == {"expand": 1, "build_scenario": 2, "cell_record": 2, "build_link": 2, "load_model": 2}


@pytest.mark.slow
def test_run_reports_its_own_result_without_reading_its_tables_back(tmp_path, monkeypatch, capsys):
    from simulator.experiment.loading import load_experiment
    from simulator.experiment.runner import run_experiment

    loaded = load_experiment(_experiment(tmp_path))
    result = run_experiment(loaded, tmp_path / "out", show_progress=False)
    written = pd.read_csv(tmp_path / "out" / "baselines.csv")
    assert [c.record["uplink_bps"] for c in result.cells] == [3e6, 20e6]
    assert list(result.baselines["method"]) == list(written["method"])
    pd.testing.assert_series_equal(result.baselines["latency_s"], written["latency_s"])

    def no_reading_back(*args, **kwargs):
        raise AssertionError("the run's tables were read back")

    monkeypatch.setattr(pd, "read_csv", no_reading_back)
    assert main(["run", str(_experiment(tmp_path)), "--out", str(tmp_path / "again"), "--no-progress",
                 "--format", "json"]) == 0
    assert '"method": "neurosurgeon"' in capsys.readouterr().out


@pytest.mark.slow
def test_worker_processes_give_the_serial_tables(tmp_path, capsys):
    """`executor: processes` runs the cells in a process pool; the tables are the serial run's, byte for byte."""
    experiment = tmp_path / "sweep.yaml"
    experiment.write_text(yaml.safe_dump({**TWO_CELLS, "search": {
        "methods": ["cloud", "edge-u8", "autosplit", "optuna"], "budgets": {"optuna": {"trials": 20}}}},
        sort_keys=False))
    serial, pooled = tmp_path / "serial", tmp_path / "pooled"
    assert main(["run", str(experiment), "--out", str(serial), "--no-progress"]) == 0
    assert main(["run", str(experiment), "--out", str(pooled), "--no-progress", "--set", "executor=processes"]) == 0
    for name in ("plans.csv", "pareto.csv", "baselines.csv"):
        assert (serial / name).read_bytes() == (pooled / name).read_bytes(), name
    assert len(pd.read_csv(pooled / "timings.csv")) == 2 * 4
