"""`autosplit plan MODEL.onnx` with --data, --calibration or --fp-accuracy: the YAML's accuracy keys as flags,
checked by the same schema, each refusal naming the flag."""
from __future__ import annotations

import json

import pytest
from support import FIXTURES

from simulator.cli import main

MODEL = str(FIXTURES / "digits_cnn.onnx")
SCENARIO = ["--edge", "eyeriss", "--cloud", "tpu_v1", "--uplink", "3Mbps", "--edge-memory", "4MiB",
            "--max-accuracy-drop", "1", "--method", "neurosurgeon"]


def plan(capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["plan", MODEL, *SCENARIO, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_onnx_model_without_data_or_float_accuracy_names_both_flags(capsys):
    code, _, err = plan(capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "--data" in err and "--fp-accuracy" in err


@pytest.mark.parametrize("extra, flag, says", [
    (["--fp-accuracy", "abc"], "--fp-accuracy", "number"),
    (["--fp-accuracy", "0"], "--fp-accuracy", "greater than 0"),
    (["--fp-accuracy", "100.5"], "--fp-accuracy", "100"),
    (["--data", "missing.npz"], "--data", "no such data file"),
    (["--data", MODEL], "--data", ".npz"),
    (["--data", str(FIXTURES / "digits_calibration.npz"), "--fp-accuracy", "90"], "--fp-accuracy", "one of them"),
    (["--calibration", str(FIXTURES / "digits_calibration.npz"), "--fp-accuracy", "90"], "--calibration", "--data"),
])
def test_wrong_accuracy_flags_are_refused_naming_the_flag(capsys, extra, flag, says):
    code, out, err = plan(capsys, *extra)
    assert code == 2 and out == ""
    assert flag in err and says in err and "Traceback" not in err


@pytest.mark.slow
def test_float_accuracy_gives_a_plan_predicted_from_it(capsys):
    code, out, _ = plan(capsys, "--fp-accuracy", "95", "--format", "json")
    assert code == 0
    answer = json.loads(out)
    assert answer["accuracy"] <= 95.0 and answer["model"] == "digits_cnn"


@pytest.mark.slow
def test_data_gives_a_plan_whose_accuracy_is_measured_once_and_reused(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOSPLIT_CACHE", str(tmp_path))  # empty: other tests may have measured these files
    code, out, err = plan(capsys, "--data", str(FIXTURES / "digits.npz"), "--format", "json", "--progress")
    assert code == 0
    first = json.loads(out)
    assert "measuring" in err  # the progress bar, on stderr only
    code, out, err = plan(capsys, "--data", str(FIXTURES / "digits.npz"), "--format", "json", "--progress")
    again = json.loads(out)
    assert code == 0 and again.pop("search_s") > 0 and first.pop("search_s") > 0
    assert again == first
    assert "measuring" not in err  # the fitted proxy came from the measurement cache: nothing measured
