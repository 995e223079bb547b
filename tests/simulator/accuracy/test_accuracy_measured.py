"""Measured accuracy of a real fake-quantized model (tests/fixtures/digits_cnn.onnx, a small CNN trained on
scikit-learn's digits by tests/fixtures/make_digits_model.py) and the proxy checked against it."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from support import FIXTURES

from simulator.accuracy.calibration import calibrate_on_measurements  # noqa: E402
from simulator.accuracy.measure import AccuracyMeter, top1_percent  # noqa: E402
from simulator.accuracy.npz import load_npz  # noqa: E402

MODEL = FIXTURES / "digits_cnn.onnx"
PLANS = 50


@pytest.fixture(scope="module")
def meter():
    x, y = load_npz(FIXTURES / "digits.npz")
    calibration_x, _ = load_npz(FIXTURES / "digits_calibration.npz")
    return AccuracyMeter(MODEL, x, y, calibration_x)


def test_float_plan_reproduces_the_original_onnx_model(meter):
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    original = session.run(None, {meter.quantizer.input_name: meter.x})[0]
    folded = meter.quantizer.logits(meter.x)
    np.testing.assert_allclose(folded, original, rtol=1e-4, atol=1e-4)
    assert meter.fp_accuracy == top1_percent(original, meter.y)
    assert meter.fp_accuracy > 90.0


def test_layers_are_inspects_layers_with_batchnorm_folded(meter):
    from simulator.graph import load_model

    assert meter.layers == [l.name for l in load_model(str(MODEL)).layers]
    model = meter.quantizer.model({"conv1": 4}, {"conv1": 4})
    ops = [n.op_type for n in model.graph.node]
    assert "BatchNormalization" not in ops and "Round" in ops


@pytest.mark.parametrize("bits", [2, 3, 5])
def test_quantized_tensors_take_at_most_2_to_the_bits_values(meter, bits):
    from onnx import numpy_helper

    model = meter.quantizer.model({"conv2": bits}, {"conv2": bits})
    weight = next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == "conv2::weight")
    for channel in weight.reshape(weight.shape[0], -1):
        assert len(np.unique(channel)) <= 2 ** bits - 1
    tensor = meter.quantizer.output_tensor["conv2"]
    values = meter.quantizer.run_tensors(meter.x[:64], [tensor], model)[tensor]
    assert len(np.unique(values)) <= 2 ** bits


def test_measured_accuracy_falls_as_bits_fall(meter):
    layers = len(meter.layers)
    accuracy = {b: meter.accuracy_of_lists([b] * layers, [b] * layers) for b in (16, 8, 3, 2)}
    assert accuracy[16] == meter.fp_accuracy
    assert abs(accuracy[8] - accuracy[16]) <= 1.0
    assert accuracy[3] < accuracy[8]
    assert accuracy[2] < accuracy[3] - 20.0


@pytest.mark.slow
def test_proxy_calibrated_on_single_layers_ranks_random_mixed_precision_plans(meter):
    """Spearman >= 0.9 and MAE <= 5 points over 50 random plans (bits uniform in 2..8)."""
    proxy = calibrate_on_measurements(meter, chance=10.0)
    rng = np.random.default_rng(0)
    n = len(meter.layers)
    weight_bits, activation_bits = rng.integers(2, 9, size=(PLANS, n)), rng.integers(2, 9, size=(PLANS, n))
    measured = np.array([meter.accuracy_of_lists(list(w), list(a)) for w, a in zip(weight_bits, activation_bits)])
    predicted = proxy.predict(weight_bits, activation_bits)
    assert spearman(predicted, measured) >= 0.9
    assert np.mean(np.abs(predicted - measured)) <= 5.0


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation with average ranks for ties."""
    def ranks(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for value in np.unique(v):
            r[v == value] = r[v == value].mean()
        return r
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def test_the_envelope_of_a_measured_proxy_is_the_lowest_measured_bits_and_spares_weightless_layers(meter):
    """The floor is the lowest bits measured; a layer without weights has no weight tensor to keep above it
    (weight floor 1, as the zoo's envelope gives it), so a plan's weight bits there never put it outside."""
    measurements = [(i, kind, b, meter.fp_accuracy - (8 - b)) for i, name in enumerate(meter.layers)
                    for kind in ("weight", "activation") for b in (3, 8)
                    if kind == "activation" or name in meter.weight_layers]
    proxy = calibrate_on_measurements(meter, chance=10.0, measurements=measurements, plans=[])
    has_weights = np.array([name in meter.weight_layers for name in meter.layers])
    assert (~has_weights).any() and has_weights.any()
    np.testing.assert_array_equal(proxy.weight_floor, np.where(has_weights, 3, 1))
    np.testing.assert_array_equal(proxy.activation_floor, np.full(len(meter.layers), 3))
    weights = np.where(has_weights, 3, 1)
    assert proxy.inside(weights, np.full(len(meter.layers), 3))
    assert not proxy.inside(np.where(has_weights, 2, 1), np.full(len(meter.layers), 3))
