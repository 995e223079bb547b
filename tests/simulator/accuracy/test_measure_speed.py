"""The fast paths of measured accuracy give what the straightforward ones give, bit for bit: many samples an
onnxruntime run (`FakeQuantizer.use_batches`) against one at a time, and the in-place range search against
the plain quantize-and-sum."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from support import FIXTURES

from simulator.accuracy import distortion  # noqa: E402
from simulator.accuracy.fake_quant import FakeQuantizer  # noqa: E402
from simulator.accuracy.measure import AccuracyMeter, load_npz, top1_percent  # noqa: E402


def one_at_a_time(quantizer: FakeQuantizer, x, weight_bits, activation_bits) -> np.ndarray:
    """The straightforward measurement: the quantized model at the file's batch, one sample a run."""
    session = quantizer.session(quantizer.model(weight_bits, activation_bits))
    return quantizer.run_batches(session, x, None, 1)[0]


def random_plans(meter: AccuracyMeter, count: int, seed: int) -> list[tuple[dict, dict]]:
    """Split plans as the experiments measure them (a prefix of the layers at random bits, the rest float) and
    single layers quantized late in the model (the float values before them are read, not computed)."""
    rng = np.random.default_rng(seed)
    late = meter.layers[len(meter.layers) // 2:]
    plans = [({}, {late[0]: 3}), ({late[-1]: 2} if late[-1] in meter.weight_layers else {}, {late[-1]: 4}),
             ({name: 4 for name in late if name in meter.weight_layers}, {})]
    for _ in range(count):
        edge = meter.layers[: int(rng.integers(1, len(meter.layers) + 1))]
        plans.append(({name: int(rng.integers(2, 9)) for name in edge if name in meter.weight_layers},
                      {name: int(rng.integers(2, 9)) for name in edge}))
    return plans


@pytest.mark.slow
@pytest.mark.parametrize("model, data, calibration", [
    ("digits_cnn.onnx", "digits.npz", "digits_calibration.npz"),
    ("tiny_vit.onnx", "tiny_vit.npz", None),
])
def test_measured_accuracy_is_the_same_many_samples_a_run_as_one_at_a_time(model, data, calibration):
    x, y = load_npz(FIXTURES / data)
    calibration_x = None if calibration is None else load_npz(FIXTURES / calibration)[0]
    meter = AccuracyMeter(FIXTURES / model, x, y, calibration_x)
    quantizer = meter.quantizer
    for weight_bits, activation_bits in [({}, {}), *random_plans(meter, 4, seed=1)]:
        reference = one_at_a_time(quantizer, x, weight_bits, activation_bits)
        fast = quantizer.logits(x, weight_bits, activation_bits)
        np.testing.assert_array_equal(fast, reference)
        assert meter.accuracy(weight_bits, activation_bits) == top1_percent(reference, y)
    if model == "digits_cnn.onnx":  # a CNN with a free batch: measured many samples a run, late changes cut
        assert quantizer.wide is not None and quantizer.wide[1] > 1
        late = quantizer.model({}, {meter.layers[-1]: 4}, quantizer.wide[0])
        part, fed = quantizer._changed_part(late, {}, quantizer._float_values)
        assert fed and quantizer.input_name not in fed and len(part.graph.node) < len(quantizer.base.graph.node)


@pytest.mark.parametrize("failure", ["other bits", "an onnxruntime error"])
def test_a_batch_that_computes_other_bits_or_fails_falls_back_to_one_sample_a_run(monkeypatch, failure):
    from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

    x, y = load_npz(FIXTURES / "digits.npz")
    x, y = x[:40], y[:40]
    calibration_x, _ = load_npz(FIXTURES / "digits_calibration.npz")
    plain = FakeQuantizer.run_batches

    def at_another_batch(self, session, inputs, names, batch=None):
        out = plain(self, session, inputs, names, batch)
        if (batch or self.batch) == 1:
            return out
        if failure == "other bits":
            return [v + np.float32(1e-6) for v in out]
        raise InvalidArgument("cannot reshape")

    monkeypatch.setattr(FakeQuantizer, "run_batches", at_another_batch)
    meter = AccuracyMeter(FIXTURES / "digits_cnn.onnx", x, y, calibration_x)
    assert meter.quantizer.wide is None
    reference = one_at_a_time(meter.quantizer, x, {}, {"conv1": 3})
    np.testing.assert_array_equal(meter.quantizer.logits(x, {}, {"conv1": 3}), reference)


@pytest.mark.parametrize("seed", range(6))
def test_in_place_error_is_the_plain_quantize_and_sum(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(5000) * rng.uniform(0.01, 50.0)
    if seed % 2:
        x = np.maximum(x, 0.0)  # a ReLU output: lo is 0
    lo, hi = min(x.min(), 0.0), max(x.max(), 0.0)
    buffer = np.empty_like(x)
    for bits in (1, 2, 3, 4, 6, 8):
        for fraction in (0.01, 0.137, 0.5, 1.0):
            plain = np.sum((x - distortion.quantize_asymmetric(x, lo * fraction, hi * fraction, bits)) ** 2)
            assert distortion._asymmetric_error(x, lo * fraction, hi * fraction, bits, buffer) == plain


def test_range_search_picks_the_fraction_of_the_plain_search():
    rng = np.random.default_rng(3)
    x = np.concatenate([np.maximum(rng.standard_normal(20000), 0.0), rng.exponential(4.0, 50)])
    lo, hi = 0.0, float(x.max())

    def plain_best(fractions, bits):
        errors = [np.sum((x - distortion.quantize_asymmetric(x, lo * f, hi * f, bits)) ** 2) for f in fractions]
        return float(fractions[int(np.argmin(errors))])

    for bits in (2, 4, 8):
        coarse = plain_best(distortion._CLIP_FRACTIONS, bits)
        fraction = plain_best(np.clip(coarse * (1 + distortion._REFINE), 1e-3, 1.0), bits)
        assert distortion.activation_range(x, bits) == (lo * fraction, hi * fraction)
