"""ONNX import of modern networks (issue 21): transformers, modern CNNs, attention and recurrent layers exported
from torchvision with both torch exporters (tests/fixtures/onnx/NAME.{torchscript,dynamo}.onnx.gz, gzipped graphs
unpacked here), counted against
torch's own numbers in reference.json (FlopCounterMode MACs and sum(p.numel()), written by make_onnx_fixtures.py
with torch; these tests never need torch); and the import's parts on small hand-built graphs."""
import gzip
import json
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support import FIXTURES

from hardware_models.errors import UserError
from simulator.cli import main
from simulator.graph import load_model, prepare_onnx
from simulator.graph.cuts import enumerate_cuts

ONNX = FIXTURES / "onnx"
REFERENCE = json.loads((ONNX / "reference.json").read_text())
EXPORTS = sorted(p.name.removesuffix(".gz") for p in ONNX.glob("*.*.onnx.gz"))


@pytest.fixture(scope="session")
def unpacked(tmp_path_factory):
    """file name -> the path of that gzipped fixture, unpacked once per session."""
    folder = tmp_path_factory.mktemp("onnx")

    def path(file):
        target = folder / file
        if not target.exists():
            source = ONNX / file
            target.write_bytes(gzip.decompress((ONNX / f"{file}.gz").read_bytes()) if not source.exists()
                               else source.read_bytes())
        return target
    return path


def test_every_reference_model_has_an_export():
    exported = {name.split(".")[0] for name in EXPORTS}
    assert set(REFERENCE) <= exported


@pytest.mark.slow
@pytest.mark.parametrize("file", EXPORTS)
def test_import_counts_torchs_macs_and_parameters(file, unpacked):
    """MACs within 2% of FlopCounterMode (attention matmuls included), parameters within 0.5% of those torch's eval
    forward uses (batchnorm folded by the exporter and relative-position tables it gathered explain the rest)."""
    graph = load_model(str(unpacked(file)))
    torch_numbers = REFERENCE[file.split(".")[0]]
    assert graph.macs == pytest.approx(torch_numbers["macs"], rel=0.02)
    assert graph.params == pytest.approx(torch_numbers["params_in_forward"], rel=0.005)
    assert graph.input_shape == tuple(torch_numbers["input_shape"])
    assert len(enumerate_cuts(graph)) == len(graph.layers) + 1


@pytest.mark.slow
def test_dynamo_export_is_named_from_module_paths_and_counts_attention(unpacked):
    graph = load_model(str(unpacked("vit_b_16.dynamo.onnx")))
    assert not [l.name for l in graph.layers if l.name.startswith("node_")]
    attention = "encoder.layers.encoder_layer_0.self_attention"
    scores, weighted = graph.layer(f"{attention}.matmul"), graph.layer(f"{attention}.matmul#2")
    assert graph.layer(f"{attention}.softmax").op == "softmax"
    # QK^T per head: 197 x 197 scores, each a 64-long dot product; 12 heads
    assert scores.attrs["batch_matrices"] == 12 and scores.macs == 12 * 197 * 197 * 64
    assert weighted.macs == 12 * 197 * 64 * 197 and scores.weight_elements == 0
    mlp = graph.layer("encoder.layers.encoder_layer_0.mlp.0")
    assert mlp.op == "linear" and mlp.params == 768 * 3072 + 3072 and mlp.attrs["activation"] == "gelu"
    # the positional embedding and the class token are parameters where they are read
    assert graph.layer("encoder.add").params == 197 * 768


def test_matmul_plus_constant_add_is_one_linear_layer_with_its_bias(unpacked):
    graph = load_model(str(unpacked("transformer_encoder_layer.dynamo.onnx")), simplify=False)
    linears = [l for l in graph.layers if l.op == "linear"]
    assert linears and all(l.attrs["bias"] for l in linears)
    # no add of a constant after a linear layer: the bias is in it
    assert not [l for l in graph.layers if l.op == "add" and len(l.inputs) == 1 and l.inputs[0] in graph.index
                and graph.layer(l.inputs[0]).op == "linear"]
    assert sum(l.params for l in linears) == 3 * 64 * 64 + 3 * 64 + 64 * 64 + 64 + 64 * 128 + 128 + 128 * 64 + 64


@pytest.mark.parametrize("file", ["lstm.torchscript.onnx", "gru.dynamo.onnx"])
def test_recurrent_layer_is_costed_as_its_gate_matmuls(file, unpacked):
    graph = load_model(str(unpacked(file)))
    (rnn,) = [l for l in graph.layers if l.op in ("lstm", "gru")]
    gates = 4 if rnn.op == "lstm" else 3
    assert rnn.attrs["steps"] == 12 and rnn.attrs["gates"] == gates
    assert rnn.macs == 12 * gates * 64 * (32 + 64)
    # W, R and both biases, not the initial states
    assert rnn.params == gates * 64 * (32 + 64) + 2 * gates * 64


# --- hand-built graphs -----------------------------------------------------------------------------------
def save(tmp_path, nodes, inputs, outputs, initializers=(), opset=17, name="m.onnx"):
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(initializers)),
                              opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / name
    onnx.save(model, path)
    return path


def const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def tokens(name="x", shape=(1, 10, 16)):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def test_decomposed_layernorm_is_one_layer_with_gamma_and_beta(tmp_path):
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["mean"], name="/ln/ReduceMean", keepdims=1),
             helper.make_node("Sub", ["x", "mean"], ["d"], name="/ln/Sub"),
             helper.make_node("Pow", ["d", "two"], ["sq"], name="/ln/Pow"),
             helper.make_node("ReduceMean", ["sq", "axes"], ["var"], name="/ln/ReduceMean_1", keepdims=1),
             helper.make_node("Add", ["var", "eps"], ["ve"], name="/ln/Add"),
             helper.make_node("Sqrt", ["ve"], ["std"], name="/ln/Sqrt"),
             helper.make_node("Div", ["d", "std"], ["n"], name="/ln/Div"),
             helper.make_node("Mul", ["n", "ln.weight"], ["g"], name="/ln/Mul"),
             helper.make_node("Add", ["g", "ln.bias"], ["y"], name="/ln/Add_1")]
    inits = [const("axes", [-1], np.int64), const("two", 2.0), const("eps", 1e-6),
             const("ln.weight", np.ones(16)), const("ln.bias", np.zeros(16))]
    path = save(tmp_path, nodes, [tokens()], [tokens("y")], inits, opset=18)
    graph = load_model(str(path))
    assert [(l.name, l.op, l.params) for l in graph.layers] == [("ln", "layernorm", 32)]
    assert graph.layer("ln").attrs["eps"] == pytest.approx(1e-6)


@pytest.mark.parametrize("form", ["erf", "erf_half_first", "tanh"])
def test_gelu_forms_are_one_gelu(tmp_path, form):
    if form == "tanh":
        head = [helper.make_node("Pow", ["x", "three"], ["cube"], name="/act/Pow"),
                helper.make_node("Mul", ["cube", "c"], ["cc"], name="/act/Mul"),
                helper.make_node("Add", ["x", "cc"], ["inner"], name="/act/Add"),
                helper.make_node("Mul", ["inner", "k"], ["scaled"], name="/act/Mul_1"),
                helper.make_node("Tanh", ["scaled"], ["t"], name="/act/Tanh")]
    else:
        head = [helper.make_node("Div", ["x", "sqrt2"], ["scaled"], name="/act/Div"),
                helper.make_node("Erf", ["scaled"], ["t"], name="/act/Erf")]
    tail = [helper.make_node("Add", ["t", "one"], ["p"], name="/act/Add_1")]
    if form == "erf_half_first":
        tail += [helper.make_node("Mul", ["x", "half"], ["h"], name="/act/Mul_2"),
                 helper.make_node("Mul", ["h", "p"], ["y"], name="/act/Mul_3")]
    else:
        tail += [helper.make_node("Mul", ["x", "p"], ["xp"], name="/act/Mul_2"),
                 helper.make_node("Mul", ["xp", "half"], ["y"], name="/act/Mul_3")]
    inits = [const("three", 3.0), const("c", 0.044715), const("k", math.sqrt(2 / math.pi)),
             const("sqrt2", math.sqrt(2)), const("one", 1.0), const("half", 0.5)]
    graph = load_model(str(save(tmp_path, head + tail, [tokens()], [tokens("y")], inits)))
    assert [(l.name, l.op) for l in graph.layers] == [("act", "gelu")]


def test_attention_with_split_einsum_and_softmax(tmp_path):
    """q, k, v from one Split; scores by Einsum; their MACs are b*h*i*j*d, independent of the op's form."""
    x = tokens(shape=(1, 2, 10, 24))
    nodes = [helper.make_node("Split", ["x", "sizes"], ["q", "k", "v"], name="/attn/Split", axis=3),
             helper.make_node("Einsum", ["q", "k"], ["s"], name="/attn/Einsum", equation="bhid,bhjd->bhij"),
             helper.make_node("Softmax", ["s"], ["p"], name="/attn/Softmax", axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"], name="/attn/MatMul")]
    path = save(tmp_path, nodes, [x], [tokens("y", (1, 2, 10, 8))], [const("sizes", [8, 8, 8], np.int64)])
    graph = load_model(str(path))
    assert [l.op for l in graph.layers] == ["split", "split", "split", "matmul", "softmax", "matmul"]
    splits = [l for l in graph.layers if l.op == "split"]
    assert all(l.output_shape == (1, 2, 10, 8) and l.inputs == ("x",) for l in splits)
    scores = graph.layer("attn.matmul")
    assert scores.inputs == (splits[0].name, splits[1].name) and scores.macs == 2 * 10 * 10 * 8
    assert graph.layer("attn.softmax").attrs["axis"] == 3
    assert graph.layer("attn.matmul#2").macs == 2 * 10 * 8 * 10 and graph.layer("attn.matmul#2").inputs[1] == \
        splits[2].name


def test_constant_shape_arithmetic_folds_generically(tmp_path):
    """Mod, Equal, Where, Range and ScatterND of constants (Swin's padding arithmetic) fold with no per-op code."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="/Shape"),
             helper.make_node("Mod", ["s", "seven"], ["rem"], name="/Mod"),
             helper.make_node("Equal", ["rem", "zero"], ["even"], name="/Equal"),
             helper.make_node("Where", ["even", "s", "minus"], ["target"], name="/Where"),
             helper.make_node("Range", ["r0", "r1", "r2"], ["steps"], name="/Range"),
             helper.make_node("ScatterND", ["target", "idx", "upd"], ["target2"], name="/ScatterND"),
             helper.make_node("Reshape", ["x", "target2"], ["y"], name="/Reshape")]
    inits = [const("seven", [7, 7, 7], np.int64), const("zero", [0, 0, 0], np.int64),
             const("minus", [-1, -1, -1], np.int64), const("r0", 0, np.int64), const("r1", 3, np.int64),
             const("r2", 1, np.int64), const("idx", [[2]], np.int64), const("upd", [-1], np.int64)]
    path = save(tmp_path, nodes, [tokens(shape=(1, 14, 16))], [tokens("y", (1, 14, 16))], inits)
    model = prepare_onnx(path)
    assert [n.op_type for n in model.graph.node] == ["Reshape"]
    graph = load_model(str(path))
    assert [(l.op, l.output_shape) for l in graph.layers] == [("reshape", (1, 14, 16))]


def conv_model(tmp_path, dims, tail=(), name="m.onnx", out=("N", 4, "H", "W")):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r" if tail else "y"], name="/relu/Relu"), *tail]
    return save(tmp_path, nodes, [x], [y], [const("w", np.ones((4, 3, 3, 3)))], name=name)


def test_symbolic_spatial_input_is_refused_naming_the_flag_and_set_by_it(tmp_path, capsys):
    path = conv_model(tmp_path, ["N", 3, "H", "W"])
    with pytest.raises(UserError, match=r"input 'x' has the symbolic dimension 'H' on axis 2 \(Nx3xHxW\).*"
                                        r"--input-shape"):
        load_model(str(path))
    graph = load_model(str(path), input_shape=(1, 3, 32, 48))
    assert graph.input_shape == (1, 3, 32, 48) and graph.macs == 4 * 27 * 32 * 48
    assert main(["inspect", str(path), "--input-shape", "1x3x32x48", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["macs"] == 4 * 27 * 32 * 48
    assert main(["inspect", str(path), "--input-shape", "1x3xHx48"]) == 2
    assert "--input-shape: expected positive sizes" in capsys.readouterr().err
    with pytest.raises(UserError, match="has 4 dimensions"):
        load_model(str(path), input_shape=(1, 3, 32))
    fixed = conv_model(tmp_path, [1, 3, 16, 16], name="fixed.onnx", out=(1, 4, 16, 16))
    with pytest.raises(UserError, match="fixed size 16 on axis 2"):
        load_model(str(fixed), input_shape=(1, 3, 32, 32))


@pytest.mark.slow
def test_input_shape_and_until_are_yaml_keys_for_onnx_models_only(tmp_path):
    from pydantic import ValidationError
    from support import BASE_EXPERIMENT

    from simulator.experiment.scenario import build_scenario
    from simulator.experiment.schema import Experiment

    path = conv_model(tmp_path, ["N", 3, "H", "W"])
    config = Experiment.model_validate({**BASE_EXPERIMENT, "model": str(path), "input_shape": [1, 3, 32, 32],
                                        "until": "c", "accuracy": {"fp_accuracy": 70.0}})
    assert config.input_shape == [1, 3, 32, 32] and config.until == "c"
    scenario = build_scenario(config)  # the keys reach the scenario's graph
    assert scenario.graph.input_shape == (1, 3, 32, 32) and scenario.graph.macs == 4 * 27 * 32 * 32
    assert [l.op for l in scenario.graph.layers] == ["conv"]  # cut before the relu
    without = config.model_copy(update={"input_shape": None})
    with pytest.raises(UserError, match="--input-shape"):
        build_scenario(without)
    with pytest.raises(ValidationError, match="input_shape"):
        Experiment.model_validate({**BASE_EXPERIMENT, "input_shape": [1, 3, 32, 32]})
    with pytest.raises(ValidationError, match="positive sizes"):
        Experiment.model_validate({**BASE_EXPERIMENT, "model": str(path), "input_shape": [1, 0, 32, 32],
                                   "accuracy": {"fp_accuracy": 70.0}})


def test_post_processing_error_suggests_until_and_until_cuts_there(tmp_path):
    tail = [helper.make_node("Flatten", ["r"], ["f"], name="/head/Flatten"),
            helper.make_node("TopK", ["f", "k"], ["y", "i"], name="/post/TopK", axis=1)]
    path = conv_model(tmp_path, [1, 3, 8, 8], tail, out=(1, 5))
    model = onnx.load(path)
    model.graph.initializer.append(const("k", [5], np.int64))
    onnx.save(model, path)
    with pytest.raises(UserError, match=r"node '/post/TopK' \(TopK\): unsupported op 'TopK'; what follows is "
                                        r"post-processing \(TopK\): .*--until /head/Flatten"):
        load_model(str(path))
    graph = load_model(str(path), until="/head/Flatten")
    assert [l.op for l in graph.layers] == ["conv", "flatten"]
    assert load_model(str(path), until="f", simplify=False).layers[-1].output_shape == (1, 256)
    with pytest.raises(UserError, match=r"--until '/head/Flaten' \(until: in YAML\): .* no node or tensor .*did you mean"):
        load_model(str(path), until="/head/Flaten")
    with pytest.raises(UserError, match="--until is for an .onnx model"):
        load_model("resnet18", until="layer1")


@pytest.mark.slow
@pytest.mark.parametrize("file", ["multihead_attention.torchscript.onnx", "transformer_encoder_layer.dynamo.onnx",
                                  "lstm.torchscript.onnx", "swin_t.torchscript.onnx", "shufflenet_v2_x1_0.onnx"])
def test_prepared_model_computes_what_the_export_computes(file, unpacked):
    """onnxruntime gives the same outputs for the file and for prepare_onnx's model (folded, batch fixed)."""
    import onnxruntime as ort

    path = unpacked(file)
    prepared = prepare_onnx(path)
    assert len(prepared.graph.node) < len(onnx.load(path).graph.node)  # something was folded
    name = prepared.graph.input[0].name
    shape = [d.dim_value for d in prepared.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    original = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {name: x})
    ours = ort.InferenceSession(prepared.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {name: x})
    for a, b in zip(original, ours):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_plan_validates_input_shape_and_until_like_their_yaml_keys(tmp_path, capsys):
    scenario = ["--edge", "eyeriss", "--cloud", "tpu_v1", "--uplink", "3Mbps", "--edge-memory", "4MiB",
                "--max-accuracy-drop", "1", "--method", "autosplit"]
    path = conv_model(tmp_path, ["N", 3, "H", "W"])
    assert main(["plan", str(path), *scenario, "--fp-accuracy", "80", "--input-shape", "1x3x0x4"]) == 2
    assert capsys.readouterr().err.strip().endswith("--input-shape: expected positive sizes joined by x, batch "
                                                    "first, e.g. 1x3x224x224; got '1x3x0x4'")
    assert main(["plan", "resnet18", *scenario, "--until", "layer1"]) == 2
    assert "plan --until: 'resnet18' is a zoo model" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["resnext50_32x4d", "deeplabv3_mobilenet_v3_large"])
def test_both_exporters_name_layers_alike(model, unpacked):
    """Dynamo scopes a conv with a folded batchnorm as the batchnorm (`bn1`): it is named from its weight."""
    torchscript = [l.name for l in load_model(str(unpacked(f"{model}.torchscript.onnx"))).layers]
    dynamo = [l.name for l in load_model(str(unpacked(f"{model}.dynamo.onnx"))).layers]
    shared = set(torchscript) & set(dynamo)
    assert len(shared) >= len(dynamo) - 1  # resnext50: Flatten (TorchScript) vs Reshape (dynamo)
    assert not [n for n in dynamo if n.startswith("node_") or n.endswith(("bn1", "bn2", "bn3"))]


def test_importer_given_an_unprepared_model_refuses_a_symbolic_spatial_dimension(tmp_path):
    """The fake quantizer's own path (no prepare_onnx): a symbolic batch is 1, a symbolic H is refused."""
    from pathlib import Path

    from simulator.graph.onnx_import import _Importer

    model = onnx.shape_inference.infer_shapes(onnx.load(conv_model(tmp_path, ["N", 3, "H", 8])))
    with pytest.raises(UserError, match="symbolic dimension besides the batch.*--input-shape"):
        _Importer(model, Path("m.onnx"))
    batch_only = onnx.shape_inference.infer_shapes(onnx.load(conv_model(tmp_path, ["N", 3, 8, 8], name="b.onnx",
                                                                        out=("N", 4, 8, 8))))
    assert _Importer(batch_only, Path("b.onnx")).run().input_shape == (1, 3, 8, 8)
