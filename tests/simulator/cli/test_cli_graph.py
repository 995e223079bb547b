"""`autosplit models` and `autosplit inspect`: the JSON contract of DESIGN.md and user errors."""
import json
import subprocess
import sys

from simulator.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_the_zoo_with_params_and_macs(capsys):
    code, out, _ = run(capsys, "models", "--format", "json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and len(rows) == 13
    assert rows["resnet50"]["params"] == 25_557_032 and rows["resnet50"]["macs"] == 4_089_184_256
    assert rows["vit_b_16"]["params"] == 86_567_656 and rows["vit_b_16"]["macs"] == 17_563_828_224
    assert set(rows["vgg16"]) >= {"name", "params", "macs", "layers"}


def test_inspect_cuts_json_has_the_contract_keys_and_multi_tensor_cuts(capsys):
    code, out, _ = run(capsys, "inspect", "resnet50", "--cuts", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["model"] == "resnet50"
    assert set(data["layers"][0]) >= {"name", "op", "inputs", "output_shape", "params", "macs"}
    assert data["layers"][0]["output_shape"] == [1, 64, 112, 112]
    assert set(data["cuts"][0]) >= {"index", "after", "tensors", "elements"}
    assert any(len(c["tensors"]) > 1 for c in data["cuts"])
    after_layer1 = next(c for c in data["cuts"] if c["after"] == "layer1.2.add")
    assert [t["elements"] for t in after_layer1["tensors"]] == [802_816]


def test_inspect_without_simplification_shows_batchnorm_and_relu(capsys):
    _, out, _ = run(capsys, "inspect", "--model", "resnet18", "--no-simplify", "--format", "csv")
    assert "bn1,batchnorm" in out and "relu,relu" in out


def test_misspelt_model_exits_2_with_one_line_suggestion():
    result = subprocess.run([sys.executable, "-m", "simulator.cli", "inspect", "resnet5"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "resnet50" in result.stderr and "Traceback" not in result.stderr


def test_usage_errors_exit_2_without_traceback(capsys):
    for args in (["inspect"], ["inspect", "resnet18", "--format", "xml"], ["nonsense"], ["inspect", "missing.onnx"]):
        code, _, err = run(capsys, *args)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, args
