"""Measured accuracy: a fake-quantized ONNX model run by onnxruntime on labelled data.

Data files are NumPy `.npz` archives with `x` (model-ready inputs, float32, batch first) and `y` (integer
class labels). Without a separate calibration file, activation ranges come from the first
`CALIBRATION_SAMPLES` inputs of the data file (documented in `autosplit accuracy --help`).

A measurement runs the data through onnxruntime on every core, one sample a run (`fake_quant.BATCH`) or, for a
model whose file leaves the batch free, `RUN_INPUT_BYTES` of input a run where that computes the same bits
(`FakeQuantizer.use_batches`); with a
`cache.MeasurementCache` each bit assignment is measured once and kept on disk. A progress bar (on stderr, when
stderr is a terminal or `show_progress(True)`) counts the measurements of a `progress` block.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hardware_models.errors import UserError
from simulator.accuracy.cache import MeasurementCache, assignment_key
from simulator.accuracy.fake_quant import BATCH, FakeQuantizer
from simulator.accuracy.npz import load_inputs, load_npz

CALIBRATION_SAMPLES = 128
RUN_INPUT_BYTES = 1 << 17
"""Input bytes an onnxruntime run takes at most when a model's file leaves the batch free (`use_batches`)."""

_SHOW_PROGRESS: list[bool | None] = [None]  # None: when stderr is a terminal


def show_progress(enabled: bool | None) -> None:
    """Progress bars of measurements: always (True), never (False), or when stderr is a terminal (None)."""
    _SHOW_PROGRESS[0] = enabled


def top1_percent(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return float(np.mean(np.argmax(logits.reshape(len(labels), -1), axis=1) == labels) * 100.0)


def _input_of(model):
    initializers = {i.name for i in model.graph.initializer}
    return next(i for i in model.graph.input if i.name not in initializers)


def check_inputs(onnx_path: str | Path, x: np.ndarray, what: str) -> int | None:
    """A UserError naming the data file when its samples do not have the model input's shape; the model's
    batch size when the file fixes it (`torch.onnx.export`'s default without dynamic_axes), else None."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    dims = _input_of(model).type.tensor_type.shape.dim
    expected = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    sample = tuple(x.shape[1:])
    if len(expected) != len(sample) + 1 or any(e is not None and e != s for e, s in zip(expected[1:], sample)):
        shown = "x".join("?" if e is None else str(e) for e in expected[1:])
        raise UserError(f"{what}: x holds samples of shape {'x'.join(map(str, sample)) or 'scalar'}, but "
                        f"{onnx_path} expects {shown} (after the batch dimension)")
    return expected[0]


class AccuracyMeter:
    """Top-1 of an ONNX model at per-layer bits on (x, y); calibration inputs fix activation ranges.

    The model is run one sample at a time (many where that is bitwise the same), or at the batch its file
    fixes; data whose
    samples do not have the model input's shape is an error that
    says so. `input_shape` and `until` are `--input-shape` and `--until`: the model is read as inspect reads it.
    """

    def __init__(self, onnx_path: str | Path, x: np.ndarray, y: np.ndarray, calibration_x: np.ndarray | None = None,
                 tier: str = "calibrated", granularity: str = "per-channel", data_name: str = "--data",
                 calibration_name: str = "--calibration", cache: MeasurementCache | None = None, *,
                 input_shape: tuple[int, ...] | None = None, until: str | None = None) -> None:
        self.x, self.y = x, y
        self.data_name = data_name
        self.cache = cache
        self._bar = None
        fixed = check_inputs(onnx_path, x, data_name)
        if calibration_x is not None:
            check_inputs(onnx_path, calibration_x, calibration_name)
        calibration_x = x[:CALIBRATION_SAMPLES] if calibration_x is None else calibration_x
        try:
            self.quantizer = FakeQuantizer(onnx_path, calibration_x, tier, granularity, cache,
                                           input_shape=input_shape, until=until, batch=fixed or BATCH)
            if fixed is None:  # the file leaves the batch free: run many samples at a time where that is exact
                self.quantizer.use_batches(RUN_INPUT_BYTES // max(1, x[0].size * 4))
            self.layers = self.quantizer.layers
            self.weight_layers = self.quantizer.weight_layers
            self.fp_accuracy = self.accuracy()
        except UserError:
            raise
        except Exception as exc:  # onnxruntime's own exception types: one line, naming the model
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            first = " ".join(str(exc).split())[:300]
            raise UserError(f"{onnx_path}: onnxruntime cannot run it on {data_name}: {first}") from None

    def accuracy(self, weight_bits: dict[str, int] | None = None,
                 activation_bits: dict[str, int] | None = None) -> float:
        """Top-1 (percent) with the given per-layer bits (layers left out stay float); from the cache when this
        assignment was measured before."""
        weight_bits, activation_bits = weight_bits or {}, activation_bits or {}
        key = assignment_key({k: v for k, v in weight_bits.items() if k in self.weight_layers}, activation_bits)
        value = None if self.cache is None else self.cache.get("accuracy", key)
        if value is None:
            logits = self.quantizer.logits(self.x, weight_bits, activation_bits)
            classes = logits.reshape(len(self.y), -1).shape[1]
            if self.y.max() >= classes:  # a label the model cannot output: accuracy would be quietly low
                raise UserError(f"{self.data_name}: labels go up to {int(self.y.max())} but the model gives "
                                f"{classes} scores per input; expected class indices 0..{classes - 1}")
            value = top1_percent(logits, self.y)
            if self.cache is not None:
                self.cache.put("accuracy", key, value)
        if self._bar is not None:
            self._bar.update(1)
        return value

    @contextlib.contextmanager
    def progress(self, what: str, total: int) -> Iterator[None]:
        """A progress bar on stderr counting this meter's measurements inside the block (`show_progress`)."""
        import sys

        from tqdm import tqdm

        enabled = _SHOW_PROGRESS[0]
        with tqdm(total=total, desc=what, unit="run", file=sys.stderr, leave=False,
                  disable=None if enabled is None else not enabled) as bar:
            self._bar = bar
            try:
                yield
            finally:
                self._bar = None

    def accuracy_of_lists(self, weight_bits: list[int], activation_bits: list[int]) -> float:
        """Top-1 with one (weight, activation) pair per layer in `layers` order."""
        return self.accuracy(dict(zip(self.layers, weight_bits)), dict(zip(self.layers, activation_bits)))


def cached_meter(model: str | Path, data: str | Path, calibration: str | Path | None = None,
                 tier: str = "calibrated", granularity: str = "per-channel", data_name: str = "--data",
                 calibration_name: str = "--calibration", *, input_shape: tuple[int, ...] | None = None,
                 until: str | None = None) -> AccuracyMeter:
    """An AccuracyMeter of the files `model`, `data` (and `calibration`) whose measurements are kept on disk
    (`cache.MeasurementCache`): a later meter of the same files, cut and quantizer reuses them."""
    x, y = load_npz(data)
    calibration_x = None if calibration is None else load_inputs(calibration, calibration_name)
    cache = MeasurementCache(model, data, calibration, tier, granularity, until=until)
    return AccuracyMeter(model, x, y, calibration_x, tier, granularity, data_name, calibration_name, cache,
                         input_shape=input_shape, until=until)
