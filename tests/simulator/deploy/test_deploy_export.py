"""`autosplit export`: the two ONNX halves of a plan, checked by running them with onnxruntime."""
import json

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import FIXTURES, REPO, make_scenario

from simulator.accuracy.measure import AccuracyMeter
from simulator.accuracy.npz import load_npz
from simulator.cli import main
from simulator.deploy import WireTensor, pack, packed_bytes, unpack
from simulator.deploy.export import build_split, make_quantizer, run_onnx
from simulator.evaluate import evaluate

DIGITS = FIXTURES / "digits_cnn.onnx"
DIGITS_DATA = FIXTURES / "digits.npz"
DIGITS_CALIBRATION = FIXTURES / "digits_calibration.npz"
RESNET18 = FIXTURES / "onnx" / "resnet18.onnx"
EXAMPLE = REPO / "experiments" / "data"
TRAINED, TRAINED_DATA = EXAMPLE / "trained_cnn.onnx", EXAMPLE / "shapes_test.npz"
TRAINED_CALIBRATION = EXAMPLE / "shapes_calibration.npz"


@pytest.fixture(scope="module")
def digits():
    calibration = load_npz(DIGITS_CALIBRATION)[0]
    return make_quantizer(DIGITS, calibration, "calibrated", "per-channel")


@pytest.fixture(scope="module")
def resnet18():
    rng = np.random.default_rng(0)
    return make_quantizer(RESNET18, rng.random((2, 3, 224, 224), dtype=np.float32), "calibrated", "per-channel")


def edge_then_cloud(split, x):
    """Outputs of edge.onnx -> pack -> unpack -> cloud.onnx, one sample at a time."""
    input_name = split.edge.graph.input[0].name
    outputs = []
    for sample in x:
        wires = run_onnx(split.edge, {input_name: sample[None]})
        outputs.append(run_onnx(split.cloud, unpack(pack(wires, split.wires), split.wires)))
    return {name: np.concatenate([o[name] for o in outputs]) for name in outputs[0]}


# --- packing -------------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 8) | st.just(16), st.integers(1, 40)), min_size=1, max_size=4),
       st.integers(0, 2**32 - 1))
def test_packing_round_trips_and_takes_ceil_of_total_bits(tensors, seed):
    rng = np.random.default_rng(seed)
    wires = [WireTensor(f"t{i}", (1, n), bits) for i, (bits, n) in enumerate(tensors)]
    arrays = {w.name: (rng.standard_normal(w.shape).astype(np.float16) if w.bits == 16
                       else rng.integers(0, 2**w.bits, w.shape).astype(np.uint8)) for w in wires}
    payload = pack(arrays, wires)
    assert len(payload) == packed_bytes(wires) == -(-sum(min(b, 16) * n for b, n in tensors) // 8)
    back = unpack(payload, wires)
    for w in wires:
        assert back[w.name].dtype == w.dtype
        np.testing.assert_array_equal(back[w.name], arrays[w.name])


def test_packing_puts_sub_byte_codes_least_significant_bit_first_without_padding():
    wires = [WireTensor("a", (1, 3), 3), WireTensor("b", (1, 2), 2)]
    payload = pack({"a": np.array([[1, 2, 7]], np.uint8), "b": np.array([[3, 0]], np.uint8)}, wires)
    # bits: a = 100 010 111, b = 11 00 -> stream 10001011 11100000 (LSB first per byte)
    assert payload == bytes([0b11010001, 0b00000111])


def test_packing_refuses_a_code_that_does_not_fit_its_bits():
    with pytest.raises(ValueError, match="does not fit 2 bits"):
        pack({"a": np.array([[4]], np.uint8)}, [WireTensor("a", (1, 1), 2)])


def test_unpacking_refuses_a_payload_of_the_wrong_length():
    with pytest.raises(ValueError, match="pack into 1"):
        unpack(b"\0\0", [WireTensor("a", (1, 3), 2)])


# --- the two halves against the whole fake-quantized model ----------------------------------------------
PLANS = [
    {"edge_layers": ["conv1", "conv2"], "weight_bits": [4, 3], "activation_bits": [5, 3]},
    {"edge_layers": ["conv1", "conv2", "conv3", "pool"], "weight_bits": [8, 2, 6, None],
     "activation_bits": [8, 4, 1, 7]},
    {"edge_layers": ["conv1"], "weight_bits": [2], "activation_bits": [6]},
]


@pytest.mark.parametrize("plan", PLANS, ids=["cut2", "cut4", "cut1"])
def test_edge_then_cloud_equals_the_whole_fake_quantized_model(digits, plan):
    x = load_npz(DIGITS_DATA)[0][:40]
    split = build_split(digits, plan)
    weights = {n: b for n, b in zip(plan["edge_layers"], plan["weight_bits"]) if b is not None}
    whole = digits.logits(x, weights, dict(zip(plan["edge_layers"], plan["activation_bits"])))
    got = edge_then_cloud(split, x)["logits"]
    np.testing.assert_allclose(got, whole, rtol=1e-6, atol=1e-6)
    # and the quantization is real: a plan at other bits gives other outputs
    assert not np.allclose(got, digits.logits(x))


@pytest.mark.slow
def test_a_cut_inside_a_residual_block_sends_the_skip_tensor_and_matches_the_whole_model(resnet18):
    edge = resnet18.layers[:4]  # conv1, maxpool, layer1.0.conv1, layer1.0.conv2: the add is in the cloud
    assert edge[-1] == "layer1.0.conv2"
    plan = {"edge_layers": edge, "weight_bits": [4, None, 3, 5], "activation_bits": [6, 5, 4, 3]}
    split = build_split(resnet18, plan)
    assert [(c["layer"], c["bits"]) for c in split.plan["crossing"]] == [("maxpool", 5), ("layer1.0.conv2", 3)]
    x = np.random.default_rng(1).random((2, 3, 224, 224), dtype=np.float32)
    whole = resnet18.logits(x, {"conv1": 4, "layer1.0.conv1": 3, "layer1.0.conv2": 5}, dict(zip(edge, [6, 5, 4, 3])))
    got = next(iter(edge_then_cloud(split, x).values()))
    np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-6 * np.abs(whole).max())


def test_all_bits_16_reproduce_the_original_model_to_half_precision(digits):
    x = load_npz(DIGITS_DATA)[0][:60]
    plan = {"edge_layers": ["conv1", "conv2"], "weight_bits": [16, 16], "activation_bits": [16, 16]}
    split = build_split(digits, plan)
    assert [c["dtype"] for c in split.plan["crossing"]] == ["float16"]
    original = run_onnx(onnx.load(str(DIGITS)), {"input": x})["logits"]
    got = edge_then_cloud(split, x)["logits"]
    np.testing.assert_allclose(got, original, rtol=0, atol=2e-3 * np.abs(original).max())
    assert np.array_equal(got.argmax(1), original.argmax(1))


@pytest.mark.parametrize("edge_layers,bits", [(["conv1", "conv2"], [4, 5]), (["conv1"], [16]),
                                              (["conv1", "conv2", "conv3", "pool"], [8, 4, 1, 7])])
def test_packed_payload_is_the_simulators_payload_bytes(digits, edge_layers, bits):
    scenario = make_scenario(str(DIGITS), edge_bits=(1, 2, 4, 5, 6, 7, 8, 16))
    tables = scenario.tables
    index = {int(b): i for i, b in enumerate(tables.bits)}
    layers = len(scenario.graph.layers)
    a = np.array([[index[b] for b in bits] + [index[16]] * (layers - len(bits))])
    ev = evaluate(tables, a.copy(), a, cut=np.array([len(bits)]))
    split = build_split(digits, {"edge_layers": edge_layers, "weight_bits": [8] * len(bits), "activation_bits": bits})
    x = load_npz(DIGITS_DATA)[0][:1]
    payload = pack(run_onnx(split.edge, {"input": x}), split.wires)
    assert len(payload) == split.plan["payload_bytes"] == int(ev.payload_bytes[0])


def test_a_non_prefix_plan_is_cut_where_its_edge_layers_end():
    # the trained example's two parallel branches: conv3b.0 on the edge, conv3a.0 (earlier in execution order)
    # in the cloud, so the add's output crosses for conv3a.0 beside conv3b.0's
    calibration = load_npz(TRAINED_CALIBRATION)[0]
    quantizer = make_quantizer(TRAINED, calibration, "calibrated", "per-channel")
    edge = ["conv1.0", "pool", "conv2a.0", "conv2b.0", "add", "conv3b.0"]
    bits = {"weight_bits": [6, None, 5, 4, None, 3], "activation_bits": [8, 7, 6, 5, 4, 2]}
    split = build_split(quantizer, {"edge_layers": edge, **bits})
    assert split.plan["cut_index"] is None
    assert [(c["layer"], c["bits"]) for c in split.plan["crossing"]] == [("add", 4), ("conv3b.0", 2)]
    assert split.plan["payload_bytes"] == 3072 * 4 // 8 + 3072 * 2 // 8
    x = load_npz(TRAINED_DATA)[0][:30]
    whole = quantizer.logits(x, {n: b for n, b in zip(edge, bits["weight_bits"]) if b is not None},
                             dict(zip(edge, bits["activation_bits"])))
    np.testing.assert_array_equal(next(iter(edge_then_cloud(split, x).values())), whole)


def test_a_cloud_only_plan_sends_the_input_at_8_bits_as_the_simulator_counts_it(digits):
    split = build_split(digits, {"edge_layers": [], "weight_bits": [], "activation_bits": []})
    assert [(c["name"], c["bits"]) for c in split.plan["crossing"]] == [("input::q8", 8)]
    scenario = make_scenario(str(DIGITS))
    layers = len(scenario.graph.layers)
    ev = evaluate(scenario.tables, np.zeros((1, layers), int), np.zeros((1, layers), int), cut=np.array([0]))
    assert split.plan["payload_bytes"] == int(ev.payload_bytes[0]) == 64
    x = load_npz(DIGITS_DATA)[0][:50]
    original = run_onnx(onnx.load(str(DIGITS)), {"input": x})["logits"]
    got = edge_then_cloud(split, x)["logits"]
    # digits' inputs (k/16) are not 8-bit pixel values: the 8-bit grid over their range rounds them a little
    np.testing.assert_allclose(got, original, atol=0.05 * np.abs(original).max())
    assert np.mean(got.argmax(1) == original.argmax(1)) >= 0.95


def test_8_bit_pixel_inputs_cross_losslessly():
    from simulator.deploy.export import input_grid

    pixels = np.random.default_rng(0).integers(3, 250, (4, 1, 8, 8)).astype(np.float32)
    assert input_grid(pixels) == (1.0, 0.0)
    step, zero_point = input_grid(pixels / 255)
    assert step == pytest.approx((pixels.max() - 0) / 255 / 255)


# --- what export refuses ------------------------------------------------------------------------------------
@pytest.mark.parametrize("plan,message", [
    ({"edge_layers": ["layer1.0.conv1"], "weight_bits": [8], "activation_bits": [8]}, "not a layer of"),
    ({"edge_layers": ["conv1", "conv2", "conv3", "pool", "flatten", "fc"], "weight_bits": [8] * 6,
      "activation_bits": [8] * 6}, "edge-only"),
    ({"edge_layers": ["conv2"], "weight_bits": [8], "activation_bits": [8]}, "not closed"),
    ({"edge_layers": ["conv1"], "weight_bits": [8], "activation_bits": [12]}, "1..8 or 16"),
])
def test_a_plan_that_does_not_fit_the_model_is_a_user_error(digits, plan, message):
    from hardware_models.errors import UserError

    with pytest.raises(UserError, match=message):
        build_split(digits, plan)


# --- the command -------------------------------------------------------------------------------------------
def test_export_command_writes_checked_files_whose_accuracy_is_the_measured_accuracy(tmp_path, capsys):
    plan = {"method": "hand", "edge_layers": ["conv1", "conv2"], "weight_bits": [4, 3], "activation_bits": [5, 3],
            "payload_bytes": 192}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out = tmp_path / "split"
    assert main(["export", str(DIGITS), "--plan", str(tmp_path / "plan.json"), "--out", str(out),
                 "--calibration", str(DIGITS_CALIBRATION), "--format", "json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written == json.loads((out / "plan.json").read_text())
    assert written["payload_bytes"] == written["simulated_payload_bytes"] == 192
    assert written["self_check"]["max_abs_difference"] == 0.0
    crossing = written["crossing"][0]
    assert (crossing["name"], crossing["shape"], crossing["bits"], crossing["dtype"]) == \
        ("conv2::q3", [1, 32, 4, 4], 3, "uint8")
    cloud = onnx.load(str(out / "cloud.onnx"))
    assert "DequantizeLinear" in {n.op_type for n in cloud.graph.node}
    assert [i.name for i in cloud.graph.input] == ["conv2::q3"]
    # the files, run on the data, give the accuracy `autosplit accuracy --data` measures for the plan
    x, y = load_npz(DIGITS_DATA)
    meter = AccuracyMeter(DIGITS, x, y, load_npz(DIGITS_CALIBRATION)[0])
    measured = meter.accuracy({"conv1": 4, "conv2": 3}, {"conv1": 5, "conv2": 3})
    edge_model, cloud_model = onnx.load(str(out / "edge.onnx")), onnx.load(str(out / "cloud.onnx"))
    # one request at a time: the split's batch is 1, as `prepare_onnx` reads the model for every command
    logits = np.concatenate([run_onnx(cloud_model, run_onnx(edge_model, {"input": sample[None]}))["logits"]
                             for sample in x])
    assert np.mean(logits.argmax(1) == y) * 100 == measured
    # an existing export is not overwritten without --force
    assert main(["export", str(DIGITS), "--plan", str(tmp_path / "plan.json"), "--out", str(out),
                 "--calibration", str(DIGITS_CALIBRATION)]) == 2
    assert "--force" in capsys.readouterr().err


def test_export_picks_a_row_of_an_experiment_table(tmp_path, capsys):
    rows = ["method,edge_layers,weight_bits,activation_bits,payload_bytes",
            'a,"[""conv1""]",[8],[8],1024', 'b,"[""conv1"", ""conv2""]","[4, 4]","[4, 4]",256']
    (tmp_path / "plans.csv").write_text("\n".join(rows) + "\n")
    common = [str(DIGITS), "--plan", str(tmp_path / "plans.csv"), "--calibration", str(DIGITS_CALIBRATION)]
    assert main(["export", *common, "--out", str(tmp_path / "x")]) == 2
    assert "holds 2 plans" in capsys.readouterr().err
    assert main(["export", *common, "--out", str(tmp_path / "b"), "--method", "b", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["payload_bytes"] == 256
    # plans.csv marks each method's chosen plan among its front and samples
    rows = ["method,kept_as,edge_layers,weight_bits,activation_bits",
            'b,front,"[""conv1""]",[8],[8]', 'b,chosen,"[""conv1"", ""conv2""]","[4, 4]","[2, 4]"']
    (tmp_path / "plans.csv").write_text("\n".join(rows) + "\n")
    assert main(["export", *common, "--out", str(tmp_path / "c"), "--method", "b", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["activation_bits"] == [2, 4]


@pytest.mark.slow
def test_export_with_a_method_and_scenario_flags_exports_that_methods_plan(tmp_path, capsys):
    flags = ["--edge", "eyeriss", "--cloud", "tpu_v1", "--uplink", "1Mbps", "--edge-memory", "64KiB",
             "--max-accuracy-drop", "1", "--data", str(DIGITS_DATA), "--calibration", str(DIGITS_CALIBRATION)]
    assert main(["export", str(DIGITS), "--method", "cloud", *flags, "--out", str(tmp_path / "s"), "--format",
                 "json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["source_plan"]["method"] == "cloud" and written["edge_layers"] == []
    assert written["payload_bytes"] == written["simulated_payload_bytes"] == 64
    # the scenario flags without a method, or beside a plan file, are refused in one line
    assert main(["export", str(DIGITS), *flags, "--out", str(tmp_path / "t")]) == 2
    assert "missing: --method" in capsys.readouterr().err


@pytest.mark.parametrize("name,cut,bits", [("resnet18", 6, [8, 4, 6, 5, 7, 3]),
                                           ("mobilenet_v2", 7, [8, 6, 5, 4, 3, 2, 7]),
                                           ("efficientnet_b0", 9, [8, 8, 7, 6, 5, 4, 8, 6, 5])])
@pytest.mark.slow
def test_the_foundation_fixtures_split_into_halves_equal_to_the_whole_model(name, cut, bits):
    rng = np.random.default_rng(0)
    quantizer = make_quantizer(FIXTURES / "onnx" / f"{name}.onnx", rng.random((2, 3, 224, 224), dtype=np.float32),
                               "calibrated", "per-channel")
    edge = quantizer.layers[:cut]
    weights = [4 if n in quantizer.weight_layers else None for n in edge]
    split = build_split(quantizer, {"edge_layers": edge, "weight_bits": weights, "activation_bits": bits})
    x = rng.random((1, 3, 224, 224), dtype=np.float32)
    whole = quantizer.logits(x, {n: 4 for n in edge if n in quantizer.weight_layers}, dict(zip(edge, bits)))
    got = next(iter(edge_then_cloud(split, x).values()))
    np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-5 * np.abs(whole).max())
    assert split.plan["payload_bytes"] == -(-sum(c["elements"] * c["bits"] for c in split.plan["crossing"]) // 8)


def test_a_model_the_fake_quantizer_cannot_read_is_one_clean_error(tmp_path, capsys):
    plan = tmp_path / "plan.json"
    plan.write_text('{"edge_layers": ["conv1"], "weight_bits": [8], "activation_bits": [8]}')
    calibration = tmp_path / "calibration.npz"
    np.savez(calibration, x=np.zeros((1, 3, 224, 224), np.float32))
    for model in (FIXTURES / "onnx" / "shufflenet_v2_x1_0.onnx", DIGITS_DATA):
        shown = model if model.suffix == ".onnx" else tmp_path / "not_a_model.onnx"
        if shown != model:
            shown.write_bytes(model.read_bytes())
        assert main(["export", str(shown), "--plan", str(plan), "--calibration", str(calibration), "--out",
                     str(tmp_path / "out"), "--force"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("error: ") and shown.name in err
