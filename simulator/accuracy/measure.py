"""Measured accuracy: a fake-quantized ONNX model run by onnxruntime on labelled data.

Data files are NumPy `.npz` archives with `x` (model-ready inputs, float32, batch first) and `y` (integer
class labels). Without a separate calibration file, activation ranges come from the first
`CALIBRATION_SAMPLES` inputs of the data file (documented in `autosplit accuracy --help`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hardware_models.errors import UserError
from simulator.accuracy.fake_quant import FakeQuantizer

CALIBRATION_SAMPLES = 128


def load_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(x float32, y int64) from an .npz file; a UserError naming the file when a key is missing."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such data file")
    try:
        with np.load(path) as archive:
            missing = [k for k in ("x", "y") if k not in archive.files]
            if missing:
                raise UserError(f"{path}: the .npz has no {' or '.join(repr(k) for k in missing)} array "
                                f"(expected x: inputs, y: integer labels)")
            x, y = archive["x"].astype(np.float32), archive["y"]
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a NumPy .npz file ({exc})") from None
    if len(x) != len(y):
        raise UserError(f"{path}: x has {len(x)} samples but y has {len(y)}")
    return x, np.asarray(y).astype(np.int64).ravel()


def top1_percent(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return float(np.mean(np.argmax(logits.reshape(len(labels), -1), axis=1) == labels) * 100.0)


class AccuracyMeter:
    """Top-1 of an ONNX model at per-layer bits on (x, y); calibration inputs fix activation ranges."""

    def __init__(self, onnx_path: str | Path, x: np.ndarray, y: np.ndarray, calibration_x: np.ndarray | None = None,
                 tier: str = "calibrated", granularity: str = "per-channel") -> None:
        self.x, self.y = x, y
        calibration_x = x[:CALIBRATION_SAMPLES] if calibration_x is None else calibration_x
        self.quantizer = FakeQuantizer(onnx_path, calibration_x, tier, granularity)
        self.layers = self.quantizer.layers
        self.weight_layers = self.quantizer.weight_layers
        self.fp_accuracy = self.accuracy()

    def accuracy(self, weight_bits: dict[str, int] | None = None, activation_bits: dict[str, int] | None = None) -> float:
        """Top-1 (percent) with the given per-layer bits (layers left out stay float)."""
        return top1_percent(self.quantizer.logits(self.x, weight_bits, activation_bits), self.y)

    def accuracy_of_lists(self, weight_bits: list[int], activation_bits: list[int]) -> float:
        """Top-1 with one (weight, activation) pair per layer in `layers` order."""
        return self.accuracy(dict(zip(self.layers, weight_bits)), dict(zip(self.layers, activation_bits)))
