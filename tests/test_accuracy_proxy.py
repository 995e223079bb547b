"""The accuracy proxy: its contract (bounded, monotone, additive) and its calibration on the published PTQ
table (../shared/data/quant/ptq_published.csv, copied to simulator/accuracy/data/), judged only on rows
left out of their own fit (every row of the same source removed)."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.accuracy.calibration import (fit, fp32_reference, leave_one_source_out, predict_rows,
                                            published_rows, zoo_proxy)
from simulator.accuracy.distortion import BIT_WIDTHS
from simulator.accuracy.proxy import AccuracyProxy, bit_columns


def _random_proxy(rng, layers=7) -> AccuracyProxy:
    w = np.sort(rng.uniform(0, 1, size=(layers, len(BIT_WIDTHS))), axis=1)[:, ::-1].copy()
    a = np.sort(rng.uniform(0, 1, size=(layers, len(BIT_WIDTHS))), axis=1)[:, ::-1].copy()
    w[:, -1] = a[:, -1] = 0.0
    return AccuracyProxy([f"l{i}" for i in range(layers)], w, a, rng.uniform(0, 3, layers), rng.uniform(0, 3, layers),
                         fp_accuracy=76.0, chance_accuracy=0.1, shape=rng.uniform(0.4, 2.0))


def test_float_plan_predicts_exactly_the_fp_accuracy_and_no_plan_falls_below_chance():
    rng = np.random.default_rng(0)
    proxy = _random_proxy(rng)
    assert proxy.predict_uniform(16, 16) == 76.0
    bits = rng.choice(BIT_WIDTHS, size=(500, 7))
    predicted = proxy.predict(bits, bits[:, ::-1])
    assert np.all(predicted >= 0.1) and np.all(predicted <= 76.0)
    assert proxy.predict_uniform(1, 1) < 76.0


def test_raising_any_single_bit_width_never_lowers_the_prediction():
    rng = np.random.default_rng(1)
    proxy = _random_proxy(rng)
    choices = np.array(BIT_WIDTHS)
    for _ in range(200):
        w, a = rng.choice(choices, 7), rng.choice(choices, 7)
        base = proxy.predict(w, a)
        layer = rng.integers(7)
        higher = choices[choices > w[layer]]
        if higher.size:
            w2 = w.copy()
            w2[layer] = rng.choice(higher)
            assert proxy.predict(w2, a) >= base
        higher = choices[choices > a[layer]]
        if higher.size:
            a2 = a.copy()
            a2[layer] = rng.choice(higher)
            assert proxy.predict(w, a2) >= base


def test_prediction_is_g_of_the_sum_of_per_layer_terms():
    rng = np.random.default_rng(2)
    proxy = _random_proxy(rng)
    w, a = rng.choice(BIT_WIDTHS, size=(50, 7)), rng.choice(BIT_WIDTHS, size=(50, 7))
    rows = np.arange(7)
    by_hand = (proxy.weight_cost[rows, bit_columns(w)] + proxy.activation_cost[rows, bit_columns(a)]).sum(axis=1)
    np.testing.assert_allclose(proxy.weighted_sum(w, a), by_hand)
    np.testing.assert_allclose(proxy.predict(w, a), proxy.predict_from_weighted_sum(by_hand))
    np.testing.assert_allclose(proxy.weighted_sum_for_accuracy(proxy.predict_from_weighted_sum(by_hand)), by_hand,
                               rtol=1e-6, atol=1e-9)


def test_bit_widths_between_8_and_16_are_refused():
    with pytest.raises(ValueError):
        bit_columns(np.array([8, 12]))


@pytest.fixture(scope="module")
def left_out():
    return leave_one_source_out()


def _rows(left_out, **match):
    return [r for r in left_out if all(r[k] == v for k, v in match.items())]


def test_every_published_row_gets_a_left_out_prediction(left_out):
    assert len(left_out) == len(published_rows())
    assert all(np.isfinite(r["predicted_top1"]) for r in left_out)


def test_resnet50_calibrated_w8a8_and_w6a6_rows_left_out_within_one_point(left_out):
    rows = [r for r in _rows(left_out, model="resnet50", tier="calibrated")
            if r["bits"] in ("W8A8", "W6A6") and not r["edge_only"]]
    assert len(rows) >= 6
    assert max(abs(r["error"]) for r in rows) <= 1.0


def test_resnet50_naive_w4a8_left_out_within_three_points_of_mqbench_min_max(left_out):
    (row,) = _rows(left_out, model="resnet50", tier="naive", bits="W4A8", source="MQBench Academic backend")
    assert abs(row["error"]) <= 3.0


def test_resnet50_reconstruction_w4a8_left_out_within_two_points_of_adaround(left_out):
    (row,) = _rows(left_out, model="resnet50", tier="reconstruction", bits="W4A8")
    assert abs(row["error"]) <= 2.0


def test_naive_tier_predicts_mobilenet_v2_collapses_at_w4a8_while_resnet50_does_not():
    rows = published_rows()
    calibration = fit(rows)
    (mbv2,) = [r for r in rows if r.model == "mobilenet_v2" and r.tier == "naive" and r.weight_bits == 4]
    (r50,) = [r for r in rows if r.model == "resnet50" and r.tier == "naive" and r.weight_bits == 4
              and r.activation_bits == 8]
    predicted_mbv2, predicted_r50 = predict_rows(calibration, [mbv2, r50])
    assert mbv2.fp32_top1 - predicted_mbv2 >= 30.0
    assert r50.fp32_top1 - predicted_r50 < 10.0


def test_zoo_proxy_orders_tiers_and_bits_as_ptq_practice_does():
    naive = zoo_proxy("resnet50", "naive")
    calibrated = zoo_proxy("resnet50", "calibrated")
    reconstruction = zoo_proxy("resnet50", "reconstruction")
    assert naive.fp_accuracy == fp32_reference()["resnet50"][0]
    assert naive.predict_uniform(16, 16) == naive.fp_accuracy
    assert naive.predict_uniform(8, 8) > naive.predict_uniform(6, 6) > naive.predict_uniform(4, 4)
    assert reconstruction.predict_uniform(4, 8) > calibrated.predict_uniform(4, 8)
    assert calibrated.predict_uniform(4, 4) > naive.predict_uniform(4, 4)
    per_tensor = zoo_proxy("resnet50", "naive", "per-tensor")
    assert per_tensor.predict_uniform(8, 8) < naive.predict_uniform(8, 8)
