"""Physics of the accuracy proxy as properties (Hypothesis, random plans, every tier and granularity): fewer
bits never help, halving the middle layers' bits always costs, and no fitted term makes 2-bit weights as
harmless as 4-bit ones (issue 22)."""
from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.accuracy.calibration import (
    LOW_BITS_FLOOR,
    NAMES,
    effective_tables,
    physical,
    published_calibration,
    zoo_proxy,
)
from simulator.accuracy.distortion import quantize_symmetric
from simulator.accuracy.proxy import bit_columns
from simulator.accuracy.published import PlanBuilder
from simulator.choices import GRANULARITIES, TIERS

MODEL = "resnet18"
QUANTIZED = (1, 2, 3, 4, 5, 6, 7, 8)


@cache
def _proxy(tier: str, granularity: str):
    return zoo_proxy(MODEL, tier, granularity)


def _ends(proxy, w, a) -> np.ndarray:
    """Predicted drop at the expected, pessimistic (low) and optimistic (high) ends."""
    low, high = proxy.predict_interval(w, a)
    return proxy.fp_accuracy - np.array([proxy.predict(w, a), low, high], float)


layers = len(_proxy("calibrated", "per-channel").layers)
plans = st.tuples(st.lists(st.sampled_from(QUANTIZED + (16,)), min_size=layers, max_size=layers),
                  st.lists(st.sampled_from(QUANTIZED + (16,)), min_size=layers, max_size=layers))
settings_ = settings(max_examples=20, deadline=None)


@settings_
@given(plan=plans, tier=st.sampled_from(TIERS), granularity=st.sampled_from(GRANULARITIES),
       layer=st.integers(0, layers - 1), kind=st.sampled_from(("weight", "activation")), data=st.data())
def test_lowering_any_tensors_bits_never_lowers_the_drop_at_any_end(plan, tier, granularity, layer, kind, data):
    proxy = _proxy(tier, granularity)
    w, a = np.array(plan[0]), np.array(plan[1])
    bits = w if kind == "weight" else a
    lower = [b for b in QUANTIZED if b < bits[layer]]
    if not lower:
        return
    before = _ends(proxy, w, a)
    bits[layer] = data.draw(st.sampled_from(lower))
    assert np.all(_ends(proxy, w, a) >= before - 1e-9)


@settings_
@given(bits=st.tuples(st.sampled_from((2, 4, 6, 8)), st.sampled_from((2, 4, 6, 8))),
       tier=st.sampled_from(TIERS), granularity=st.sampled_from(GRANULARITIES))
def test_halving_the_bits_of_every_middle_layer_raises_the_expected_drop(bits, tier, granularity):
    proxy = _proxy(tier, granularity)
    plan = PlanBuilder(MODEL)
    w, a = plan.uniform(*bits)
    half_w, half_a = plan.uniform(bits[0] // 2, bits[1] // 2)
    before, after = _ends(proxy, w, a)[0], _ends(proxy, half_w, half_a)[0]
    at_chance = proxy.fp_accuracy - proxy.chance_accuracy - 1e-9
    assert after > before or before >= at_chance


@settings_
@given(tier=st.sampled_from(TIERS), granularity=st.sampled_from(GRANULARITIES),
       weights_term=st.floats(-5.0, 5.0), activations_term=st.floats(-5.0, 5.0))
def test_no_reconstruction_term_makes_2_bit_weights_as_harmless_as_4_bit_ones(tier, granularity, weights_term,
                                                                            activations_term):
    """Whatever the fit says (any value of the low-bit terms; `physical` holds them at LOW_BITS_FLOOR), the
    noise reconstruction leaves grows below 4 bits at least as fast as the quantizer's own, so a 2-bit tensor
    costs at least 4 times what a 4-bit one does (the rounding noise alone at a fixed range: about 16)."""
    theta = dict(published_calibration().theta, reconstruction_weights_low_bits=weights_term,
                 reconstruction_activations_low_bits=activations_term)
    theta = dict(zip(NAMES, physical(np.array([theta[n] for n in NAMES]))))
    assert min(theta[n] for n in ("reconstruction_weights_low_bits", "reconstruction_activations_low_bits")) >= \
        LOW_BITS_FLOOR
    proxy = _proxy("calibrated", granularity)  # the quantizer's own noise, no reconstruction term in it
    weights, activations = effective_tables(theta, tier, proxy.weight_distortion, proxy.activation_distortion)
    two, four = bit_columns(np.array([2, 4]))
    has = proxy.weight_sensitivity > 0
    for table, plain in ((weights[has], proxy.weight_distortion[has]), (activations, proxy.activation_distortion)):
        assert np.all(table[:, two] * plain[:, four] >= plain[:, two] * table[:, four] * (1 - 1e-12))
        assert np.all(table[:, two] >= 4.0 * table[:, four])
        if tier != "reconstruction":  # no fitted term at all: the quantizer's noise as it is
            np.testing.assert_array_equal(table, plain)


def test_rounding_noise_grows_fourfold_per_bit_at_a_fixed_range():
    """Uniform rounding over a fixed range: the noise is step^2 / 12 (step = clip / (2^(b-1) - 1)), four
    times more per bit removed as the bits grow; the proxy's tables are built on this quantizer."""
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, size=200_000)
    for bits in (4, 5, 6, 7, 8):
        step = 1.0 / (2 ** (bits - 1) - 1)
        noise = np.mean((quantize_symmetric(w, 1.0, bits) - w) ** 2)
        assert noise == pytest.approx(step ** 2 / 12, rel=0.03)
    ratio = np.mean((quantize_symmetric(w, 1.0, 7) - w) ** 2) / np.mean((quantize_symmetric(w, 1.0, 8) - w) ** 2)
    assert ratio == pytest.approx(4.0, rel=0.05)
