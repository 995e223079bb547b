"""The cloud GPU model: presets, kernels per layer, execution modes, suffixes, host-to-device copies, energy.

Oracles: a step-by-step event simulation of the host/GPU pipeline, the measured H200 host-to-device table
(tests/fixtures/h200_pytorch_profile.json), hand-computed wave quantisation, and the unsimplified graph
(what PyTorch launches) against the simplified one with its fused ops.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import yaml
from support import FIXTURES

from hardware_models import UserError, load_accelerator
from hardware_models.gpu import GPU, eager_completion_s
from hardware_models.gpu_kernels import _tile_utilisation, precision_of
from hardware_models.layer import LayerSpec
from hardware_models.registry import PRESET_DIR, from_config
from hardware_models.yaml_io import read_yaml

FIXTURE = FIXTURES / "h200_pytorch_profile.json"
GPU_PRESETS = ("t4", "l4", "a100", "h100", "h200")


def conv(name="conv", cin=64, cout=64, size=56, kernel=3, stride=1, groups=1, batch=1) -> LayerSpec:
    out = size // stride
    return LayerSpec(name=name, kind="conv", in_channels=cin, in_height=size, in_width=size, out_channels=cout,
                     out_height=out, out_width=out, kernel_height=kernel, kernel_width=kernel, stride=stride,
                     groups=groups, batch=batch, has_weights=True)


def relu(name="relu", channels=64, size=56) -> LayerSpec:
    return LayerSpec(name=name, kind="eltwise", in_channels=channels, in_height=size, in_width=size,
                     out_channels=channels, out_height=size, out_width=size)


def linear(name="fc", k=512, n=1000) -> LayerSpec:
    return LayerSpec(name=name, kind="gemm", in_channels=k, out_channels=n, has_weights=True)


@pytest.fixture(scope="module")
def h200() -> GPU:
    return load_accelerator("h200")


# --- presets ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GPU_PRESETS)
def test_every_gpu_preset_loads_in_graph_mode_with_its_datasheet_peaks(name):
    gpu = load_accelerator(name)
    config = read_yaml(PRESET_DIR / f"{name}.yaml")
    assert isinstance(gpu, GPU) and gpu.execution == "graph" and gpu.fuse_epilogues
    assert gpu.peak_flops["fp16"] == pytest.approx(config["peak_tflops"]["fp16"] * 1e12)
    assert config.get("sources"), "each preset cites its datasheet"
    # achievable ceilings never exceed the datasheet
    for math_kind, rate in gpu.achievable_flops.items():
        assert 0 < rate <= gpu.peak_flops[math_kind]
    assert 0 < gpu.achievable_bandwidth_bps <= gpu.peak_bandwidth_bps
    assert 0 <= gpu.idle_power_w < gpu.board_power_w


def test_h200_uses_the_measured_ceilings_from_the_profile(h200):
    ceilings = json.loads(FIXTURE.read_text())["ceilings"]
    assert h200.achievable_flops["tf32"] == pytest.approx(ceilings["matmul_tf32_tflops"] * 1e12, rel=1e-3)
    assert h200.achievable_flops["fp16"] == pytest.approx(ceilings["matmul_fp16_tflops"] * 1e12, rel=1e-3)
    assert h200.achievable_flops["fp32"] == pytest.approx(ceilings["matmul_fp32_tflops"] * 1e12, rel=1e-3)
    assert h200.achievable_bandwidth_bps == pytest.approx(ceilings["d2d_copy_GBps_read_plus_write"] * 1e9, rel=1e-3)


def test_unknown_preset_key_names_the_file_and_the_key():
    config = read_yaml(PRESET_DIR / "h100.yaml")
    config["memory_bandwith"] = "3TB/s"
    with pytest.raises(UserError, match=r"my.yaml: memory_bandwith: unknown key.*did you mean 'memory_bandwidth'"):
        from_config(config, "my.yaml")


@pytest.mark.parametrize("key, value, message", [
    ("memory_bandwidth", "3TB", r"memory_bandwidth: expected a bandwidth"),
    ("execution", "lazy", r"execution: expected one of graph, eager"),
    ("sm_count", -4, r"sm_count: expected a positive integer"),
    ("idle_power_w", 900, r"idle_power_w: 900 W exceeds board_power_w"),
    ("peak_tflops", {"fp32": 67, "fp16": -1}, r"peak_tflops.fp16: expected a positive number"),
    ("clock", "fast", r"clock: expected a frequency"),
])
def test_bad_preset_values_are_user_errors_naming_the_key(key, value, message):
    config = read_yaml(PRESET_DIR / "h100.yaml")
    config[key] = value
    with pytest.raises(UserError, match=message):
        from_config(config, "h100.yaml")


# --- precision and kernels ------------------------------------------------------------------------------
@pytest.mark.parametrize("bits, precision", [((32, 32), "fp32"), ((16, 16), "fp16"), ((8, 8), "int8"),
                                              ((4, 8), "int8"), ((8, 16), "fp16"), ((16, 32), "fp32")])
def test_bit_widths_choose_the_precision(bits, precision):
    assert precision_of(*bits) == precision


def test_fp32_convolutions_run_tf32_but_matmuls_strict_fp32(h200):
    table = h200.kernel_table([conv(), replace(linear(), batch=64)], ["fp32", "fp32"], fuse=True)
    assert table.math == ["tf32", "fp32"]


def test_a_gpu_without_tf32_runs_fp32_convolutions_on_cuda_cores():
    t4 = load_accelerator("t4")
    assert t4.kernel_table([conv()], ["fp32"], fuse=True).math == ["fp32"]
    slow = t4.layer_cost(conv(batch=32), 32, 32).latency_s
    fast = t4.layer_cost(conv(batch=32), 16, 16).latency_s
    assert slow > 3 * fast  # 8.1 TFLOP/s of CUDA cores against 65 of fp16 tensor cores


def test_batch_1_matmul_is_a_memory_bound_matrix_vector_product(h200):
    table = h200.kernel_table([linear(k=25088, n=4096)], ["fp32"], fuse=True)
    times = h200.sequence_time(table, "graph")
    weight_bytes = 25088 * 4096 * 4
    assert times.memory_s[0] > times.compute_s[0]
    # a serving engine streams the weights at its fitted share of the achievable bandwidth
    streaming_bps = h200.achievable_bandwidth_bps * h200.serving_calibration.mac_bandwidth_efficiency
    assert times.memory_s[0] == pytest.approx(weight_bytes / streaming_bps, rel=0.01)


def test_depthwise_and_pointwise_convolutions_are_told_apart(h200):
    layers = [conv("dw", 96, 96, 56, 3, groups=96), conv("pw", 96, 24, 56, 1), conv("spatial")]
    assert h200.kernel_table(layers, ["fp16"] * 3, fuse=True).kernel_class == ["dwconv", "pwconv", "conv"]


def test_a_depthwise_convolution_is_bound_by_loading_every_outputs_window(h200):
    layer = conv("dw", 96, 96, 56, 3, stride=2, groups=96, batch=8)
    table = h200.kernel_table([layer], ["fp16"], fuse=True)
    out = 8 * 96 * 28 * 28
    assert table.bytes[0] == pytest.approx(2 * (out * 9 + out + 96 * 9))
    times = h200.sequence_time(table, "graph")
    assert times.memory_s[0] > times.compute_s[0]


def test_wave_quantisation_halves_utilisation_one_tile_past_a_full_wave():
    sms = 132
    full = _tile_utilisation(128 * sms, 128, 1024, 1, sms, 16)
    one_more = _tile_utilisation(128 * (sms + 1), 128, 1024, 1, sms, 16)
    assert full == pytest.approx(1.0)
    assert one_more == pytest.approx((sms + 1) / (2 * sms))


def test_few_input_channels_waste_the_padded_reduction():
    # a first layer with 3 input channels and a 3x3 kernel: k = 27 padded to 32 on fp16 tensor cores
    assert _tile_utilisation(128 * 132, 128, 27, 1, 132, 16) == pytest.approx(27 / 32)


def test_batch_1_layers_are_far_from_the_roofline(h200):
    deep = conv(cin=512, cout=512, size=7)
    row = h200.layer_cost(deep, 16, 16)
    roofline_s = 2 * deep.macs / h200.achievable_flops["fp16"]
    assert row.latency_s > 20 * roofline_s  # few tiles, each reducing 4608 elements serially, + overhead
    tiny = h200.layer_cost(conv(cin=16, cout=16, size=7, kernel=1), 16, 16)
    assert tiny.overhead_s > 0.9 * tiny.latency_s


def test_fused_layers_in_eager_mode_launch_what_the_unsimplified_graph_launches(h200):
    """The simplified graph with its fused ops, run eagerly, must cost what PyTorch's unfused layers cost."""
    from simulator.graph import load_model

    raw = load_model("resnet18", simplify=False)
    simple = load_model("resnet18")
    ops_of = {layer.name: layer.op for layer in raw}
    fused = [tuple(ops_of[name] for name in layer.fused) for layer in simple]
    for precision in (32, 16):
        _, unfused = h200.network_cost(raw.layer_specs(), precision, precision, execution="eager")
        _, folded = h200.network_cost([replace(s, fused_ops=f) for s, f in zip(simple.layer_specs(), fused)],
                                      precision, precision, execution="eager")
        assert folded.latency_s == pytest.approx(unfused.latency_s, rel=2e-3)
        assert folded.parts["kernels"] == unfused.parts["kernels"]


def test_a_count_of_fused_ops_launches_that_many_element_wise_kernels_in_eager_mode(h200):
    layers = [conv("a"), conv("b")]
    two_fused = [replace(layers[0], fused_ops=("relu", "relu")), layers[1]]
    _, plain = h200.network_cost(layers, 32, 32, execution="eager")
    _, fused = h200.network_cost(two_fused, 32, 32, execution="eager")
    _, graph = h200.network_cost(two_fused, 32, 32, execution="graph")
    assert fused.parts["kernels"] == plain.parts["kernels"] + 2 and fused.latency_s > plain.latency_s
    assert graph.parts["kernels"] == 2  # the serving engine fuses them
    assert h200.network_cost([], 16, 16)[1].latency_s == 0.0


def test_serving_fusion_launches_one_kernel_per_layer_and_is_faster(h200):
    from simulator.graph import load_model

    raw = load_model("resnet18", simplify=False)
    simple = load_model("resnet18")
    ops_of = {layer.name: layer.op for layer in raw}
    fused = [tuple(ops_of[name] for name in layer.fused) for layer in simple]
    specs = [replace(s, fused_ops=f) for s, f in zip(simple.layer_specs(), fused)]
    _, engine = h200.network_cost(specs, 16, 16, execution="graph")
    framework = GPU(**{**_kwargs(h200), "fuse_epilogues": False})
    _, captured = framework.network_cost(specs, 16, 16, execution="graph")
    _, eager = h200.network_cost(specs, 16, 16, execution="eager")
    views = sum(1 for s in specs if s.kind == "data")
    assert engine.parts["kernels"] == len(specs)
    assert captured.parts["kernels"] > engine.parts["kernels"] + views
    assert engine.latency_s < captured.latency_s < eager.latency_s


def _kwargs(gpu: GPU) -> dict:
    return dict(name=gpu.name, sm_count=gpu.sm_count, clock_hz=gpu.clock_hz,
                memory_bandwidth_bps=gpu.peak_bandwidth_bps, peak_flops=gpu.peak_flops,
                measured_flops={k: v for k, v in gpu.achievable_flops.items()},
                measured_bandwidth_bps=gpu.achievable_bandwidth_bps, execution=gpu.execution,
                board_power_w=gpu.board_power_w, idle_power_w=gpu.idle_power_w, h2d_table=gpu.h2d_table,
                calibration=gpu.calibration)


# --- execution modes, the pipeline oracle -------------------------------------------------------------
def _simulate(host, gpu):
    """Event by event: the host dispatches kernel j after kernel j-1; the GPU runs it when both are ready."""
    dispatched, free = 0.0, 0.0
    for h, g in zip(host, gpu):
        dispatched += h
        free = max(free, dispatched) + g
    return free


def test_eager_pipeline_closed_form_matches_an_event_simulation_for_every_suffix():
    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        host = rng.uniform(1e-6, 20e-6, n)
        gpu = rng.exponential(10e-6, n)
        completion = eager_completion_s(host, gpu)
        assert completion[-1] == 0.0
        for start in range(n):
            assert completion[start] == pytest.approx(_simulate(host[start:], gpu[start:]), rel=1e-12)


def test_eager_rows_add_up_to_the_pipeline_completion(h200):
    layers = [conv(f"c{i}", size=56 // (1 + i % 3)) for i in range(6)] + [relu(), linear()]
    rows, total = h200.network_cost(layers, 16, 16, execution="eager")
    table = h200.kernel_table(layers, ["fp16"] * len(layers), fuse=False)
    cal = h200.calibration
    times = h200.sequence_time(table, "graph")
    gpu = times.busy_s + times.fixed_s + cal.eager_gap_s * (cal.fixed_vector()[table.class_code] > 0)
    host = cal.host_vector(table)
    assert total.latency_s == pytest.approx(_simulate(host, gpu), rel=1e-9)
    assert sum(r.latency_s for r in rows) == pytest.approx(total.latency_s, rel=1e-9)


def test_graph_mode_is_the_rows_back_to_back_plus_one_launch(h200):
    layers = [conv(f"c{i}") for i in range(5)]
    rows, total = h200.network_cost(layers, 16, 16, execution="graph")
    launch = h200.serving_calibration.graph_launch_s  # the preset's mode: a serving engine
    assert total.latency_s == pytest.approx(sum(r.latency_s for r in rows) + launch, rel=1e-9)
    assert total.latency_s == pytest.approx(
        (total.compute_cycles + total.stall_cycles + total.overhead_cycles) / h200.clock_hz, rel=1e-9)
    _, eager = h200.network_cost(layers, 16, 16, execution="eager")
    assert eager.latency_s > total.latency_s


def test_layer_rows_report_overhead_and_cycles_at_the_clock(h200):
    row = h200.layer_cost(conv(), 16, 16)
    assert row.overhead_s > 0
    assert row.total_cycles == pytest.approx(row.latency_s * h200.clock_hz, rel=1e-9)
    assert set(row.as_row()) >= {"overhead_s", "compute_cycles", "stall_cycles", "latency_s", "dram_bytes"}


# --- suffixes and the received tensor ----------------------------------------------------------------
def test_suffix_is_the_tail_computed_as_one_sequence(h200):
    layers = [conv(f"c{i}") for i in range(4)] + [relu(), linear()]
    for cut in range(len(layers) + 1):
        _, suffix = h200.suffix_cost(layers, cut, 16, 16, execution="eager")
        if cut == len(layers):
            assert suffix.latency_s == 0.0
            continue
        _, tail = h200.network_cost(layers[cut:], 16, 16, execution="eager")
        assert suffix.latency_s == pytest.approx(tail.latency_s)
    _, whole = h200.suffix_cost(layers, 0, 16, 16)
    assert whole.latency_s > h200.suffix_cost(layers, 3, 16, 16)[1].latency_s


def test_suffix_latency_adds_the_copy_of_the_received_tensor(h200):
    layers = [conv(f"c{i}") for i in range(3)]
    payload = 64 * 56 * 56 * 2
    _, tail = h200.suffix_cost(layers, 1, 16, 16)
    assert h200.suffix_latency_s(layers, 1, payload, 16, 16) == pytest.approx(tail.latency_s + h200.copy_to_device_s(payload))
    assert h200.suffix_latency_s(layers, 1, None, 16, 16) == pytest.approx(tail.latency_s + h200.copy_to_device_s(payload))
    assert h200.suffix_latency_s(layers, 3, payload, 16, 16) == 0.0


def test_host_to_device_copy_follows_the_measured_pinned_table(h200):
    table = json.loads(FIXTURE.read_text())["ceilings"]["h2d"]
    for point in table:
        assert h200.copy_to_device_s(point["kB"] * 1024) == pytest.approx(point["pinned_us"] * 1e-6, rel=1e-3)
    sizes = [2.0**k for k in range(10, 27)]
    times = [h200.copy_to_device_s(s) for s in sizes]
    assert all(b >= a for a, b in zip(times, times[1:]))
    # beyond the table: the last segment's bandwidth (about 55 GB/s, PCIe Gen5 x16)
    last = table[-1]
    extra = h200.copy_to_device_s(2 * last["kB"] * 1024) - last["pinned_us"] * 1e-6
    assert last["kB"] * 1024 / extra == pytest.approx(54.6e9, rel=0.05)


def test_a_gpu_without_a_table_copies_at_latency_plus_bytes_over_bandwidth():
    a100 = load_accelerator("a100")
    assert a100.copy_to_device_s(25e6) == pytest.approx(3e-6 + 25e6 / 25e9)
    assert a100.copy_to_device_s(0) == 0.0


# --- batching and energy ---------------------------------------------------------------------------------
def test_batching_costs_more_per_batch_and_less_per_image(h200):
    layers = [conv(f"c{i}", cin=128, cout=128, size=28) for i in range(8)]
    _, one = h200.network_cost(layers, 16, 16, batch=1)
    _, many = h200.network_cost(layers, 16, 16, batch=64)
    assert one.latency_s < many.latency_s < 64 * one.latency_s
    assert many.energy_j / 64 < one.energy_j
    assert h200.energy_per_inference_j(layers, 16, 16, batch=64) == pytest.approx(many.energy_j / 64)


def test_energy_lies_between_idle_and_board_power(h200):
    layers = [conv(f"c{i}", cin=256, cout=256, size=28, batch=32) for i in range(4)] + [relu()]
    for execution in ("graph", "eager"):
        _, total = h200.network_cost(layers, 16, 16, execution=execution)
        power = total.energy_j / total.latency_s
        assert h200.idle_power_w <= power <= h200.board_power_w
    # a saturated large layer draws more than a tiny overhead-bound one
    big = h200.layer_cost(conv(cin=512, cout=512, size=56, batch=64), 16, 16)
    tiny = h200.layer_cost(relu(channels=8, size=4), 16, 16)
    assert big.energy_j / big.latency_s > tiny.energy_j / tiny.latency_s


def test_int8_is_not_slower_than_fp16_on_a_large_convolution(h200):
    layer = conv(cin=256, cout=256, size=56, batch=64)
    assert h200.layer_cost(layer, 8, 8).latency_s <= h200.layer_cost(layer, 16, 16).latency_s


def test_newer_gpus_are_faster_on_the_same_saturated_workload():
    layer = [conv(f"c{i}", cin=256, cout=256, size=56, batch=64) for i in range(3)]
    latency = {n: load_accelerator(n).network_cost(layer, 16, 16)[1].latency_s for n in GPU_PRESETS}
    assert latency["h200"] <= latency["h100"] < latency["a100"] < latency["l4"]
    assert latency["a100"] < latency["t4"]
    assert math.isfinite(latency["t4"])


# --- presets overriding the fit, and the layer-cost command ----------------------------------------------
def test_a_preset_may_override_fitted_constants(h200):
    config = read_yaml(PRESET_DIR / "h200.yaml")
    config["calibration"] = {"graph_launch_s": 0.0, "fixed_s": {"conv": 0.0}}
    tuned = from_config(config, "tuned.yaml")
    layers = [conv(f"c{i}") for i in range(3)]
    _, base = h200.network_cost(layers, 16, 16)
    _, lean = tuned.network_cost(layers, 16, 16)
    serving = h200.serving_calibration  # the preset's mode
    expected = base.latency_s - serving.graph_launch_s - 3 * serving.fixed_s["conv"]
    assert lean.latency_s == pytest.approx(expected, rel=1e-9)
    assert tuned.calibration.fixed_s["pwconv"] == h200.calibration.fixed_s["pwconv"]
    config["calibration"] = {"graph_lunch_s": 0.0}
    with pytest.raises(UserError, match=r"calibration.graph_lunch_s: unknown key.*graph_launch_s"):
        from_config(config, "tuned.yaml")


def test_layer_cost_total_is_the_presets_mode_for_the_whole_network(capsys, tmp_path, h200):
    from simulator.cli import main
    from simulator.graph import load_model

    eager = read_yaml(PRESET_DIR / "h200.yaml")
    eager["execution"] = "eager"
    path = tmp_path / "h200_eager.yaml"
    path.write_text(yaml.safe_dump(eager))
    graph, raw = load_model("resnet18"), load_model("resnet18", simplify=False)
    ops_of = {layer.name: layer.op for layer in raw}
    fused = [tuple(ops_of[name] for name in layer.fused) for layer in graph]
    for hardware, execution in (("h200", "graph"), (str(path), "eager")):
        assert main(["layer-cost", "--hardware", hardware, "--model", "resnet18", "--precision", "fp16",
                     "--format", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
        _, total = h200.network_cost([replace(s, fused_ops=f) for s, f in zip(graph.layer_specs(), fused)],
                                     16, 16, execution=execution)
        assert data["total"]["latency_s"] == pytest.approx(total.latency_s, rel=1e-9)
        assert all("overhead_s" in row for row in data["layers"])
