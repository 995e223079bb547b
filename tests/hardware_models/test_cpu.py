"""The `cpu` hardware kind (issue 24): a layer's time from the datasheet's cores, clocks, SIMD pipes and the
shared fitted constants; threads, precisions, presets, plausibility checks, and the fit's vectorised copy.

Oracles: the formula of hardware_models/cpu.py's docstring written out by hand for single layers, and ncnn's
published Raspberry Pi and Jetson CPU latencies (hardware_models/data/jetson_cpu_published.csv).
"""
from __future__ import annotations

import csv

import numpy as np
import pytest
from support import REPO

from hardware_models import load_accelerator
from hardware_models.cpu import CPU, CpuCalibration
from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.registry import from_config
from simulator.graph import load_model

CALIBRATION = CpuCalibration(efficiency={"winograd": 2.0, "gemm": 0.8, "depthwise": 0.25}, int8_efficiency=0.5,
                             int8_dot_efficiency=0.6, activation_traffic=3.0, thread_efficiency=0.75,
                             bandwidth_efficiency=0.5, layer_overhead_cycles=1000.0, sync_cycles=500.0)
CPU_PRESETS = ["raspberry_pi_3b", "raspberry_pi_4b", "raspberry_pi_5", "jetson_nano_cpu", "jetson_tx2_nx_cpu",
               "jetson_agx_xavier_cpu", "jetson_xavier_nx_cpu", "jetson_orin_nano_cpu", "jetson_orin_nx_cpu",
               "jetson_agx_orin_cpu", "snapdragon_8gen2_cpu", "dimensity_9300_cpu"]


def a_cpu(**changes) -> CPU:
    settings = dict(name="test", clusters=[(4, 2.0e9, 2.0)], fp16_arithmetic=True, int8_dot=False,
                    last_level_cache_bytes=2**20, dram_bandwidth_bps=10e9, calibration=CALIBRATION)
    return CPU(**{**settings, **changes})


def conv(name="c", cin=64, hw=56, cout=64, k=3, stride=1, groups=1) -> LayerSpec:
    out = hw // stride
    return LayerSpec(name, "conv", cin, hw, hw, cout, out, out, k, k, stride, groups, has_weights=True, op="conv")


def test_a_compute_bound_layer_takes_its_macs_over_the_hand_computed_rate_plus_the_overheads():
    cpu, layer = a_cpu(), conv(k=1)  # a 1x1 conv: the gemm class
    lanes = 128 / 16  # fp16 arithmetic: eight lanes per 128-bit FMA
    rate = 2.0e9 * 2.0 * lanes * (1 + 3 * 0.75) * 0.8
    expected = layer.macs / rate + (1000 + 500) / 2.0e9
    assert cpu.layer_cost(layer, 16, 16).latency_s == pytest.approx(expected, rel=1e-12)


def test_a_layer_whose_activations_spill_the_cache_waits_for_dram_when_that_is_slower():
    cpu = a_cpu(dram_bandwidth_bps=1e8)  # a starved DRAM: the memory term wins
    layer = conv(cin=128, cout=128, k=1)
    activation_bytes = (layer.input_elements + layer.output_elements) * 2
    assert activation_bytes > 2**20
    dram_bytes = layer.weight_elements * 2 + 3.0 * activation_bytes
    cost = cpu.layer_cost(layer, 16, 16)
    assert cost.dram_bytes == pytest.approx(dram_bytes)
    assert cost.latency_s == pytest.approx(dram_bytes / (1e8 * 0.5) + 1500 / 2.0e9, rel=1e-12)


def test_fp16_arithmetic_doubles_the_rate_at_16_bits_and_32_bits_run_at_the_fp32_rate():
    layer = conv(k=1)
    armv82, armv80 = a_cpu(), a_cpu(fp16_arithmetic=False)
    compute = {(cpu_, bits): cpu_.layer_cost(layer, bits, bits).parts["compute_s"]
               for cpu_ in (armv82, armv80) for bits in (16, 32)}
    assert compute[armv80, 16] == pytest.approx(2 * compute[armv82, 16])
    assert compute[armv82, 32] == pytest.approx(compute[armv80, 32]) == pytest.approx(compute[armv80, 16])


def test_int8_runs_on_sdot_lanes_only_where_the_core_has_them():
    layer = conv(k=1)
    widening, dot = a_cpu(), a_cpu(int8_dot=True)
    fp16 = widening.layer_cost(layer, 16, 16).parts["compute_s"]
    assert widening.layer_cost(layer, 8, 8).parts["compute_s"] == pytest.approx(fp16 / 0.5)
    assert dot.layer_cost(layer, 8, 8).parts["compute_s"] == pytest.approx(fp16 / 2 / 0.6)


def test_the_slowest_core_used_sets_the_pace_of_a_parallel_layer():
    big_little = a_cpu(clusters=[(4, 3.0e9, 4.0), (4, 2.0e9, 1.0)])
    layer = conv(k=1)
    four, eight = (big_little.with_threads(t).layer_cost(layer, 16, 16).parts["compute_s"] for t in (4, 8))
    # four big cores: 4 x 12 GHz-pipes at 3.25 effective threads; eight: 8 x 2 GHz-pipes at 6.25
    assert eight / four == pytest.approx((3.0e9 * 4.0 * (1 + 3 * 0.75)) / (2.0e9 * 1.0 * (1 + 7 * 0.75)))
    assert eight > four


def test_layer_classes_take_their_own_efficiency():
    cpu = a_cpu()
    winograd, strided = conv(k=3), conv(k=3, stride=2)
    depthwise = conv(k=3, cout=64, groups=64)
    rate = cpu.macs_per_s(16, 16)
    assert cpu.layer_cost(winograd, 16, 16).parts["compute_s"] == pytest.approx(winograd.macs / (rate * 2.0))
    assert cpu.layer_cost(strided, 16, 16).parts["compute_s"] == pytest.approx(strided.macs / (rate * 0.8))
    assert cpu.layer_cost(depthwise, 16, 16).parts["compute_s"] == pytest.approx(depthwise.macs / (rate * 0.25))


def test_the_fits_vectorised_prediction_is_the_models_own_sum_of_layers():
    from tools import cpu_fit

    layers = load_model("mobilenet_v2").layer_specs()
    cases = [(load_accelerator("raspberry_pi_4b").with_threads(1), layers, 16),
             (load_accelerator("snapdragon_8gen2_cpu").with_threads(8), layers, 8),
             (load_accelerator("jetson_orin_nano_cpu"), layers, 16)]
    predicted = cpu_fit.predict_s(cpu_fit.features(cases), cases[0][0].calibration)
    direct = [cpu.network_cost(specs, bits, bits)[1].latency_s for cpu, specs, bits in cases]
    np.testing.assert_allclose(predicted, direct, rtol=1e-12)


@pytest.mark.parametrize("preset", CPU_PRESETS)
def test_every_cpu_preset_loads_on_all_its_cores_and_states_its_evidence(preset):
    cpu = load_accelerator(preset)
    assert cpu.kind == "cpu" and cpu.threads == cpu.cores
    assert "fitted" in cpu.evidence() or "datasheet" in cpu.evidence()


def _ncnn_ms(device: str, network: str, threads: int) -> float:
    with open(REPO / "hardware_models" / "data" / "jetson_cpu_published.csv", newline="") as handle:
        return next(float(r["value"]) for r in csv.DictReader(handle)
                    if r["device"] == device and r["model"] == network and r["framework"] == "ncnn benchncnn (CPU)"
                    and r["power_mode_or_threads"].startswith(f"{threads} threads"))


@pytest.mark.parametrize("preset,device,threads", [("raspberry_pi_4b", "Raspberry Pi 4B", 1),
                                                   ("jetson_nano_cpu", "Jetson Nano", 4),
                                                   ("jetson_orin_nano_cpu", "Jetson Orin Nano", 6)])
def test_resnet50_on_published_boards_is_within_the_fits_worst_error(preset, device, threads):
    measured_s = _ncnn_ms(device, "ResNet-50 [ncnn resnet50]", threads) / 1e3
    cpu = load_accelerator(f"{preset}@threads={threads}")
    predicted_s = cpu.network_cost(load_model("resnet50").layer_specs(), 16, 16)[1].latency_s
    assert 1 / 1.5 < predicted_s / measured_s < 1.5


def test_threads_come_from_the_spec_the_preset_or_a_refusal():
    assert load_accelerator("raspberry_pi_4b@threads=2").threads == 2
    with pytest.raises(UserError, match="between 1 and 4"):
        load_accelerator("raspberry_pi_4b@threads=5")
    with pytest.raises(UserError, match="threads apply to a CPU preset only"):
        load_accelerator("eyeriss@threads=2")
    config = {"kind": "cpu", "clusters": [{"cores": 2, "clock": "1GHz", "fma_pipes": 1}],
              "last_level_cache": "1MiB", "dram_bandwidth": "4GB/s"}
    assert from_config({**config, "threads": 1}, "p.yaml").threads == 1
    with pytest.raises(UserError, match="p.yaml: threads: .*3 threads on 2 cores"):
        from_config({**config, "threads": 3}, "p.yaml")


@pytest.mark.parametrize("change,message", [
    ({"clusters": [{"cores": 4, "clock": 1e-6, "fma_pipes": 1}]}, r"clusters\[0\].clock: .*between"),
    ({"clusters": [{"cores": 4, "clock": "1.8GHz", "fma_pipes": 100}]}, "fma_pipes: .*between"),
    ({"dram_bandwidth": "1kB/s"}, "dram_bandwidth: .*between"),
    ({"last_level_cache": "12B"}, "last_level_cache: .*between"),
    ({"simd_bits": 100}, "simd_bits: .*SIMD width"),
    ({"clusters": []}, "clusters: .*at least one"),
    ({"supported_bits": [4, 8]}, "supported_bits: .*8, 16, 32"),
    ({"fma_pipe": 1}, "fma_pipe"),
])
def test_implausible_or_unknown_cpu_preset_fields_are_one_line_errors_naming_the_key(change, message):
    config = {"kind": "cpu", "clusters": [{"cores": 4, "clock": "1.8GHz", "fma_pipes": 1}],
              "last_level_cache": "1MiB", "dram_bandwidth": "12.8GB/s", **change}
    with pytest.raises(UserError, match=message) as error:
        from_config(config, "my_cpu.yaml")
    assert str(error.value).startswith("my_cpu.yaml: ") and "\n" not in str(error.value)
