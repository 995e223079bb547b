"""Issue 24's example and edges: experiments/pi5_l4_wifi.yaml runs and its answer is the one its description
gives; a Jetson GPU edge and a CPU edge each run in an experiment."""
from __future__ import annotations

import pandas as pd
import pytest
import yaml
from support import EXPERIMENTS, an_experiment, write_yaml

from simulator.cli import main


@pytest.mark.slow
def test_the_pi5_example_runs_and_its_answer_moves_with_the_edges_speed(tmp_path, capsys):
    out = tmp_path / "pi5"
    assert main(["run", str(EXPERIMENTS / "pi5_l4_wifi.yaml"), "--out", str(out),
                 "--set", "output.plot_formats=[]"]) == 0
    capsys.readouterr()
    summary = (out / "summary.md").read_text()
    # edge-only on the Pi 5's four cores; the image goes to the L4 from one core or from a Pi 4
    assert "| 0 | raspberry_pi_5 | edge-u8 |" in summary
    assert "| 1 | raspberry_pi_5@threads=1 | cloud |" in summary
    assert "| 2 | raspberry_pi_4b | cloud |" in summary
    description = yaml.safe_load((EXPERIMENTS / "pi5_l4_wifi.yaml").read_text())["description"]
    assert "depends on" in description


@pytest.mark.slow
@pytest.mark.parametrize("edge", ["jetson_orin_nano", "raspberry_pi_4b@threads=2"])
def test_a_gpu_edge_and_a_cpu_edge_run_in_an_experiment(tmp_path, capsys, edge):
    experiment = an_experiment(edge=edge, cloud="l4", bits={"edge": [8, 16]},
                               search={"methods": ["cloud", "edge-u8", "neurosurgeon"]},
                               output={"plot_formats": []})
    path = write_yaml(tmp_path / "edge.yaml", experiment)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    baselines = pd.read_csv(tmp_path / "out" / "baselines.csv").set_index("method")
    assert baselines.loc["edge-u8", "found"] and baselines.loc["edge-u8", "edge_s"] > 0
    assert edge in (tmp_path / "out" / "summary.md").read_text()


def test_a_cpu_thread_count_in_the_yaml_is_checked_like_any_hardware_name(tmp_path, capsys):
    path = write_yaml(tmp_path / "bad.yaml", an_experiment(edge="raspberry_pi_4b@threads=x"))
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "edge: after '@threads=' expected a whole number" in capsys.readouterr().err


@pytest.mark.slow
def test_a_jetson_edge_answers_a_capacity_question(tmp_path, capsys):
    experiment = an_experiment(edge="jetson_orin_nano", cloud="h100", output={"plot_formats": []},
                               constraints={"edge_memory": "4GiB", "max_accuracy_drop": 1.0})
    experiment["capacity"] = {
        "groups": [{"name": "cams", "plan": {"method": "neurosurgeon"},
                    "arrivals": {"kind": "periodic", "rate": 10, "jitter": "1ms"}, "devices": 50}],
        "gpus": [1], "batching": {"max_batch": 4, "max_wait": "1ms"},
        "uplink": {"sharing": "shared", "devices_per_uplink": 2},
        "slo_p99": "40ms", "gpu_hour_price": 3.0, "duration": "2s", "warmup": "0.5s", "seeds": 1, "plot_points": 2}
    path = write_yaml(tmp_path / "fleet.yaml", experiment)
    assert main(["capacity", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "cams" in capsys.readouterr().out
    assert (tmp_path / "out" / "capacity" / "summary.md").is_file()
