"""The contract every hardware kind keeps, run over every preset of every registered kind (Optuna's habit of one
suite against every storage): costs are finite and non-negative, grow with the bit-widths, and a network's cost
is the sum of its layers' plus what the kind declares as overhead (a GPU's graph launch)."""
from __future__ import annotations

import math

import pytest

from hardware_models.base import LayerCost
from hardware_models.registry import kinds, load_accelerator, preset_names
from simulator.graph import load_model

PRESETS = preset_names()
# a kind without a built-in preset: a profile answers only for the model it measured (tests/hardware_models/
# test_measured.py holds it to its own contract)
WITHOUT_PRESETS = {"measured"}
FIELDS = ("compute_cycles", "stall_cycles", "overhead_cycles", "latency_s", "energy_j", "dram_bytes", "overhead_s")


@pytest.fixture(scope="module")
def layers():
    """MobileNet-V2's layers: convolutions, depthwise convolutions, a GEMM, pooling, additions, copies."""
    return load_model("mobilenet_v2").layer_specs()


@pytest.mark.slow
def test_every_registered_kind_has_presets_in_this_suite():
    covered = {load_accelerator(name).kind for name in PRESETS}
    assert set(kinds()) - WITHOUT_PRESETS <= covered


@pytest.mark.parametrize("preset", PRESETS)
def test_costs_are_finite_and_non_negative_at_every_bit_width(preset, layers):
    accelerator = load_accelerator(preset)
    for bits in accelerator.supported_bits:
        rows, total = accelerator.network_cost(layers, bits, bits)
        assert len(rows) == len(layers)
        for cost in [*rows, total]:
            values = [getattr(cost, name) for name in FIELDS] + list(cost.energy_parts_j.values())
            assert all(math.isfinite(v) and v >= 0 for v in values), (preset, bits, cost)


@pytest.mark.parametrize("preset", PRESETS)
def test_fewer_bits_never_move_more_bytes_nor_take_longer_unless_the_kind_says_why(preset, layers):
    accelerator = load_accelerator(preset)
    totals = [accelerator.network_cost(layers, bits, bits)[1] for bits in accelerator.supported_bits]
    for narrower, wider in zip(totals, totals[1:]):
        assert narrower.dram_bytes <= wider.dram_bytes * (1 + 1e-9), preset
        if not accelerator.slower_at_fewer_bits:
            assert narrower.latency_s <= wider.latency_s * (1 + 1e-9), preset


@pytest.mark.parametrize("preset", PRESETS)
def test_a_network_costs_its_layers_plus_the_overhead_the_kind_declares(preset, layers):
    accelerator = load_accelerator(preset)
    bits = accelerator.default_bits
    rows, total = accelerator.network_cost(layers, bits, bits)
    rows_sum = _sum(rows)
    declared = total.overhead_s - rows_sum.overhead_s  # e.g. a GPU's graph launch, not in any row
    assert declared >= -1e-12
    assert total.latency_s == pytest.approx(rows_sum.latency_s + declared, rel=1e-9, abs=1e-15)
    assert total.dram_bytes == pytest.approx(rows_sum.dram_bytes, rel=1e-9)
    assert total.energy_j >= rows_sum.energy_j * (1 - 1e-9)


def _sum(rows: list[LayerCost]) -> LayerCost:
    """The rows added field by field here, not by the package's own `sum_costs`."""
    return LayerCost("sum", *(math.fsum(getattr(r, name) for r in rows) for name in
                              ("compute_cycles", "stall_cycles", "latency_s", "energy_j", "dram_bytes",
                               "overhead_s", "overhead_cycles")))
