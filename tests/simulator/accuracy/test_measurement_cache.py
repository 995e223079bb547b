"""The measurement cache: a measurement is made once per model, data and quantizer, and reused by later
meters (other processes) from disk; a changed file is a new entry, never a stale answer."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from support import FIXTURES

from simulator.accuracy.assess import fitted_proxy  # noqa: E402
from simulator.accuracy.cache import (  # noqa: E402
    MeasurementCache,
    assignment_key,
    dataclass_from_json,
    dataclass_to_json,
    file_sha256,
)
from simulator.accuracy.distortion import BIT_WIDTHS  # noqa: E402
from simulator.accuracy.fake_quant import FakeQuantizer  # noqa: E402
from simulator.accuracy.measure import cached_meter  # noqa: E402
from simulator.accuracy.npz import load_npz  # noqa: E402
from simulator.accuracy.proxy import AccuracyProxy  # noqa: E402

MODEL = FIXTURES / "digits_cnn.onnx"


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A fresh cache folder and 200 of the digits as the data file."""
    monkeypatch.setenv("AUTOSPLIT_CACHE", str(tmp_path / "cache"))
    x, y = load_npz(FIXTURES / "digits.npz")
    path = tmp_path / "data.npz"
    np.savez(path, x=x[:200], y=y[:200])
    return path


@pytest.mark.slow
def test_a_second_meter_of_the_same_files_measures_nothing(data, monkeypatch):
    first = cached_meter(MODEL, data)
    plan = ({"conv1": 3, "fc": 4}, {"conv1": 4, "conv2": 2})
    measured = first.accuracy(*plan)
    assert first.cache is not None and first.cache.made == 2  # the float model and the plan

    def no_run(*args, **kwargs):
        raise AssertionError("onnxruntime ran although every measurement is in the cache")

    monkeypatch.setattr(FakeQuantizer, "logits", no_run)
    second = cached_meter(MODEL, data)
    assert second.fp_accuracy == first.fp_accuracy
    assert second.accuracy(*plan) == measured
    assert second.cache is not None and (second.cache.made, second.cache.hits) == (0, 2)


@pytest.mark.slow
def test_the_fitted_proxy_comes_back_from_the_cache_unchanged(data, monkeypatch):
    fitted = fitted_proxy(cached_meter(MODEL, data), chance=10.0)
    monkeypatch.setattr("simulator.accuracy.assess.calibrate_on_measurements",
                        lambda *a, **k: pytest.fail("refitted although the proxy is in the cache"))
    again = fitted_proxy(cached_meter(MODEL, data), chance=10.0)
    bits = np.random.default_rng(0).integers(2, 9, size=(20, len(fitted.layers)))
    np.testing.assert_array_equal(again.predict(bits, bits), fitted.predict(bits, bits))
    assert again.sensitivity_source == fitted.sensitivity_source


def test_changed_data_is_measured_again(data, tmp_path):
    first = cached_meter(MODEL, data)
    x, y = load_npz(data)
    changed = tmp_path / "changed.npz"
    np.savez(changed, x=x, y=(y + 1) % 10)  # same inputs, other labels
    second = cached_meter(MODEL, changed)
    assert second.cache is not None and first.cache is not None
    assert second.cache.path != first.cache.path and second.cache.made == 1
    assert second.fp_accuracy != first.fp_accuracy


def test_two_writers_of_one_cache_file_keep_both_measurements(data):
    a = MeasurementCache(MODEL, data, None, "calibrated", "per-channel")
    b = MeasurementCache(MODEL, data, None, "calibrated", "per-channel")
    a.put("accuracy", "one", 50.0)
    b.put("accuracy", "two", 60.0)  # b never read "one", but merges it from disk before writing
    stored = json.loads(a.path.read_text())
    assert stored["accuracy"] == {"one": 50.0, "two": 60.0}
    assert MeasurementCache(MODEL, data, None, "calibrated", "per-channel").get("accuracy", "one") == 50.0


def test_a_cut_or_another_quantizer_is_another_cache_file(data):
    base = MeasurementCache(MODEL, data, None, "calibrated", "per-channel").path
    assert MeasurementCache(MODEL, data, None, "naive", "per-channel").path != base
    assert MeasurementCache(MODEL, data, None, "calibrated", "per-tensor").path != base
    assert MeasurementCache(MODEL, data, None, "calibrated", "per-channel", until="fc").path != base


def test_assignment_key_leaves_float_tensors_out_and_ignores_order():
    assert assignment_key({"b": 4, "a": 16}, {"a": 8, "c": 32}) == assignment_key({"b": 4}, {"a": 8})
    assert assignment_key({"b": 4}, {}) != assignment_key({}, {"b": 4})


def test_file_hash_is_sha256_of_the_bytes(tmp_path):
    import hashlib

    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    assert file_sha256(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
    path.write_bytes(b"abd" * 1001)  # another size: hashed again, not remembered
    assert file_sha256(path) == hashlib.sha256(b"abd" * 1001).hexdigest()


def test_proxy_json_round_trip_keeps_every_field():
    columns = len(BIT_WIDTHS)
    proxy = AccuracyProxy(layers=["a", "b"], weight_distortion=np.arange(2.0 * columns).reshape(2, columns) / 7,
                          activation_distortion=np.ones((2, columns)) / 3, weight_sensitivity=np.array([0.1, 0.2]),
                          activation_sensitivity=np.array([1 / 3, 0.5]), fp_accuracy=76.13, chance_accuracy=0.1)
    back = dataclass_from_json(AccuracyProxy, json.loads(json.dumps(dataclass_to_json(proxy))))
    for name in dataclass_to_json(proxy):
        restored = getattr(back, name)
        if isinstance(restored, np.ndarray):
            np.testing.assert_array_equal(restored, getattr(proxy, name))
        else:
            assert restored == getattr(proxy, name)
