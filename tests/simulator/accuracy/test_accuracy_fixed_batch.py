"""Measured accuracy of ONNX models exported with a fixed batch, and data of the wrong shape (issue 14)."""
from pathlib import Path

import numpy as np
import onnx
import pytest
from support import FIXTURES

from simulator.cli import main


def fixed_batch_copy(tmp_path: Path) -> Path:
    model = onnx.load(str(FIXTURES / "digits_cnn.onnx"))
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_value = 1  # torch.onnx.export without dynamic_axes
    del model.graph.value_info[:]
    path = tmp_path / "digits_cnn.onnx"
    onnx.save(model, str(path))
    return path


def measure(capsys, model: Path, data: Path) -> tuple[int, str, str]:
    code = main(["accuracy", str(model), "--data", str(data), "--bits", "4/8", "--format", "json"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_fixed_batch_model_is_measured_like_the_dynamic_one(tmp_path, capsys):
    import json

    code, out, _ = measure(capsys, FIXTURES / "digits_cnn.onnx", FIXTURES / "digits.npz")
    dynamic = json.loads(out)
    code_fixed, out_fixed, err = measure(capsys, fixed_batch_copy(tmp_path), FIXTURES / "digits.npz")
    assert code == code_fixed == 0, err
    fixed = json.loads(out_fixed)
    assert fixed["measured_accuracy"] == pytest.approx(dynamic["measured_accuracy"], abs=1e-9)
    assert fixed["fp_accuracy"] == pytest.approx(dynamic["fp_accuracy"], abs=1e-9)


def test_data_of_another_image_size_is_one_line_naming_both_shapes(tmp_path, capsys):
    data = tmp_path / "big.npz"
    np.savez(data, x=np.zeros((4, 1, 16, 16), np.float32), y=np.zeros(4, np.int64))
    code, _, err = measure(capsys, fixed_batch_copy(tmp_path), data)
    assert code == 2 and err.count("\n") == 1
    assert "x holds samples of shape 1x16x16, but" in err and "expects 1x8x8" in err
