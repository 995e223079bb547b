"""A user's .npz data (issue 25): bounded before it is allocated, and refused in one line when it cannot give a
meaningful accuracy (empty, NaN/Inf inputs, negative labels or labels the model cannot output)."""
from __future__ import annotations

import io
import resource
import zipfile

import numpy as np
import pytest
from support import FIXTURES

from hardware_models.errors import UserError
from simulator.accuracy.measure import AccuracyMeter
from simulator.accuracy.npz import MAX_NPZ_BYTES, load_npz, read_npz
from simulator.cli import main


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_an_archive_that_would_decompress_to_gigabytes_is_refused_from_its_header(tmp_path):
    def header(descr: str, shape: tuple[int, ...]) -> bytes:
        stream = io.BytesIO()
        np.lib.format.write_array_header_1_0(stream, {"descr": descr, "fortran_order": False, "shape": shape})
        return stream.getvalue()

    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as archive:  # the headers of a 1.3 PB array and its labels, no data at all
        archive.writestr("x.npy", header("<f4", (2**31, 3, 224, 224)))
        archive.writestr("y.npy", header("<i8", (2**31,)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UserError, match=r"--data: .*bomb.npz: its arrays would take .* GiB in memory \(at most 4 GiB\)"):
        load_npz(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000
    assert MAX_NPZ_BYTES == 4 * 2**30


@pytest.mark.parametrize("arrays, words", [
    ({"x": np.zeros((0, 1, 8, 8), np.float32), "y": np.zeros(0, np.int64)}, "x must be a non-empty numeric array"),
    ({"x": np.full((4, 1, 8, 8), np.nan, np.float32), "y": np.zeros(4, np.int64)}, "NaN or infinite values"),
    ({"x": np.full((4, 1, 8, 8), np.inf, np.float32), "y": np.zeros(4, np.int64)}, "NaN or infinite values"),
    ({"x": np.zeros((4, 1, 8, 8), np.float32), "y": np.array([0, 1, -1, 2])}, "negative labels (e.g. -1)"),
    ({"x": np.zeros((4, 1, 8, 8), np.float32), "y": np.array([0.5, 1, 2, 3])}, "one integer label per input"),
    ({"x": np.zeros((4, 1, 8, 8), np.float32)}, "has no 'y' array"),
])
def test_data_that_cannot_give_an_accuracy_is_refused_in_one_line(tmp_path, arrays, words):
    path = _npz(tmp_path / "data.npz", **arrays)
    with pytest.raises(UserError) as error:
        read_npz(path, ("x", "y"))
    assert words in str(error.value) and "\n" not in str(error.value) and str(path) in str(error.value)


def test_labels_the_model_cannot_output_are_refused_naming_its_classes(tmp_path):
    x, y = load_npz(FIXTURES / "digits.npz")
    with pytest.raises(UserError, match=r"--data: labels go up to 10 but the model gives 10 scores per input"):
        AccuracyMeter(FIXTURES / "digits_cnn.onnx", x, np.where(y == 0, 10, y))


def test_the_cli_names_the_file_for_nan_data(tmp_path, capsys):
    path = _npz(tmp_path / "nan.npz", x=np.full((4, 1, 8, 8), np.nan, np.float32), y=np.zeros(4, np.int64))
    assert main(["accuracy", str(FIXTURES / "digits_cnn.onnx"), "--bits", "8/8", "--data", str(path)]) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and str(path) in line and "NaN or infinite" in line
