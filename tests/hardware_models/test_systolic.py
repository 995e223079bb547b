"""The systolic array model: presets, bit-widths, memory traffic and stalls, and its monotonicity properties."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import REPO, SCALESIM_REFERENCE

from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.registry import from_config, load_accelerator
from hardware_models.scalesim_io import read_scalesim_cfg, read_topology, write_topology
from hardware_models.systolic import SystolicArray, scalesim_compute_cycles
from hardware_models.yaml_io import read_yaml

PRESETS = ("eyeriss", "tpu_v1", "edge_tpu", "ethos_u55")
PRESET_DIR = REPO / "hardware_models" / "presets"


def conv(out_channels=64, out_size=28, kernel=3, in_channels=32, stride=1, groups=1, batch=1, name="c"):
    """A padding-free conv whose input is exactly what its output needs."""
    size = (out_size - 1) * stride + kernel
    return LayerSpec(name, "conv", in_channels=in_channels, in_height=size, in_width=size,
                     out_channels=out_channels, out_height=out_size, out_width=out_size, kernel_height=kernel,
                     kernel_width=kernel, stride=stride, groups=groups, batch=batch, has_weights=True)


def array(**changes) -> SystolicArray:
    base = SystolicArray(name="test", rows=12, cols=14, dataflow="ws", ifmap_sram_bytes=108 * 1024,
                         filter_sram_bytes=108 * 1024, ofmap_sram_bytes=108 * 1024, clock_hz=200e6,
                         offchip_bandwidth_bytes_per_s=1e9, supported_bits=tuple(range(1, 17)))
    return replace(base, **changes)


# --- presets ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PRESETS)
def test_every_systolic_preset_loads_cites_its_figures_and_lists_its_bits(name):
    accelerator = load_accelerator(name)
    assert isinstance(accelerator, SystolicArray)
    assert accelerator.supported_bits and 8 in accelerator.supported_bits
    text = (PRESET_DIR / f"{name}.yaml").read_text()
    assert accelerator.source and ("ASSUMPTION" in text or "assumed" in text.lower() or "cfg" in text)


def test_eyeriss_and_tpu_presets_are_the_auto_split_papers_arrays():
    eyeriss, tpu = load_accelerator("eyeriss"), load_accelerator("tpu_v1")
    assert (eyeriss.rows, eyeriss.cols, eyeriss.dataflow) == (12, 14, "ws")
    assert eyeriss.ifmap_sram_bytes == eyeriss.filter_sram_bytes == eyeriss.ofmap_sram_bytes == 108 * 1024
    assert eyeriss.clock_hz == pytest.approx(202.381e6)
    assert eyeriss.offchip_bandwidth_bytes_per_s == pytest.approx(1e9)
    assert {1, 2, 4, 5, 6, 7, 8} <= set(eyeriss.supported_bits)
    assert (tpu.rows, tpu.cols, tpu.dataflow) == (256, 256, "os")
    assert tpu.ifmap_sram_bytes == 8 * 2**20 and tpu.clock_hz == pytest.approx(1464.844e6)
    assert tpu.offchip_bandwidth_bytes_per_s == pytest.approx(13e9) and 16 in tpu.supported_bits


@pytest.mark.parametrize("change, key", [
    ({"sram_size": "1KiB"}, "sram_size"),
    ({"ifmap_sram": "108 furlongs"}, "ifmap_sram"),
    ({"ifmap_sram": "-4KiB"}, "ifmap_sram"),
    ({"rows": -12}, "rows"),
    ({"dataflow": "rs"}, "dataflow"),
    ({"clock": "fast"}, "clock"),
    ({"supported_bits": [8, 99]}, "supported_bits"),
])
def test_a_bad_preset_is_a_one_line_error_naming_the_key(change, key):
    config = {**read_yaml(PRESET_DIR / "eyeriss.yaml"), **change}
    with pytest.raises(UserError) as error:
        from_config(config, "my.yaml")
    message = str(error.value)
    assert key in message and "my.yaml" in message and "\n" not in message


def test_unsupported_bits_are_a_user_error():
    with pytest.raises(UserError, match="supported"):
        load_accelerator("edge_tpu").layer_cost(conv(), 4, 4)


def test_scalesim_cfg_sizes_are_kib_and_calc_mode_has_no_stalls(tmp_path):
    cfg = SCALESIM_REFERENCE / "configs" / "eyeriss_ws.cfg"
    accelerator = read_scalesim_cfg(cfg)
    assert (accelerator.rows, accelerator.cols, accelerator.dataflow) == (12, 14, "ws")
    assert accelerator.ifmap_sram_bytes == 108 * 1024
    assert accelerator.offchip_bandwidth_bytes_per_s is None
    assert accelerator.layer_cost(conv()).stall_cycles == 0
    text = cfg.read_text() + "\n[autosplit]\nClock = 202.381MHz\nOffChipBandwidth = 1GB/s\n"
    (tmp_path / "e.cfg").write_text(text)
    with_clock = read_scalesim_cfg(tmp_path / "e.cfg")
    assert with_clock.clock_hz == pytest.approx(202.381e6)
    assert with_clock.offchip_bandwidth_bytes_per_s == pytest.approx(1e9)
    (tmp_path / "bad.cfg").write_text(cfg.read_text().replace("Dataflow : ws", "Dataflow : rs"))
    with pytest.raises(UserError, match="Dataflow"):
        read_scalesim_cfg(tmp_path / "bad.cfg")


def test_topology_written_from_layers_reads_back_to_the_same_costs(tmp_path):
    layers = [conv(name="a"), conv(out_channels=32, in_channels=32, groups=32, name="dw"),
              conv(stride=2, kernel=1, name="down")]
    groups = write_topology(layers, tmp_path / "t.csv")
    assert groups == [1, 32, 1]
    back = read_topology(tmp_path / "t.csv", groups=groups)
    accelerator = array()
    for layer, read in zip(layers, back):
        assert read.macs == layer.macs
        assert accelerator.layer_cost(read).compute_cycles == accelerator.layer_cost(layer).compute_cycles


# --- compute ------------------------------------------------------------------------------------------
def test_compute_cycles_follow_the_fold_formula_of_each_dataflow():
    # M = 28*28 = 784 output pixels, N = 64 filters, K = 3*3*32 = 288 window elements on 12 x 14
    m, n, k = 784, 64, 288
    assert scalesim_compute_cycles(m, n, k, 12, 14, "os") == math.ceil(m / 12) * math.ceil(n / 14) * (k + 24) - 1
    assert scalesim_compute_cycles(m, n, k, 12, 14, "ws") == math.ceil(k / 12) * math.ceil(n / 14) * (m + 36) - 1
    assert scalesim_compute_cycles(m, n, k, 12, 14, "is") == math.ceil(k / 12) * math.ceil(m / 14) * (n + 36) - 1


def test_native_8bit_macs_run_narrow_operands_no_faster_and_16_bit_twice_as_long():
    accelerator, layer = array(), conv()
    eight = accelerator.layer_cost(layer, 8, 8).compute_cycles
    assert accelerator.layer_cost(layer, 4, 4).compute_cycles == eight
    assert accelerator.layer_cost(layer, 2, 8).compute_cycles == eight
    assert accelerator.layer_cost(layer, 16, 16).compute_cycles == 2 * eight
    assert accelerator.layer_cost(layer, 8, 16).compute_cycles == 2 * eight


def test_bit_serial_macs_speed_up_with_fewer_bits():
    accelerator, layer = array(mac_mode="bit_serial"), conv()
    eight = accelerator.layer_cost(layer, 8, 8).compute_cycles
    assert accelerator.layer_cost(layer, 4, 8).compute_cycles == pytest.approx(eight / 2)
    assert accelerator.layer_cost(layer, 4, 4).compute_cycles == pytest.approx(eight / 4)


def test_batch_multiplies_output_pixels():
    accelerator = array(dataflow="os")
    assert accelerator.layer_cost(conv(), batch=4).compute_cycles == accelerator.layer_cost(conv(batch=4)).compute_cycles
    assert accelerator.layer_cost(conv(), batch=4).compute_cycles > accelerator.layer_cost(conv()).compute_cycles


# --- memory -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_a_layer_that_fits_on_chip_moves_each_tensor_once(dataflow):
    layer = conv(out_channels=16, out_size=8, in_channels=16)
    cost = array(dataflow=dataflow).layer_cost(layer, 4, 8)
    once = layer.input_elements * 8 / 8 + layer.weight_elements * 4 / 8 + layer.output_elements * 8 / 8
    assert cost.dram_bytes == pytest.approx(once)


def test_an_input_larger_than_half_its_sram_is_streamed_again_for_every_filter_fold():
    layer = conv(out_channels=64, out_size=56, in_channels=64)  # 58*58*64 bytes = 215 KB input
    cost = array(dataflow="os").layer_cost(layer)
    col_folds = math.ceil(64 / 14)
    assert cost.parts["dram_ifmap_bytes"] == pytest.approx(col_folds * layer.input_elements)
    roomy = array(dataflow="os", ifmap_sram_bytes=1 * 2**20).layer_cost(layer)
    assert roomy.parts["dram_ifmap_bytes"] == pytest.approx(layer.input_elements)


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_stalls_are_at_least_the_transfer_time_not_hidden_by_compute(dataflow):
    accelerator = array(dataflow=dataflow, offchip_bandwidth_bytes_per_s=0.2e9)
    for layer in (conv(), conv(out_channels=512, out_size=7, in_channels=512), conv(kernel=7, in_channels=3)):
        cost = accelerator.layer_cost(layer)
        transfer_cycles = cost.dram_bytes / (accelerator.offchip_bandwidth_bytes_per_s / accelerator.clock_hz)
        assert cost.total_cycles >= max(cost.compute_cycles, transfer_cycles) - 1e-6
        assert cost.total_cycles <= cost.compute_cycles + transfer_cycles + 1e-6
        assert cost.latency_s == pytest.approx(cost.total_cycles / accelerator.clock_hz)


def test_more_bandwidth_never_adds_stalls():
    layer = conv(out_channels=256, out_size=14, in_channels=256)
    stalls = [array(offchip_bandwidth_bytes_per_s=bw).layer_cost(layer).stall_cycles for bw in (0.1e9, 1e9, 10e9)]
    assert stalls[0] >= stalls[1] >= stalls[2] >= 0


def test_energy_is_the_sum_of_counted_actions():
    accelerator = array()
    cost = accelerator.layer_cost(conv(), 8, 8)
    assert set(cost.energy_parts_j) == {"mac", "sram", "dram"}
    assert cost.energy_parts_j["mac"] == pytest.approx(conv().macs * accelerator.energy.mac_j(8, 8))
    assert cost.energy_parts_j["dram"] == pytest.approx(cost.dram_bytes * accelerator.energy.dram_j_per_byte())
    assert cost.energy_j == pytest.approx(sum(cost.energy_parts_j.values()))


def test_layers_without_macs_use_the_vector_unit_and_data_layers_are_free():
    accelerator = array()
    add = LayerSpec("add", "eltwise", in_channels=64, in_height=56, in_width=56, out_channels=64, out_height=56,
                    out_width=56, num_inputs=2)
    cost = accelerator.layer_cost(add)
    assert cost.compute_cycles == math.ceil(add.output_elements / accelerator.cols)
    assert cost.dram_bytes == add.input_elements + add.output_elements
    flat = LayerSpec("flatten", "data", in_channels=512, out_channels=512)
    assert accelerator.layer_cost(flat).total_cycles == 0 and accelerator.layer_cost(flat).energy_j == 0


# --- properties ---------------------------------------------------------------------------------------
layers = st.builds(
    conv,
    out_channels=st.integers(1, 300), out_size=st.integers(1, 60), kernel=st.sampled_from([1, 3, 5, 7]),
    in_channels=st.integers(1, 300), stride=st.sampled_from([1, 2]),
)
arrays = st.builds(
    array, dataflow=st.sampled_from(["os", "ws", "is"]), rows=st.sampled_from([4, 12, 32]),
    cols=st.sampled_from([4, 14, 32]), ifmap_sram_bytes=st.sampled_from([8e3, 108 * 1024, 4e6]),
    filter_sram_bytes=st.sampled_from([8e3, 108 * 1024]), ofmap_sram_bytes=st.sampled_from([8e3, 108 * 1024]),
    offchip_bandwidth_bytes_per_s=st.sampled_from([None, 0.1e9, 1e9]),
)
bits = st.sampled_from([1, 2, 4, 5, 6, 7, 8, 16])
BYTE_PARTS = ("dram_ifmap_bytes", "dram_filter_bytes", "dram_ofmap_bytes", "sram_ifmap_read_bytes",
              "sram_filter_read_bytes", "sram_ofmap_write_bytes")


@settings(max_examples=150, deadline=None)
@given(accelerator=arrays, layer=layers, w=bits, a=bits, w_less=st.integers(0, 7), a_less=st.integers(0, 7))
def test_fewer_bits_never_move_more_bytes_or_use_more_energy(accelerator, layer, w, a, w_less, a_less):
    narrower_w, narrower_a = max(1, w - w_less), max(1, a - a_less)
    wide = accelerator.layer_cost(layer, w, a)
    narrow = accelerator.layer_cost(layer, narrower_w, narrower_a)
    assert narrow.dram_bytes <= wide.dram_bytes + 1e-9
    for part in BYTE_PARTS:
        assert narrow.parts[part] <= wide.parts[part] + 1e-9, part
    assert narrow.energy_j <= wide.energy_j * (1 + 1e-12)
    assert narrow.total_cycles <= wide.total_cycles + 1e-6


@settings(max_examples=150, deadline=None)
@given(accelerator=arrays, layer=layers, more=st.integers(1, 100), which=st.sampled_from(["filters", "pixels", "window"]))
def test_a_bigger_layer_never_takes_fewer_cycles(accelerator, layer, more, which):
    if which == "filters":
        bigger = conv(layer.out_channels + more, layer.out_height, layer.kernel_height, layer.in_channels, layer.stride)
    elif which == "pixels":
        bigger = conv(layer.out_channels, layer.out_height + more, layer.kernel_height, layer.in_channels, layer.stride)
    else:
        bigger = conv(layer.out_channels, layer.out_height, layer.kernel_height, layer.in_channels + more, layer.stride)
    small, big = accelerator.layer_cost(layer), accelerator.layer_cost(bigger)
    assert big.compute_cycles >= small.compute_cycles
    assert big.total_cycles >= small.total_cycles - 1e-6
    assert big.dram_bytes >= small.dram_bytes - 1e-9


@settings(max_examples=60, deadline=None)
@given(accelerator=arrays, layer=layers, kernel=st.sampled_from([3, 5, 7]))
def test_a_larger_window_never_takes_fewer_cycles(accelerator, layer, kernel):
    small = conv(layer.out_channels, layer.out_height, 1, layer.in_channels, layer.stride)
    big = conv(layer.out_channels, layer.out_height, kernel, layer.in_channels, layer.stride)
    assert accelerator.layer_cost(big).compute_cycles >= accelerator.layer_cost(small).compute_cycles
    assert accelerator.layer_cost(big).total_cycles >= accelerator.layer_cost(small).total_cycles - 1e-6
