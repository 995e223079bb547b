"""The devices people split on (issue 24): Jetson GPUs as edges (unified memory, fitted on TensorRT rows), TI's
C66x and EVE DSPs fitted on TIDL rows, the L4's datasheet check, and `autosplit hardware` listing them.

Oracles: published rows in hardware_models/data/jetson_cpu_published.csv and dsp_published.csv (copies of
../shared/data/edge/), and the DSP model's own compute term written out by hand.
"""
from __future__ import annotations

import csv
import json
import sys
from dataclasses import replace

import pytest
from support import REPO, make_scenario

from hardware_models import load_accelerator
from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.registry import from_config
from simulator.cli import main
from simulator.graph import load_model

DATA = REPO / "hardware_models" / "data"
JETSONS = ["jetson_nano", "jetson_tx2_nx", "jetson_agx_xavier", "jetson_xavier_nx", "jetson_orin_nano",
           "jetson_orin_nx", "jetson_agx_orin"]


def _rows(name: str) -> dict[str, dict]:
    with open(DATA / name, newline="") as handle:
        return {r["row_id"]: r for r in csv.DictReader(handle)}


@pytest.mark.parametrize("preset", JETSONS)
def test_a_jetson_gpu_reads_received_tensors_in_place_and_serves_tensorrt_engines(preset):
    gpu = load_accelerator(preset)
    assert gpu.kind == "gpu" and gpu.mode() == {"execution": "graph", "fusion": "serving"}
    assert gpu.copy_to_device_s(1e6) == 0.0  # unified memory: no host-to-device copy
    assert load_accelerator("t4").copy_to_device_s(1e6) > 0.0
    assert 16 in gpu.supported_bits and ("fitted" in gpu.evidence() or "datasheet" in gpu.evidence())


@pytest.mark.parametrize("preset,row_id,network,bits,within", [
    ("jetson_nano", "27", "resnet50", 16, 1.2),        # torch2trt fp16, in the Nano's fit
    ("jetson_agx_xavier", "59", "vgg16", 16, 1.3),     # torch2trt fp16, in the Xavier's fit
    ("jetson_agx_orin", "1", "resnet50", 8, 1.5),      # MLPerf SingleStream: not fitted, datasheet path
])
def test_jetson_presets_are_near_published_tensorrt_latencies(preset, row_id, network, bits, within):
    measured_s = float(_rows("jetson_cpu_published.csv")[row_id]["value"]) / 1e3
    predicted_s = load_accelerator(preset).network_cost(load_model(network).layer_specs(), bits, bits)[1].latency_s
    assert 1 / within < predicted_s / measured_s < within


@pytest.mark.slow
def test_a_jetson_edge_plans_at_its_float_and_int8_widths_and_its_edge_time_is_its_layers():
    import numpy as np

    from simulator.evaluate import CostTables, evaluate

    scenario = make_scenario(model="resnet18", edge="jetson_orin_nano", cloud="l4")
    assert scenario.edge_bits == (8, 16)  # fp32 is not a bit-width a plan gives a layer
    tables = CostTables.build(scenario)
    layers = len(scenario.graph.layers)
    sixteen = int(np.flatnonzero(tables.bits == 16)[0])
    bits = np.full((1, layers), sixteen)
    edge_only = evaluate(tables, bits, bits, cut=np.array([layers]))
    rows, _ = scenario.edge.network_cost(scenario.graph.layer_specs(), 16, 16)
    assert edge_only.edge_s[0] == pytest.approx(sum(r.latency_s for r in rows))
    assert edge_only.latency_s[0] == pytest.approx(edge_only.edge_s[0])


def test_the_dsp_mac_efficiency_divides_its_compute_cycles():
    c66x = load_accelerator("ti_c66x")
    layer = LayerSpec("c", "conv", 64, 28, 28, 64, 28, 28, 3, 3, 1, has_weights=True)
    full = replace(c66x, mac_efficiency=1.0).layer_cost(layer, 8, 8)
    # 8-bit operands on 16-bit lanes of a 512-bit vector: 16 accumulators x 2-deep dot products per instruction
    assert full.compute_cycles == layer.gemm_m * -(-64 // 16) * -(-576 // 2)
    assert c66x.layer_cost(layer, 8, 8).compute_cycles == pytest.approx(full.compute_cycles / c66x.mac_efficiency)
    with pytest.raises(UserError, match="mac_efficiency: expected a fraction"):
        from_config({"kind": "dsp", "clock": "1GHz", "vector_bits": 512, "vector_units": 1, "onchip_memory": "1MiB",
                     "dram_bandwidth": "1GB/s", "supported_bits": [8], "mac_efficiency": 2}, "dsp.yaml")


def test_ti_presets_on_tidl_rows():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from published_cnn_layers import mobilenet_v1, squeezenet1_1

    rows = _rows("dsp_published.csv")
    layers = {"1": mobilenet_v1(), "6": squeezenet1_1(), "2": mobilenet_v1(), "7": squeezenet1_1()}
    ratios = {}
    for row_id, preset in (("1", "ti_c66x"), ("6", "ti_c66x"), ("2", "ti_eve"), ("7", "ti_eve")):
        predicted = load_accelerator(preset).network_cost(layers[row_id], 8, 8)[1].latency_s
        ratios[row_id] = predicted / (float(rows[row_id]["latency_ms"]) / 1e3)
    assert all(1 / 1.1 < ratios[r] < 1.1 for r in ("1", "6"))  # C66x: within 1.07x
    assert all(1 / 1.35 < ratios[r] < 1.35 for r in ("2", "7"))  # EVE: 1.29x and 1.32x (issue's 1.5x held out: missed)


def test_the_l4_preset_uses_dense_tensor_rates_and_says_no_published_l4_row_exists():
    l4 = load_accelerator("l4")
    assert l4.peak_flops["fp16"] == pytest.approx(121e12) and l4.peak_flops["int8"] == pytest.approx(242.5e12)
    assert "No L4 row exists" in l4.evidence()


@pytest.mark.slow
def test_autosplit_hardware_lists_every_new_preset_with_its_evidence(capsys):
    assert main(["hardware", "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    new = JETSONS + ["raspberry_pi_3b", "raspberry_pi_4b", "raspberry_pi_5", "jetson_orin_nano_cpu",
                     "snapdragon_8gen2_cpu", "dimensity_9300_cpu", "ti_c66x", "ti_eve"]
    for name in new:
        assert rows[name]["evidence"] and "no evidence" not in rows[name]["evidence"], name
    assert rows["raspberry_pi_5"]["kind"] == "cpu" and rows["jetson_nano"]["kind"] == "gpu"
    assert "assumed" in rows["hexagon_dsp"]["evidence"]
