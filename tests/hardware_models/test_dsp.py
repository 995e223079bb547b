"""The vector DSP (hardware_models/dsp.py). No public simulator exists for an HVX-like DSP, so the oracles are
layers computed by hand from the model's stated mapping, roofline bounds, and monotonicity properties."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware_models import LayerSpec, UserError, load_accelerator
from hardware_models.dsp import VectorDSP
from hardware_models.registry import PRESET_DIR
from hardware_models.yaml_io import read_yaml

CONFIG = {
    "clock": "1GHz", "vector_bits": 1024, "vector_units": 4, "mac_instructions_per_cycle": 2,
    "onchip_memory": "256KiB", "dram_bandwidth": "15GB/s", "supported_bits": [4, 8, 16],
    "register_block_pixels": 4, "layer_overhead_cycles": 1000,
}
DSP = VectorDSP.from_config(CONFIG, "test.yaml")


def conv(name="conv", cin=64, hw=56, cout=64, kernel=3, stride=1, groups=1) -> LayerSpec:
    out = (hw + 2 * (kernel // 2) - kernel) // stride + 1
    return LayerSpec(name, "conv", cin, hw, hw, cout, out, out, kernel, kernel, stride, groups, has_weights=True)


def test_8bit_lanes_do_twice_the_macs_of_16bit_lanes():
    # 4 units x 2 instructions x 1024/8 products
    assert DSP.macs_per_cycle(8, 8) == 4 * 2 * 128
    assert DSP.macs_per_cycle(16, 16) == DSP.macs_per_cycle(8, 8) / 2
    assert DSP.macs_per_cycle(4, 4) == DSP.macs_per_cycle(8, 8)  # no 4-bit lanes: computed on 8-bit lanes
    assert DSP.macs_per_cycle(16, 8) == DSP.macs_per_cycle(16, 16)


def test_resnet_3x3_conv_by_hand():
    layer = conv(cin=64, hw=56, cout=64, kernel=3)
    cost = DSP.layer_cost(layer, 8, 8)
    # 3136 output pixels x ceil(64 filters / 32 lanes) x ceil(576 window elements / 4-deep dot product)
    instructions = 3136 * 2 * 144
    assert cost.compute_cycles == pytest.approx(instructions / 8)
    assert cost.parts["idle_lane_cycles"] == pytest.approx(0)
    # weights 36864 B, input 200704 B, output 200704 B: 438272 B > 256 KiB, so chunked; the weights fit in
    # one half (128 KiB), so the input streams once: the same 438272 B
    assert cost.dram_bytes == pytest.approx(36864 + 200704 + 200704)
    dram_cycles = 438272 / 15e9 * 1e9
    assert dram_cycles < cost.compute_cycles and cost.stall_cycles == 0
    assert cost.total_cycles == pytest.approx(instructions / 8 + 1000)
    assert cost.latency_s == pytest.approx(cost.total_cycles / 1e9)


def test_layer_that_fits_on_chip_moves_each_byte_once_and_a_big_one_rereads_the_cheaper_operand():
    small = conv(cin=16, hw=28, cout=16, kernel=3)
    cost = DSP.layer_cost(small, 8, 8)
    assert cost.dram_bytes == pytest.approx(16 * 16 * 9 + 2 * 16 * 28 * 28)
    # 512 -> 512 3x3 at 28x28: weights 2.36 MB (19 chunks of 128 KiB), input 401 kB (4 chunks)
    big = conv(cin=512, hw=28, cout=512, kernel=3)
    weights, inputs, outputs = 512 * 512 * 9, 512 * 28 * 28, 512 * 28 * 28
    half = 128 * 1024
    expected = min(weights + inputs * math.ceil(weights / half) + outputs,
                   inputs + weights * math.ceil(inputs / half) + outputs)
    assert DSP.layer_cost(big, 8, 8).dram_bytes == pytest.approx(expected)


def test_depthwise_conv_fills_one_product_per_lane_a_quarter_of_the_8bit_peak():
    layer = conv(cin=32, hw=112, cout=32, kernel=3, groups=32)
    cost = DSP.layer_cost(layer, 8, 8)
    instructions = 112 * 112 * 1 * 9  # pixels x ceil(32 channels / 32 lanes) x 9 taps
    assert cost.compute_cycles == pytest.approx(instructions / 8)
    utilisation = layer.macs / (instructions * 128)
    assert utilisation == pytest.approx(1 / 4)
    assert cost.parts["idle_lane_cycles"] == pytest.approx(cost.compute_cycles * 3 / 4)


def test_few_filters_leave_lanes_idle():
    layer = conv(cin=64, hw=56, cout=8, kernel=1)  # 8 filters on 32 lanes
    cost = DSP.layer_cost(layer, 8, 8)
    assert cost.compute_cycles == pytest.approx(3136 * 1 * 16 / 8)
    assert cost.parts["idle_lane_cycles"] == pytest.approx(cost.compute_cycles * 3 / 4)


def test_first_layer_window_not_a_multiple_of_the_dot_product_depth_wastes_slots():
    layer = conv(cin=3, hw=224, cout=64, kernel=7, stride=2)  # window 147 -> 37 dot products of 4
    cost = DSP.layer_cost(layer, 8, 8)
    assert cost.compute_cycles == pytest.approx(112 * 112 * 2 * 37 / 8)
    assert cost.parts["idle_lane_cycles"] == pytest.approx(cost.compute_cycles * (1 - 147 / 148))


def test_memory_bound_fully_connected_layer_runs_at_dram_bandwidth():
    layer = LayerSpec("fc", "gemm", 4096, 1, 1, 4096, 1, 1, has_weights=True)
    cost = DSP.layer_cost(layer, 8, 8)
    dram_bytes = 4096 * 4096 + 4096 + 4096  # weights stream once; input and output are tiny
    assert cost.dram_bytes == pytest.approx(dram_bytes)
    assert cost.latency_s == pytest.approx(dram_bytes / 15e9 + 1000 / 1e9)


def test_4bit_weights_halve_weight_traffic_and_pay_an_unpack_overhead():
    layer = LayerSpec("fc", "gemm", 4096, 1, 1, 4096, 1, 1, has_weights=True)
    eight, four = DSP.layer_cost(layer, 8, 8), DSP.layer_cost(layer, 4, 8)
    assert four.dram_bytes == pytest.approx(4096 * 4096 / 2 + 2 * 4096)
    unpack = 4096 * 4096 * 8 / 1024 / 4  # one 8-bit lane per weight, 1024-bit vectors, 4 units
    assert four.parts["unpack_cycles"] == pytest.approx(unpack)
    assert eight.parts["unpack_cycles"] == 0
    assert four.latency_s < eight.latency_s


def test_energy_is_the_sum_of_its_actions():
    layer = conv()
    cost = DSP.layer_cost(layer, 4, 8)
    energy = DSP.energy
    assert cost.energy_parts_j["mac"] == pytest.approx(layer.macs * energy.mac_j(4, 8))
    assert cost.energy_parts_j["dram"] == pytest.approx(cost.dram_bytes * energy.dram_j_per_byte())
    assert cost.energy_j == pytest.approx(sum(cost.energy_parts_j.values()))


def test_data_layers_are_free_but_for_the_launch():
    layer = LayerSpec("flatten", "data", 512, 7, 7, 25088, 1, 1)
    cost = DSP.layer_cost(layer, 8, 8)
    assert cost.dram_bytes == 0 and cost.energy_j == 0 and cost.compute_cycles == 0
    assert cost.total_cycles == 1000


def test_batch_multiplies_activations_but_not_weights():
    layer = conv()
    one, four = DSP.layer_cost(layer, 8, 8), DSP.layer_cost(layer, 8, 8, batch=4)
    assert four.compute_cycles == pytest.approx(4 * one.compute_cycles)
    assert four.energy_parts_j["mac"] == pytest.approx(4 * one.energy_parts_j["mac"])


layers = st.builds(
    conv,
    cin=st.sampled_from([3, 8, 32, 64, 96]),
    hw=st.integers(4, 64),
    cout=st.sampled_from([8, 32, 64, 96]),
    kernel=st.sampled_from([1, 3, 5]),
    stride=st.sampled_from([1, 2]),
)
bits = st.sampled_from([2, 4, 6, 8, 16])


def eltwise(channels: int, hw: int, inputs: int) -> LayerSpec:
    return LayerSpec("add", "eltwise", channels, hw, hw, channels, hw, hw, num_inputs=inputs)


def pool(channels: int, hw: int, kernel: int) -> LayerSpec:
    out = hw // kernel
    return LayerSpec("pool", "pool", channels, hw, hw, channels, out, out, kernel, kernel, kernel,
                     ops_per_output=kernel * kernel)


any_layer = st.one_of(
    layers,
    st.builds(eltwise, st.sampled_from([16, 64, 128, 256]), st.integers(4, 112), st.sampled_from([1, 2, 3])),
    st.builds(pool, st.sampled_from([16, 64, 128]), st.integers(4, 112), st.sampled_from([2, 3])),
)


@settings(max_examples=80, deadline=None)
@given(any_layer, bits, bits)
def test_latency_respects_the_roofline(layer, wbits, abits):
    cost = DSP.layer_cost(layer, wbits, abits)
    compute_bound = layer.macs / DSP.macs_per_cycle(wbits, abits)
    memory_bound = cost.dram_bytes / DSP.dram_bytes_per_s * DSP.clock_hz
    assert cost.total_cycles >= max(compute_bound, memory_bound) - 1e-6
    assert cost.total_cycles <= (cost.compute_cycles + cost.parts["unpack_cycles"] + memory_bound
                                 + DSP.layer_overhead_cycles + 1e-6)
    # compulsory traffic: every weight, input and output byte at least once
    minimum = (layer.weight_elements * wbits + (layer.input_elements + layer.output_elements) * abits) / 8
    assert cost.dram_bytes >= minimum - 1e-6


def test_a_layer_without_weights_too_big_for_the_chip_still_reads_its_input():
    layer = eltwise(128, 28, 2)  # 200704 B in, 100352 B out: more than 256 KiB
    assert DSP.layer_cost(layer, 8, 8).dram_bytes == pytest.approx(3 * 128 * 28 * 28)


@settings(max_examples=80, deadline=None)
@given(any_layer, bits, bits, bits, bits)
def test_fewer_bits_never_increase_bytes_moved_or_energy(layer, w1, w2, a1, a2):
    (w_small, w_large), (a_small, a_large) = sorted((w1, w2)), sorted((a1, a2))
    small, large = DSP.layer_cost(layer, w_small, a_small), DSP.layer_cost(layer, w_large, a_large)
    assert small.dram_bytes <= large.dram_bytes + 1e-9
    assert small.energy_j <= large.energy_j * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 96), st.integers(1, 48), st.integers(1, 64), st.sampled_from([1, 3, 5]),
       st.sampled_from(["filters", "pixels", "window"]), st.integers(1, 40), bits)
def test_more_filters_pixels_or_window_never_take_fewer_cycles(cin, hw, cout, kernel, grow, extra, nbits):
    base = LayerSpec("l", "conv", cin, hw + kernel, hw + kernel, cout, hw, hw, kernel, kernel, has_weights=True)
    if grow == "filters":
        bigger = LayerSpec("l", "conv", cin, hw + kernel, hw + kernel, cout + extra, hw, hw, kernel, kernel,
                           has_weights=True)
    elif grow == "pixels":
        bigger = LayerSpec("l", "conv", cin, hw + kernel + extra, hw + kernel + extra, cout, hw + extra,
                           hw + extra, kernel, kernel, has_weights=True)
    else:
        bigger = LayerSpec("l", "conv", cin + extra, hw + kernel, hw + kernel, cout, hw, hw, kernel, kernel,
                           has_weights=True)
    assert DSP.layer_cost(bigger, nbits, nbits).total_cycles >= DSP.layer_cost(base, nbits, nbits).total_cycles


def test_hexagon_preset_loads_and_says_where_its_figures_come_from():
    dsp = load_accelerator("hexagon_dsp")
    assert isinstance(dsp, VectorDSP)
    assert dsp.supported_bits and 8 in dsp.supported_bits
    assert "HVX" in dsp.source
    text = (PRESET_DIR / "hexagon_dsp.yaml").read_text()
    assert "ASSUMPTION" in text
    assert read_yaml(PRESET_DIR / "hexagon_dsp.yaml")["kind"] == "dsp"


@pytest.mark.parametrize("change, key", [
    ({"vector_width": 1024}, "vector_width"),
    ({"clock": "1GW"}, "clock"),
    ({"onchip_memory": "-256KiB"}, "onchip_memory"),
    ({"dram_bandwidth": "15GB/h"}, "dram_bandwidth"),
    ({"vector_units": 0}, "vector_units"),
    ({"vector_bits": 1000}, "lane_bits"),
    ({"supported_bits": [4, 8, 64]}, "supported_bits"),
    ({"layer_overhead_cycles": -1}, "layer_overhead_cycles"),
    ({"energy": {"mac_8bit": "1pW"}}, "energy.mac_8bit"),
])
def test_bad_dsp_config_is_a_one_line_error_naming_file_and_key(change, key):
    with pytest.raises(UserError, match=f"bad.yaml: {key}") as info:
        VectorDSP.from_config({**CONFIG, **change}, "bad.yaml")
    assert "\n" not in str(info.value)


def test_missing_dsp_key_is_named():
    config = dict(CONFIG)
    del config["dram_bandwidth"]
    with pytest.raises(UserError, match="bad.yaml: dram_bandwidth: missing"):
        VectorDSP.from_config(config, "bad.yaml")


def test_bandwidth_accepts_bytes_and_bits_per_second():
    assert VectorDSP.from_config({**CONFIG, "dram_bandwidth": "120Gbps"}, "x").dram_bytes_per_s == 15e9
    assert VectorDSP.from_config({**CONFIG, "dram_bandwidth": "1GiB/s"}, "x").dram_bytes_per_s == 2**30


def test_a_preset_file_with_a_key_twice_or_a_wrong_type_is_a_one_line_error(tmp_path):
    text = (PRESET_DIR / "hexagon_dsp.yaml").read_text()
    (tmp_path / "twice.yaml").write_text(text + "clock: 2GHz\n")
    with pytest.raises(UserError, match=r"twice.yaml: line \d+: duplicate key 'clock'"):
        load_accelerator(str(tmp_path / "twice.yaml"))
    (tmp_path / "typed.yaml").write_text(text.replace("vector_units: 4", "vector_units: '4'"))
    with pytest.raises(UserError, match="typed.yaml: vector_units: expected a positive integer, got '4'") as info:
        load_accelerator(str(tmp_path / "typed.yaml"))
    assert "\n" not in str(info.value)
