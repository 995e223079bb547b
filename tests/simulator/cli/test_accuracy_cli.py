"""`autosplit accuracy`: DESIGN's JSON keys, per-layer bit lists aligned with inspect, one-line user errors."""
from __future__ import annotations

import json

import pytest
from support import FIXTURES

from simulator.cli import main


def run_json(capsys, *argv):
    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_zoo_model_is_predicted_not_measured_and_float_bits_give_the_reference(capsys):
    out = run_json(capsys, "accuracy", "--model", "resnet18", "--bits", "16/16")
    assert {"model", "fp_accuracy", "predicted_accuracy", "measured_accuracy"} <= set(out)
    assert out["measured_accuracy"] is None
    assert out["predicted_accuracy"] == out["fp_accuracy"] == 69.758
    low = run_json(capsys, "accuracy", "resnet18", "--bits", "4/4", "--tier", "naive")
    assert low["predicted_accuracy"] < out["predicted_accuracy"]
    assert "assumed" in low["distortion_source"]


def test_a_comma_list_gives_one_pair_per_inspect_layer(capsys):
    layers = run_json(capsys, "inspect", "resnet18")["layers"]
    pairs = ["16/16"] * len(layers)
    pairs[0] = "2/2"
    first_low = run_json(capsys, "accuracy", "resnet18", "--bits", ",".join(pairs))
    pairs[0], pairs[5] = "16/16", "2/2"
    middle_low = run_json(capsys, "accuracy", "resnet18", "--bits", ",".join(pairs))
    assert first_low["predicted_accuracy"] < first_low["fp_accuracy"]
    assert middle_low["predicted_accuracy"] < middle_low["fp_accuracy"]
    assert first_low["predicted_accuracy"] != middle_low["predicted_accuracy"]


@pytest.mark.slow
def test_onnx_model_with_data_is_measured(capsys):
    pytest.importorskip("onnxruntime")
    out = run_json(capsys, "accuracy", str(FIXTURES / "digits_cnn.onnx"), "--data", str(FIXTURES / "digits.npz"),
                   "--calibration", str(FIXTURES / "digits_calibration.npz"), "--bits", "2/2")
    assert out["measured_accuracy"] is not None
    assert out["measured_accuracy"] < out["fp_accuracy"] - 20
    assert out["predicted_accuracy"] < out["fp_accuracy"] - 20
    assert "measured" in out["distortion_source"]


@pytest.mark.parametrize("argv, words", [
    (["accuracy", "resnet18", "--bits", "8/8,8/8"], "32 layers"),
    (["accuracy", "resnet18", "--bits", "12/8"], "12"),
    (["accuracy", "resnet18", "--bits", "x/8"], "--bits"),
    (["accuracy", "resnet18", "--data", "missing.npz"], "onnx"),
    (["accuracy", str(FIXTURES / "digits_cnn.onnx")], "--fp-accuracy"),
])
def test_user_mistakes_exit_2_with_one_line(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err
