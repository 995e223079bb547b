"""Product presets (issue 16): Coral Edge TPU and Hexagon NPU as `kind: npu`, calibrated on published rows;
every preset states its evidence; the cloud GPU's serving mode calibrated on published TensorRT results.

Oracles: hardware_models/data/edge_tpu_published.csv, hexagon_npu_published.csv and tensorrt_published.csv
(copies of ../shared/data/edge/*.csv and ../shared/data/gpu/tensorrt_published.csv).
"""
from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
from support import REPO

from hardware_models import load_accelerator
from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.registry import preset_evidence, preset_names

DATA = REPO / "hardware_models" / "data"


def _row(name: str, row_id: str) -> dict:
    with open(DATA / name, newline="") as handle:
        return next(r for r in csv.DictReader(handle) if r["row_id"] == row_id)


def fc(name: str, k: int, n: int) -> LayerSpec:
    return LayerSpec(name, "gemm", in_channels=k, out_channels=n, has_weights=True)


def test_every_preset_states_its_evidence():
    for name in preset_names():
        text = preset_evidence(load_accelerator(name))
        assert text and "to be fitted" not in text and "no evidence" not in text, name


def test_weights_beyond_the_edge_tpu_cache_stream_over_the_host_link_every_inference():
    coral = load_accelerator("coral_usb")
    # 3 MB of int8 weights fit the 8 MB cache; so does the second layer's; the third streams what is left over
    layers = [fc(f"fc{i}", 1500, 2000) for i in range(3)]
    rows, total = coral.network_cost(layers, 8, 8)
    assert rows[0].parts["streamed_bytes"] == 0 and rows[1].parts["streamed_bytes"] == 0
    streamed = rows[2].parts["streamed_bytes"]
    assert streamed == pytest.approx(3 * 1500 * 2000 - coral.weight_cache_bytes)
    assert total.latency_s >= streamed / coral.host_link_bps
    faster = coral.with_constants(host_link_bps=coral.host_link_bps * 2)
    assert faster.network_cost(layers, 8, 8)[1].latency_s < total.latency_s


def test_the_inference_overhead_is_charged_once_to_the_first_layer():
    npu = load_accelerator("snapdragon_8gen3")
    layers = [fc("a", 256, 256), fc("b", 256, 256)]
    rows, total = npu.network_cost(layers, 8, 8)
    bare_rows, bare = npu.with_constants(inference_overhead_s=0.0).network_cost(layers, 8, 8)
    assert total.latency_s - bare.latency_s == pytest.approx(npu.inference_overhead_s)
    assert rows[0].latency_s - bare_rows[0].latency_s == pytest.approx(npu.inference_overhead_s)
    assert rows[1].latency_s == pytest.approx(bare_rows[1].latency_s)


def conv3x3(name: str, channels: int, size: int) -> LayerSpec:
    return LayerSpec(name, "conv", in_channels=channels, in_height=size, in_width=size, out_channels=channels,
                     out_height=size, out_width=size, kernel_height=3, kernel_width=3, has_weights=True)


def test_weights_of_the_next_layer_load_while_the_previous_one_computes():
    """A DMA prefetches weights one layer ahead (a two-stage flow shop): only the first layer's load shows
    when every later load is shorter than the compute before it."""
    npu = load_accelerator("snapdragon_8gen3").with_constants(inference_overhead_s=0.0, layer_overhead_s=0.0)
    layers = [conv3x3("a", 256, 56), conv3x3("b", 256, 56)]
    load = layers[0].weight_elements / npu.dram_bandwidth_bps
    compute = [npu.layer_cost(layer, 8, 8).parts["compute_s"] for layer in layers]
    assert compute[0] > load  # the second load hides behind the first compute
    rows, total = npu.network_cost(layers, 8, 8)
    assert total.latency_s == pytest.approx(load + compute[0] + compute[1])
    assert rows[1].latency_s == pytest.approx(compute[1])


def test_an_int8_only_npu_refuses_fp16_layers():
    with pytest.raises(UserError, match="not supported"):
        load_accelerator("coral_usb").network_cost([fc("a", 64, 64)], 16, 16)


@pytest.mark.parametrize("preset,csv_name,row_id,model", [
    ("coral_usb", "edge_tpu_published.csv", "263", "mobilenet_v2"),
    ("coral_devboard", "edge_tpu_published.csv", "267", "mobilenet_v2"),
    ("snapdragon_8gen2", "hexagon_npu_published.csv", "172", "resnet18"),
    ("snapdragon_8gen3", "hexagon_npu_published.csv", "23", "resnet18"),
    ("qcs6490", "hexagon_npu_published.csv", "20", "resnet18"),
])
def test_presets_predict_their_published_zoo_rows_within_the_target(preset, csv_name, row_id, model):
    from simulator.graph import load_model

    row = _row(csv_name, row_id)
    measured = float(row["latency_ms"]) * 1e-3
    bits = 16 if row["precision"].upper().startswith("FP16") else 8
    predicted = load_accelerator(preset).network_cost(load_model(model).layer_specs(), bits, bits)[1].latency_s
    assert predicted == pytest.approx(measured, rel=0.35)


def test_vgg_on_the_coral_usb_is_dominated_by_streaming_its_weights():
    """Coral's VGG-19 takes ~300 ms because 140 MB of weights cross USB every inference (issue 16)."""
    from simulator.graph import load_model

    coral = load_accelerator("coral_usb")
    rows, total = coral.network_cost(load_model("vgg16").layer_specs(), 8, 8)
    streamed = sum(r.parts["streamed_bytes"] for r in rows)
    assert streamed > 100e6
    assert streamed / coral.host_link_bps > 0.7 * total.latency_s


# --- the GPU's modes ------------------------------------------------------------------------------------------
def test_a_mode_after_the_preset_name_equals_with_mode():
    a = load_accelerator("h100@framework,eager")
    b = load_accelerator("h100").with_mode("eager", "framework")
    assert (a.execution, a.fusion) == (b.execution, b.fusion) == ("eager", "framework")
    assert load_accelerator("h100").mode_label() == "serving (graph)"


def test_a_serving_engine_cannot_run_eagerly_and_modes_need_a_gpu():
    with pytest.raises(UserError, match="one graph"):
        load_accelerator("h100").with_mode("eager", "serving")
    with pytest.raises(UserError, match="GPU preset only"):
        load_accelerator("eyeriss@serving")
    with pytest.raises(UserError, match="after '@'"):
        load_accelerator("h100@fast")


def test_an_accelerator_without_modes_or_a_device_copy_answers_with_the_base_defaults():
    eyeriss, h100 = load_accelerator("eyeriss"), load_accelerator("h100")
    assert (eyeriss.kind, eyeriss.has_modes, eyeriss.mode(), eyeriss.mode_label()) == ("systolic", False, None, None)
    assert eyeriss.copy_to_device_s(1e6) == 0.0 and eyeriss.default_bits == 8
    with pytest.raises(UserError, match="not a GPU"):
        eyeriss.with_mode("eager")
    assert (h100.kind, h100.has_modes, h100.mode()) == ("gpu", True, {"execution": "graph", "fusion": "serving"})
    assert h100.copy_to_device_s(1e6) > 0.0 and h100.default_bits == 16


def test_serving_mode_runs_a_residual_add_in_the_producers_epilogue():
    h100 = load_accelerator("h100")
    x = LayerSpec("x", "eltwise", in_channels=256, in_height=56, in_width=56, out_channels=256, out_height=56,
                  out_width=56, num_inputs=2)
    serving = h100.kernel_table([replace(x, op="add")], ["fp16"], fuse=True)
    framework = h100.kernel_table([replace(x, op="add")], ["fp16"], fuse=False)
    assert serving.kernel_class == ["view"]  # no kernel, no fixed time
    assert serving.bytes[0] == pytest.approx(256 * 56 * 56 * 2)  # only the other input is read
    assert framework.kernel_class == ["eltwise"] and framework.bytes[0] == pytest.approx(3 * 256 * 56 * 56 * 2)


def test_serving_mode_is_faster_than_pytorch_at_large_batch_on_the_same_gpu():
    from simulator.graph import load_model

    graph = load_model("resnet50")
    a100 = load_accelerator("a100")
    serving = a100.network_cost(graph.layer_specs(), 16, 16, 128)[1].latency_s
    framework = a100.with_mode("graph", "framework").network_cost(graph.layer_specs(), 16, 16, 128)[1].latency_s
    assert serving < framework


@pytest.fixture(scope="module")
def serving_held_out():
    from hardware_models.gpu_calibration import default_calibration
    from simulator.graph import load_model
    from tools import gpu_serving_fit as fitting

    graph = load_model("resnet50")
    rows, left_out = fitting.read_rows()
    assert len(rows) + len(left_out) == 66 and all("gRPC" in r["framework_compiler"] for r in left_out)
    gpus = {p: load_accelerator(p) for p in {r.preset for r in rows}}
    cases = fitting.build_cases(rows, graph.layer_specs(), gpus)
    return fitting.leave_one_group_out(cases, default_calibration()[0], iterations=600)


@pytest.mark.slow
def test_serving_mode_held_out_by_source_and_gpu_meets_the_batch_8_target(serving_held_out):
    import numpy as np

    errors = [abs(p.error) for p in serving_held_out if p.row.batch == 8]
    assert np.median(errors) <= 0.15 and max(errors) <= 0.35


@pytest.mark.slow
def test_serving_mode_held_out_int8_and_fp16_are_within_35_percent_at_batch_128(serving_held_out):
    errors = [abs(p.error) for p in serving_held_out if p.row.batch == 128 and p.row.precision != "fp32"]
    assert errors and max(errors) <= 0.35


# --- the CLI -----------------------------------------------------------------------------------------------
def test_hardware_command_lists_every_preset_with_its_evidence(capsys):
    from simulator.cli import main

    assert main(["hardware", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} == set(preset_names())
    assert all(r["evidence"] for r in rows)
    assert next(r for r in rows if r["name"] == "h100")["mode"] == "serving (graph)"


def test_layer_cost_reports_the_gpu_mode_and_the_evidence(capsys):
    from simulator.cli import main

    assert main(["layer-cost", "--hardware", "l4", "resnet18", "--fusion", "framework", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == {"execution": "graph", "fusion": "framework"}
    assert "H200" in data["evidence"]
    assert main(["layer-cost", "--hardware", "coral_usb", "resnet18", "--fusion", "serving"]) == 2
    assert "not a GPU" in capsys.readouterr().err


def _experiment(tmp_path, extra: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text("model: resnet18\nedge: eyeriss\ncloud: h100\nnetwork: {uplink: 10Mbps}\n"
                    "constraints: {edge_memory: 4MiB, max_accuracy_drop: 1.0}\n" + extra)
    return path


def test_the_experiments_cloud_mode_picks_the_gpus_kernels(tmp_path):
    from simulator.experiment.loading import load_experiment
    from simulator.experiment.scenario import scenario_arguments

    serving = scenario_arguments(load_experiment(_experiment(tmp_path, "")).config)["cloud"]
    framework = scenario_arguments(load_experiment(
        _experiment(tmp_path, "cloud_mode: {fusion: framework, execution: eager}\n")).config)["cloud"]
    assert serving == "h100"
    gpu = load_accelerator(framework)
    assert (gpu.fusion, gpu.execution) == ("framework", "eager")


def test_a_cloud_mode_on_a_systolic_cloud_or_an_unknown_mode_is_a_user_error(tmp_path, capsys):
    from simulator.cli import main

    path = _experiment(tmp_path, "cloud_mode: {fusion: serving}\n")
    path.write_text(path.read_text().replace("cloud: h100", "cloud: tpu_v1"))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "not a GPU" in capsys.readouterr().err
    path = _experiment(tmp_path, "cloud_mode: {fusion: tensorrt}\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    assert "cloud_mode.fusion" in capsys.readouterr().err
