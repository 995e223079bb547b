"""What `autosplit run` refuses or explains before and after it runs (issue 14): an edge-uN the edge cannot run,
--resume into another experiment's directory, a failed run's directory, paths relative to the YAML's folder."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from simulator.cli import main

TINY = {
    "model": "resnet18", "edge": "edge_tpu", "cloud": "tpu_v1",
    "network": {"uplink": "3Mbps", "rtt": "20ms"},
    "constraints": {"edge_memory": "4MiB", "max_accuracy_drop": 1.0},
    "search": {"methods": ["cloud", "edge-u4", "edge-u8"]},
    "output": {"plot_formats": []},
}


def write(folder: Path, data: dict, name: str = "tiny.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    experiment = write(folder, TINY)
    out = folder / "results"
    assert main(["run", str(experiment), "--out", str(out), "--no-progress"]) == 0
    return experiment, out


def test_a_uniform_baseline_the_edge_cannot_run_is_skipped_with_a_note(tiny_run):
    _, out = tiny_run
    baselines = pd.read_csv(out / "baselines.csv").set_index("method")
    assert "edge_tpu runs 8-bit here, not 4-bit" in baselines.loc["edge-u4", "note"]
    assert not baselines.loc["edge-u4", "found"] and baselines.loc["edge-u8", "found"]
    assert "edge-u4 skipped: edge_tpu runs 8-bit here" in (out / "summary.md").read_text()


def test_dry_run_lists_the_skipped_baseline_and_refuses_what_the_run_would(tiny_run, capsys):
    experiment, _ = tiny_run
    code, out, _ = run(capsys, "run", str(experiment), "--dry-run")
    assert code == 0 and "note: cell 0: edge-u4 skipped" in out
    code, _, err = run(capsys, "run", str(experiment), "--dry-run", "--set", "bits.edge=[3]")
    assert code == 2 and "bits.edge: [3] not supported by edge_tpu" in err
    code, _, err = run(capsys, "run", str(experiment), "--dry-run", "--set", "edge=raspberry_pi_4b@threads=9")
    assert code == 2 and "threads: expected a whole number between 1 and 4" in err


def test_resume_refuses_a_directory_of_another_experiment(tiny_run, capsys):
    experiment, out = tiny_run
    code, _, err = run(capsys, "run", str(experiment), "--out", str(out), "--resume", "--set", "seed=7")
    assert code == 2 and err.count("\n") == 1
    assert "holds another experiment's results (differs in: seed)" in err
    # the same experiment resumes (every checkpoint is there: nothing runs again)
    code, _, err = run(capsys, "run", str(experiment), "--out", str(out), "--resume", "--no-progress")
    assert code == 0, err


def test_a_run_that_fails_before_any_result_leaves_no_directory_in_the_way(tmp_path, capsys, monkeypatch):
    from simulator.experiment import executor

    experiment = write(tmp_path, TINY)
    out = tmp_path / "results"

    def broken(*args, **kwargs):
        raise executor.UserError("simulated failure in the first cell")

    monkeypatch.setattr(executor, "run_cell", broken)
    code, _, err = run(capsys, "run", str(experiment), "--out", str(out), "--no-progress")
    assert code == 2 and "simulated failure" in err
    assert not out.exists()


def test_paths_in_an_experiment_are_relative_to_its_folder(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "traces").mkdir()
    (folder / "traces" / "uplink.csv").write_text("time_s, rate_bps\n0, 3Mbps\n1, 1Mbps\n")
    experiment = write(folder, {**TINY, "network": {"trace": "traces/uplink.csv", "rtt": "20ms"}})
    monkeypatch.chdir(tmp_path)  # not the experiment's folder
    code, out, err = run(capsys, "run", str(experiment), "--dry-run", "--format", "json")
    assert code == 0, err
    assert '"uplink_bps": 2000000.0' in out


def test_capacity_with_a_uniform_plan_the_edge_cannot_run_is_one_line(tmp_path, capsys):
    data = {**TINY, "capacity": {"groups": [{"name": "u4", "plan": {"method": "edge-u4"}, "arrivals": {"rate": 15},
                                             "devices": 10}],
                                 "gpu": "h100", "slo_p99": "45ms", "duration": "2s", "warmup": "1s", "seeds": 1}}
    code, _, err = run(capsys, "capacity", str(write(tmp_path, data)), "--out", str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1
    assert "capacity.groups.u4.plan.method: edge-u4: edge_tpu runs 8-bit here, not 4-bit" in err


def test_a_run_whose_stderr_is_not_a_terminal_logs_a_line_per_stage(tmp_path, capsys):
    experiment = write(tmp_path, {**TINY, "search": {"methods": ["cloud"]}})
    code, _, err = run(capsys, "run", str(experiment), "--out", str(tmp_path / "out"))  # capsys: not a tty
    assert code == 0
    stages = [line for line in err.splitlines() if line.startswith("[")]
    assert any("cell 1/1 cloud" in line for line in stages) and any("edge-u8" in line for line in stages)
    assert stages[-1].startswith("[2/2 runs") and "done" in stages[-1]
