"""`autosplit layer-cost` on systolic arrays: DESIGN.md's JSON shape, SCALE-Sim inputs, one-line user errors."""
from __future__ import annotations

import json

import pytest
from support import SCALESIM_REFERENCE

from simulator.cli import main

REFERENCE_DIR = SCALESIM_REFERENCE
ROW_KEYS = {"name", "compute_cycles", "stall_cycles", "total_cycles", "latency_s", "energy_j", "dram_bytes"}


def run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_layer_cost_of_a_zoo_model_has_a_row_per_layer_and_their_total(capsys):
    data = run_json(capsys, "layer-cost", "--hardware", "eyeriss", "--model", "resnet18", "--bits", "4/8")
    assert data["hardware"] == "eyeriss" and (data["weight_bits"], data["activation_bits"]) == (4, 8)
    assert data["layers"] and all(ROW_KEYS <= set(row) for row in data["layers"])
    assert ROW_KEYS <= set(data["total"])
    for key in ("compute_cycles", "stall_cycles", "latency_s", "energy_j", "dram_bytes"):
        assert data["total"][key] == pytest.approx(sum(row[key] for row in data["layers"]))
    assert data["total"]["energy_j"] > 0


def test_layer_cost_accepts_scalesim_cfg_and_topology(capsys):
    data = run_json(capsys, "layer-cost", "--hardware", str(REFERENCE_DIR / "configs" / "eyeriss_ws.cfg"),
                    "--topology", str(REFERENCE_DIR / "topologies" / "resnet18.csv"))
    names = [line.split(",")[0] for line in (REFERENCE_DIR / "topologies" / "resnet18.csv").read_text().splitlines()[1:]]
    assert [row["name"] for row in data["layers"]] == names
    assert all(row["stall_cycles"] == 0 for row in data["layers"])  # CALC mode: stall-free, like SCALE-Sim


def test_fewer_bits_in_the_cli_move_fewer_bytes(capsys):
    eight = run_json(capsys, "layer-cost", "--hardware", "eyeriss", "--model", "mobilenet_v2", "--bits", "8")
    four = run_json(capsys, "layer-cost", "--hardware", "eyeriss", "--model", "mobilenet_v2", "--bits", "4/4")
    assert four["total"]["dram_bytes"] < eight["total"]["dram_bytes"]
    assert four["total"]["compute_cycles"] == eight["total"]["compute_cycles"]


@pytest.mark.parametrize("argv, words", [
    (["--hardware", "eyeris", "--model", "resnet18"], "eyeriss"),
    (["--hardware", "eyeriss", "--model", "resnet18", "--bits", "4/x"], "--bits"),
    (["--hardware", "eyeriss", "--model", "resnet18", "--bits", "3"], "supported"),
    (["--hardware", "eyeriss"], "MODEL"),
    (["--hardware", "nothing.cfg", "--model", "resnet18"], "nothing.cfg"),
])
def test_layer_cost_user_errors_exit_2_with_one_line(capsys, argv, words):
    assert main(["layer-cost", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err
