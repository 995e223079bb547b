"""Quantization distortion: the quantizers do what their grids say, and the Gaussian-assumption tables agree
with Monte Carlo sampling of the same distributions (an independent oracle)."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.accuracy.distortion import (
    BIT_WIDTHS,
    activation_distortion,
    activation_range,
    gaussian_activation_distortion,
    gaussian_weight_distortion,
    quantize_asymmetric,
    quantize_weight,
    weight_distortion,
)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_weight_quantizer_uses_at_most_2_to_the_bits_minus_1_levels_per_channel(bits):
    w = np.random.default_rng(0).normal(size=(8, 3, 3, 3))
    q = quantize_weight(w, bits).reshape(8, -1)
    for channel in q:
        assert len(np.unique(np.round(channel, 12))) <= 2 ** bits - 1


@pytest.mark.parametrize("bits", [1, 2, 4, 7])
def test_activation_grid_has_2_to_the_bits_levels_and_keeps_zero_exact(bits):
    x = np.concatenate([np.zeros(100), np.random.default_rng(1).gamma(2.0, size=5000) - 0.3])
    lo, hi = activation_range(x, bits, "naive")
    q = quantize_asymmetric(x, lo, hi, bits)
    assert len(np.unique(q)) <= 2 ** bits
    assert np.all(q[:100] == 0.0)


def test_mse_clipping_is_never_worse_than_min_max_on_the_same_data():
    rng = np.random.default_rng(2)
    w = rng.standard_t(df=4, size=(16, 200))  # heavy tails: where clipping pays
    x = np.maximum(rng.standard_t(df=4, size=20000), 0)
    for bits in (2, 3, 4, 6):
        assert weight_distortion(w, bits, "calibrated") <= weight_distortion(w, bits, "naive") + 1e-12
        assert activation_distortion(x, bits, "calibrated") <= activation_distortion(x, bits, "naive") + 1e-12


def test_distortion_falls_as_bits_rise_and_float_is_exact():
    rng = np.random.default_rng(3)
    w, x = rng.normal(size=(32, 64)), np.maximum(rng.normal(size=10000), 0)
    for tier in ("naive", "calibrated"):
        dw = [weight_distortion(w, b, tier) for b in BIT_WIDTHS]
        da = [activation_distortion(x, b, tier) for b in BIT_WIDTHS]
        assert np.all(np.diff(dw) <= 1e-12) and np.all(np.diff(da) <= 1e-12)
        assert dw[-1] == 0.0 and da[-1] == 0.0


@pytest.mark.parametrize("bits", [2, 4, 6, 8])
@pytest.mark.parametrize("tier", ["naive", "calibrated"])
def test_gaussian_weight_table_matches_sampled_gaussian_weights(bits, tier):
    w = np.random.default_rng(4).normal(size=(256, 576))  # a 3x3x64 conv, He-initialised up to scale
    sampled = weight_distortion(w, bits, tier)
    assert gaussian_weight_distortion(576, 256, bits, tier) == pytest.approx(sampled, rel=0.12)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_gaussian_weight_table_per_tensor_matches_sampled_channels_of_spread_scales(bits):
    rng = np.random.default_rng(5)
    channels, spread = 512, 0.4
    z = np.interp((np.arange(channels) + 0.5) / channels, *_normal_cdf_table())
    scales = np.exp(spread * z)
    w = rng.normal(size=(channels, 576)) * scales[:, None]
    sampled = weight_distortion(w, bits, "naive", "per-tensor")
    assert gaussian_weight_distortion(576, channels, bits, "naive", "per-tensor", spread) == pytest.approx(sampled, rel=0.15)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("tier", ["naive", "calibrated"])
def test_relu_gaussian_activation_table_matches_sampled_activations(bits, tier):
    rng = np.random.default_rng(6)
    calibration, test = np.maximum(rng.normal(size=200_000), 0), np.maximum(rng.normal(size=200_000), 0)
    value_range = activation_range(calibration, bits, tier)
    sampled = activation_distortion(test, bits, tier, value_range)
    # at 8 bits the error is set by the few samples in the tail, which a finite calibration set sees
    # differently from the test set: a looser tolerance there
    assert gaussian_activation_distortion(200_000, bits, tier) == pytest.approx(sampled, rel=0.12 if bits < 8 else 0.25)


def _normal_cdf_table():
    z = np.linspace(-8, 8, 20001)
    cdf = np.cumsum(np.exp(-z ** 2 / 2)) * (z[1] - z[0]) / np.sqrt(2 * np.pi)
    return cdf, z
