"""Inputs that would explode (issue 25): each is refused in one line, within seconds and bounded memory, with the
estimate and the key to change, before anything large is allocated."""
from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest
from support import an_experiment, write_yaml

from simulator.cli import main

NESTED_ALIASES = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]" for p, n in zip("abcdefgh", "bcdefghi")]
)


def _one_line_error(capsys, argv: list[str], seconds: float = 10.0) -> str:
    """Run the CLI; assert exit 2 with one line on stderr within `seconds`; return that line."""
    start = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - start < seconds
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path, capsys):
    path = tmp_path / "bomb.yaml"
    path.write_text(NESTED_ALIASES)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = _one_line_error(capsys, ["run", str(path), "--dry-run"])
    assert str(path) in line and "aliases expand to 1.23e+09 values" in line
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: nothing expanded


def test_a_few_aliases_still_work(tmp_path, capsys):
    text = write_yaml(tmp_path / "exp.yaml", an_experiment()).read_text()
    path = tmp_path / "aliased.yaml"
    path.write_text(text.replace("cloud: tpu_v1", "cloud: &c tpu_v1\nname_of_cloud_again: *c").replace(
        "name_of_cloud_again: *c\n", ""))
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "tpu_v1" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["run", "ENDLESS", "--dry-run"],
                                  ["netsim", "--uplink", "3Mbps", "--trace", "ENDLESS"],
                                  ["layer-cost", "--hardware", "ENDLESS", "--model", "resnet18"]])
def test_an_endless_file_is_refused_by_size(tmp_path, capsys, argv):
    endless = tmp_path / "endless.yaml"
    endless.symlink_to("/dev/zero")
    line = _one_line_error(capsys, [str(endless) if a == "ENDLESS" else a for a in argv])
    assert f"{endless}: larger than" in line


def test_a_sweep_of_a_million_cells_is_refused_with_its_size(tmp_path, capsys):
    sweep = {"network.uplink": [f"{i}Mbps" for i in range(1, 101)],
             "network.rtt": [f"{i}ms" for i in range(1, 101)], "seed": list(range(100))}
    path = write_yaml(tmp_path / "exp.yaml", an_experiment(sweep=sweep))
    line = _one_line_error(capsys, ["run", str(path), "--dry-run"])
    assert "sweep" in line and "100 network.uplink x 100 network.rtt x 100 seed = 1,000,000 cells" in line


def test_a_sweep_just_inside_the_bound_is_accepted(tmp_path, capsys):
    path = write_yaml(tmp_path / "exp.yaml", an_experiment(sweep={"seed": list(range(3))}))
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "3 cell(s)" in capsys.readouterr().out


def test_bounds_are_the_documented_constants():
    from hardware_models.yaml_io import MAX_YAML_BYTES, MAX_YAML_NODES
    from simulator.experiment.limits import MAX_SWEEP_CELLS
    assert MAX_YAML_NODES < 1e9 and MAX_YAML_BYTES < 2**30 and MAX_SWEEP_CELLS < 1e6
    assert Path(__file__).exists()


CAPACITY = {"slo_p99": "200ms", "duration": "10s", "warmup": "1s", "seeds": 1,
            "groups": [{"name": "cams", "plan": {"method": "cloud"}, "arrivals": {"rate": 10}, "devices": 4}]}


@pytest.mark.parametrize("change, words", [
    ({"devices": 1_000_000_000}, ["fleet", "1e+11 frames per simulated run"]),
    ({"arrivals": {"rate": 1e9}, "devices": 0}, ["one device's arrivals.rate x duration", "1e+10 frames"]),
])
def test_a_fleet_too_large_to_simulate_is_refused_with_its_estimate(tmp_path, capsys, change, words):
    capacity = {**CAPACITY, "groups": [{**CAPACITY["groups"][0], **change}]}
    path = write_yaml(tmp_path / "exp.yaml", an_experiment(capacity=capacity))
    line = _one_line_error(capsys, ["capacity", str(path), "--out", str(tmp_path / "out")])
    assert "capacity" in line and all(word in line for word in words), line
    assert not (tmp_path / "out").exists()


def test_a_long_run_of_many_seeds_is_refused_per_run_not_per_seed(tmp_path, capsys):
    capacity = {**CAPACITY, "duration": "3600s", "seeds": 100,
                "groups": [{**CAPACITY["groups"][0], "devices": 1000, "arrivals": {"rate": 30}}]}
    path = write_yaml(tmp_path / "exp.yaml", an_experiment(capacity=capacity))
    assert "1.08e+08 frames per simulated run" in _one_line_error(capsys, ["capacity", str(path), "--out",
                                                                           str(tmp_path / "out")])


@pytest.mark.parametrize("key, value, words", [
    ("clock", "1e-6", ["clock: expected a clock in Hz between 1000 and 1e+11", "1e-6"]),
    ("clock", "202.381", ["clock in Hz", "the unit may be missing"]),
    ("dram_bandwidth", "1", ["dram_bandwidth: expected a bandwidth in bytes/s"]),
])
def test_an_implausible_preset_figure_is_refused_with_the_reason(tmp_path, capsys, key, value, words):
    from support import REPO
    text = (REPO / "hardware_models" / "presets" / "eyeriss.yaml").read_text()
    lines = [f"{key}: {value}" if line.startswith(f"{key}:") else line for line in text.splitlines()]
    preset = tmp_path / "typo.yaml"
    preset.write_text("\n".join(lines) + "\n")
    line = _one_line_error(capsys, ["layer-cost", "--hardware", str(preset), "--model", "resnet18"])
    assert str(preset) in line and all(word in line for word in words), line


@pytest.mark.parametrize("nodes", [[], [("Identity", "x", "y")]])
def test_an_onnx_model_that_computes_nothing_is_refused_before_a_run_starts(tmp_path, capsys, nodes):
    """Issue 25: no layers used to end in an IndexError, an Identity alone in a math domain error that left a
    half-written results directory."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    out = helper.make_tensor_value_info("y" if nodes else "x", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node(op, [i], [o]) for op, i, o in nodes], "m", [x], [out])
    model = tmp_path / "nothing.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), model)
    experiment = write_yaml(tmp_path / "exp.yaml", an_experiment(model=str(model), accuracy={"fp_accuracy": 80}))
    line = _one_line_error(capsys, ["run", str(experiment), "--out", str(tmp_path / "out")])
    assert "nothing is computed, so there is nothing to split" in line
    assert not (tmp_path / "out").exists()
    assert "nothing to split" in _one_line_error(capsys, ["inspect", str(model)])


def test_methods_that_chose_one_plan_are_labelled_as_such_a_few_names_a_line():
    """Issue 25: six methods at one point used to share one long label ("cloud, neurosurgeon, dads, ...")."""
    from simulator.report.plots import shared_label

    assert shared_label(["exact"]) == "exact"
    label = shared_label(["cloud", "neurosurgeon", "dads", "qdmp", "autosplit", "optuna"])
    assert label == "same plan (6 methods):\ncloud, neurosurgeon, dads,\nqdmp, autosplit, optuna"
