"""`autosplit profile`: onnxruntime's nodes mapped onto autosplit's layers, the profile as an edge, the 25% check."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import FIXTURES, assumed_proxy, write_yaml

from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.measured import read_profile
from hardware_models.registry import load_accelerator
from simulator.cli import main
from simulator.evaluate import Scenario
from simulator.profiling import _attribute, _layers_of_tensors, profile_model
from simulator.search import run_method

DIGITS = FIXTURES / "digits_cnn.onnx"
ONNX = FIXTURES / "onnx"


def _unpacked(name: str, folder: Path) -> Path:
    """A gzipped fixture of onnx-import's (tests/fixtures/onnx/NAME.onnx.gz) unpacked into `folder`."""
    import gzip

    target = folder / name
    target.write_bytes(gzip.decompress((ONNX / f"{name}.gz").read_bytes()))
    return target


def _optimized(model: Path, folder: Path) -> Path:
    """onnxruntime's optimised graph of `model` (ORT_ENABLE_ALL, 1 thread), as the profiler runs it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    options.optimized_model_filepath = str(folder / "optimized.onnx")
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return folder / "optimized.onnx"


def _profile(tmp_path: Path, model: Path = DIGITS, *flags: str) -> Path:
    out = tmp_path / f"{model.stem}.csv"
    assert main(["profile", str(model), "--out", str(out), "--threads", "1", "--runs", "3", "--warmup", "1",
                 "--format", "json", *flags]) == 0
    return out


@pytest.mark.parametrize("model", [DIGITS, ONNX / "resnet18.onnx", ONNX / "efficientnet_b0.onnx",
                                   pytest.param(ONNX / "shufflenet_v2_x1_0.onnx", marks=pytest.mark.slow),
                                   ONNX / "mobilenet_v2.onnx"], ids=lambda p: p.stem)
def test_every_node_second_goes_to_a_layer_and_every_layer_gets_time(tmp_path, model):
    """With a distinct time per optimised node, the layers' shares add up to all of it (nothing unmapped, nothing
    counted twice) and no layer of the model is left without time."""
    import onnx

    optimized = _optimized(model, tmp_path)
    names = [node.name for node in onnx.load(str(optimized)).graph.node]
    node_s = {name: 1e-3 * (k + 1) for k, name in enumerate(names)}
    graph, layer_of_tensor = _layers_of_tensors(model)
    latency, nodes_of, unmapped = _attribute(model, optimized, graph, layer_of_tensor, node_s)
    assert unmapped == 0.0
    assert sum(latency.values()) == pytest.approx(sum(node_s.values()))
    assert set(latency) <= {layer.name for layer in graph.layers}
    # a layer onnxruntime computed inside a fused neighbour (a flatten it folded away) may get nothing;
    # every layer that does arithmetic gets a share
    missing = [l.name for l in graph.layers if l.name not in latency and (l.macs or l.op not in ("flatten", "reshape"))]
    assert not missing
    assert {n for shared in nodes_of.values() for n in shared} == set(names)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vit_b_16.torchscript.onnx", "swin_t.torchscript.onnx",
                                  "transformer_encoder_layer.dynamo.onnx"])
def test_every_node_second_of_a_transformer_goes_to_a_layer(tmp_path, name):
    """The same conservation for transformers (layernorm, GELU, attention's matmuls and softmax, onnxruntime's
    attention and layernorm fusions), and every MAC layer (linear, matmul, conv) gets time."""
    import onnx

    model = _unpacked(name, tmp_path)
    optimized = _optimized(model, tmp_path)
    names = [node.name for node in onnx.load(str(optimized)).graph.node]
    node_s = {n: 1e-3 * (k + 1) for k, n in enumerate(names)}
    graph, layer_of_tensor = _layers_of_tensors(model)
    latency, _, unmapped = _attribute(model, optimized, graph, layer_of_tensor, node_s)
    assert unmapped == 0.0 and sum(latency.values()) == pytest.approx(sum(node_s.values()))
    assert not [l.name for l in graph.layers if l.macs and l.name not in latency]


def test_a_fused_conv_add_relu_is_shared_by_the_conv_and_the_add(tmp_path):
    model = ONNX / "resnet18.onnx"
    optimized = _optimized(model, tmp_path)
    graph, layer_of_tensor = _layers_of_tensors(model)
    node_s = {"/layer1/layer1.0/bn2/BatchNormalization_output_0_nchwc": 1.0}  # conv2 + bn2 (+ add + relu)
    latency, nodes_of, _ = _attribute(model, optimized, graph, layer_of_tensor, node_s)
    assert latency["layer1.0.conv2"] == pytest.approx(1.0)
    node_s = {"/layer1/layer1.1/relu/Relu_output_0_nchwc": 1.0}  # layer1.1's conv1, walking back past the add
    latency, _, _ = _attribute(model, optimized, graph, layer_of_tensor, node_s)
    conv, add = graph.layer("layer1.1.conv1"), graph.layer("layer1.0.add")
    weights = np.array([conv.macs + conv.output_elements, add.macs + add.output_elements], float)
    assert (latency["layer1.1.conv1"], latency["layer1.0.add"]) == pytest.approx(tuple(weights / weights.sum()))


def test_profile_writes_every_layer_with_what_it_measured(tmp_path, capsys):
    out = _profile(tmp_path)
    printed = json.loads(capsys.readouterr().out)
    header, latency, nodes = read_profile(out)
    graph, _ = _layers_of_tensors(DIGITS)
    assert list(latency) == [layer.name for layer in graph.layers]
    assert all(latency[l.name] > 0 for l in graph.layers if l.macs)
    assert header["threads"] == "1" and header["provider"] == "CPUExecutionProvider" and header["runs"] == "3"
    assert header["precision"] == "fp32" and header["statistic"] == "median"
    assert header["clock"] == "cpu"  # the default with 1 thread
    import hashlib

    import onnxruntime

    assert header["model_sha256"] == hashlib.sha256(DIGITS.read_bytes()).hexdigest()
    assert header["onnxruntime"] == onnxruntime.__version__
    assert float(header["end_to_end_s"]) > 0 and float(header["end_to_end_cpu_s"]) > 0
    assert printed["layers_s"] == pytest.approx(sum(latency.values()))


def test_layer_cost_of_a_profile_is_its_rows(tmp_path, capsys):
    out = _profile(tmp_path)
    capsys.readouterr()
    _, latency, _ = read_profile(out)
    assert main(["layer-cost", str(DIGITS), "--hardware", str(out), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["weight_bits"], data["activation_bits"]) == (32, 32)
    assert {r["name"]: r["latency_s"] for r in data["layers"]} == latency
    assert data["total"]["latency_s"] == pytest.approx(sum(latency.values()))
    assert "measured: median cpu time of 3 runs" in data["evidence"]


@pytest.mark.parametrize("argv, message", [
    (["layer-cost", str(ONNX / "resnet18.onnx")], "this profile measured the ONNX model with SHA-256"),
    (["layer-cost", "resnet18"], "resnet18 is not that file"),
    (["layer-cost", str(DIGITS), "--bits", "8"], "measured at fp32 (32-bit weights and activations), not 8/8"),
])
def test_a_profile_used_for_another_model_or_precision_is_one_line(tmp_path, capsys, argv, message):
    out = _profile(tmp_path)
    capsys.readouterr()
    assert main([*argv, "--hardware", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {out}: ") and message in err and "\n" not in err


@pytest.mark.parametrize("flags, message", [
    (["--provider", "NoSuchProvider"], "--provider: NoSuchProvider is not available"),
    (["--runs", "0"], "--runs"),
    (["--statistic", "mean"], "--statistic"),
    (["--threads", "2", "--clock", "cpu"], "--clock cpu: needs --threads 1"),
])
def test_bad_profile_flags_are_one_line(tmp_path, capsys, flags, message):
    assert main(["profile", str(DIGITS), "--out", str(tmp_path / "p.csv"), *flags]) == 2
    assert message in capsys.readouterr().err


def test_profile_out_must_be_a_csv(tmp_path, capsys):
    assert main(["profile", str(DIGITS), "--out", str(tmp_path / "p.txt")]) == 2
    assert "--out: expected a .csv file name" in capsys.readouterr().err


@pytest.mark.slow
def test_a_profile_edge_prices_the_edge_part_of_a_plan_with_its_rows(tmp_path):
    out = _profile(tmp_path)
    _, latency, _ = read_profile(out)
    graph, edge, cloud = _graph_and(out)
    scenario = Scenario(graph, edge, cloud, link=_link(), accuracy=assumed_proxy(graph, 95.0))
    assert scenario.edge_bits == (32,)
    tables = scenario.tables
    column = int(np.flatnonzero(tables.bits == 32)[0])
    assert tables.edge_latency_s[:, column, column].tolist() == [latency[n] for n in tables.names]
    best = run_method("exact", scenario).best
    assert best is not None and best["feasible"]
    on_edge = set(best["edge_layers"])
    assert best["breakdown"]["edge_s"] == pytest.approx(sum(latency[n] for n in on_edge))
    # the float baselines run an fp32-only edge at 32 bits: edge-only (tens of microseconds here) beats sending
    # the input over 1 Mbit/s, and its edge time is the profile's sum
    neurosurgeon = run_method("neurosurgeon", scenario).best
    assert neurosurgeon["edge_layers"] == tables.names and set(neurosurgeon["activation_bits"]) == {32}
    assert neurosurgeon["breakdown"]["edge_s"] == pytest.approx(sum(latency.values()))


def _graph_and(profile: Path):
    from simulator.graph import load_model

    return load_model(str(DIGITS)), load_accelerator(str(profile)), load_accelerator("t4")


def _link():
    from simulator.network.link import Link

    return Link.ideal(1e6)


@pytest.mark.slow
def test_a_profile_is_the_edge_of_an_experiment(tmp_path, capsys):
    out = _profile(tmp_path)
    model = tmp_path / "digits_cnn.onnx"
    model.write_bytes(DIGITS.read_bytes())
    experiment = write_yaml(tmp_path / "e.yaml", {
        "model": "digits_cnn.onnx", "edge": out.name, "cloud": "t4",
        "network": {"uplink": "1Mbps", "rtt": "10ms"},
        "constraints": {"edge_memory": "1MiB", "max_accuracy_drop": 1.0},
        "accuracy": {"fp_accuracy": 95.0}, "search": {"methods": ["cloud", "exact"]}})
    capsys.readouterr()
    assert main(["run", str(experiment), "--out", str(tmp_path / "results")]) == 0
    import pandas as pd

    baselines = pd.read_csv(tmp_path / "results" / "baselines.csv")
    exact = baselines[baselines["method"] == "exact"].iloc[0]
    _, latency, _ = read_profile(out)
    assert exact["edge_s"] <= sum(latency.values()) + 1e-12 and exact["latency_s"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("model", [ONNX / "resnet18.onnx", ONNX / "efficientnet_b0.onnx", ONNX / "mobilenet_v2.onnx"],
                         ids=lambda p: p.stem)
def test_a_single_thread_profile_predicts_the_whole_model_within_25_percent(model):
    """Issue 24's check: the layers' sum, as `autosplit profile --threads 1` measures them (median of each node's
    CPU time), against the model's own end-to-end latency in plain runs alternating with the profiled ones. This
    machine is shared, so the reference is the calling thread's CPU time of those runs: the latency without the
    time other processes held the core, which is the wall time on an idle machine (benchmarks/profile_accuracy.py
    prints both). shufflenet_v2 is left out: its dynamic-batch export keeps ~300 tiny shape nodes that onnxruntime
    runs, and the profiler's own cost in each of them puts it at +18..25 % (docs/validation.md)."""
    profile = profile_model(model, threads=1, runs=15, warmup=3, clock="cpu")
    assert profile.layers_s == pytest.approx(float(profile.header["end_to_end_cpu_s"]), rel=0.25)


@pytest.mark.slow
def test_a_single_thread_profile_of_a_transformer_predicts_it_within_25_percent(tmp_path):
    """The same check on ViT-B/16 (onnx-import's fixture; about 0.3 s of CPU per run here)."""
    profile = profile_model(_unpacked("vit_b_16.torchscript.onnx", tmp_path), threads=1, runs=5, warmup=1,
                            clock="cpu")
    assert profile.layers_s == pytest.approx(float(profile.header["end_to_end_cpu_s"]), rel=0.25)


def test_cpu_time_between_two_instants_is_what_the_thread_computed_then():
    """The sampler's interpolation against the thread's own CPU clock read directly around busy work that, like
    onnxruntime's, releases the GIL (hashing a large buffer), between two sleeps."""
    import hashlib
    import time

    from simulator.profiling import CpuClockSampler

    data = bytes(8 << 20)
    sampler = CpuClockSampler(interval_s=1e-4)
    sampler.start()
    time.sleep(0.05)  # no CPU
    start_wall, start_cpu = time.time_ns(), time.thread_time()
    while time.thread_time() - start_cpu < 0.06:
        hashlib.sha256(data).digest()
    end_wall, end_cpu = time.time_ns(), time.thread_time()
    time.sleep(0.05)
    sampler.stop()
    busy = sampler.cpu_between(np.array([start_wall]), np.array([end_wall]))[0]
    idle = sampler.cpu_between(np.array([start_wall - 40e6]), np.array([start_wall - 10e6]))[0]
    assert busy == pytest.approx(end_cpu - start_cpu, rel=0.15)
    assert idle < 2e-3


def test_profile_takes_an_onnx_file_not_a_zoo_name(tmp_path, capsys):
    assert main(["profile", "resnet18", "--out", str(tmp_path / "p.csv")]) == 2
    assert "MODEL must be an .onnx file" in capsys.readouterr().err


def test_based_on_written_by_profile_gives_the_other_bits_by_the_presets_ratio(tmp_path, capsys):
    out = _profile(tmp_path, DIGITS, "--based-on", "t4")
    header, latency, _ = read_profile(out)
    assert header["based_on"] == "t4"
    capsys.readouterr()
    assert main(["layer-cost", str(DIGITS), "--hardware", str(out), "--bits", "8", "--format", "json"]) == 0
    rows = {r["name"]: r["latency_s"] for r in json.loads(capsys.readouterr().out)["layers"]}
    from simulator.graph import load_model

    t4 = load_accelerator("t4")
    for spec in load_model(str(DIGITS)).layer_specs():
        reference = t4.layer_cost(spec, 32, 32).latency_s
        ratio = t4.layer_cost(spec, 8, 8).latency_s / reference if reference > 0 else 1.0
        assert rows[spec.name] == pytest.approx(latency[spec.name] * ratio)


def test_a_basis_that_cannot_give_the_ratio_is_refused_before_measuring(tmp_path, capsys):
    assert main(["profile", str(DIGITS), "--out", str(tmp_path / "p.csv"), "--based-on", "nonsense"]) == 2
    assert "unknown hardware 'nonsense'" in capsys.readouterr().err


def test_until_profiles_the_graph_autosplit_imports_and_reports_the_rest_as_unmapped(tmp_path, capsys):
    out = _profile(tmp_path, DIGITS, "--until", "/relu_1/Relu_output_0")
    header, latency, _ = read_profile(out)
    assert list(latency) == ["conv1", "conv2"] and header["until"] == "/relu_1/Relu_output_0"
    assert float(header["unmapped_s"]) > 0  # conv3, the pooling and fc ran in onnxruntime, past the graph's end


@pytest.mark.slow
def test_an_input_shape_fixes_a_dynamic_batch_for_the_graph_and_the_runs(tmp_path):
    out = _profile(tmp_path, ONNX / "shufflenet_v2_x1_0.onnx", "--input-shape", "2x3x224x224")
    header, latency, _ = read_profile(out)
    assert header["batch"] == "2" and header["input_shape"] == "2x3x224x224"
    assert all(seconds > 0 for name, seconds in latency.items() if "conv" in name)
    profile = load_accelerator(str(out))
    with pytest.raises(UserError, match="measured at batch 2, not batch 1"):
        profile.layer_cost(LayerSpec("conv1.0", "conv"), 32, 32, batch=1)
