"""Export a plan as two runnable ONNX models: `edge.onnx` (the model's input to every crossing tensor, quantized
at the plan's bits) and `cloud.onnx` (the crossing tensors to the model's outputs), plus `plan.json`.

The arithmetic is `simulator.accuracy.fake_quant.FakeQuantizer`'s, the one `autosplit accuracy --data` and an
experiment's `measured_accuracy` use, so the deployed split's accuracy is the measured accuracy of the plan:
- edge weights are the folded weights quantize-dequantized at the plan's weight bits (stored as float32 values
  on the quantization grid), cloud layers stay float32 as the measurement leaves them;
- every edge layer's output carries the fake quantization of its activation bits; a crossing tensor's codes
  q = Clip(Round(x * (1/scale)), -zero_point, 2^bits-1-zero_point) + zero_point leave the edge as uint8
  (`<layer>::q<bits>`) and enter the cloud through ONNX's own DequantizeLinear (uint8, per tensor; opset >= 10,
  the files keep the model's opset), which computes (q - zero_point) * scale, bit for bit the fake quantizer's
  code * scale. The codes are computed with the fake quantizer's Mul/Round/Clip rather than QuantizeLinear,
  which divides by the scale and can round a value on a half-step the other way. Codes of 1..8 bits share the
  uint8 carrier and are bit-packed on the wire (`packing.py`); ONNX's int4/uint4 (opset 21) covers 4 bits
  only, so it is not used;
- a crossing tensor at 16 bits leaves the edge as float16 (`<layer>::f16`) and is cast back to float32 in
  the cloud: the simulator's 16-bit payload, at half-precision rounding.
Both halves are cut from one model with `onnx.utils.Extractor` and checked with `onnx.checker` and shape
inference; `export` runs them on calibration samples and records the largest difference from the whole
fake-quantized model in plan.json.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hardware_models.errors import UserError
from simulator.accuracy.distortion import FLOAT_BITS, asymmetric_grid
from simulator.accuracy.fake_quant import FakeQuantizer
from simulator.accuracy.measure import check_inputs
from simulator.deploy.packing import FLOAT_WIRE_BITS, WireTensor, pack, packed_bytes, unpack
from simulator.graph.cuts import crossing_tensors, is_closed, prefix_index

if TYPE_CHECKING:
    import onnx

FORMAT = "autosplit-split/1"
PLAN_KEYS = ("edge_layers", "weight_bits", "activation_bits")
PACKING = ("one bit stream per request: the crossing tensors in plan order, each flattened in C order; a value "
           "of b bits (uint8 code below 16 bits, IEEE float16 at 16) least significant bit first; no padding "
           "between tensors, the last byte zero-padded: ceil(sum(elements * bits) / 8) bytes")
ENTROPY_NOTE = ("the plan was made with the entropy activation codec, an ideal entropy coder's rate that the "
                "runtime does not implement: it sends the raw bit-packed codes (codec raw)")

JPEG_NOTE = ("the plan was made with the jpeg input codec (JPEG bytes measured on photos); the runtime sends the "
             "input as raw 8-bit values")

# --- reading a plan -------------------------------------------------------------------------------------
def _from_csv_cell(value: str):
    value = value.strip()
    if value == "":
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def read_plan(path: str | Path, method: str | None = None, row: int | None = None) -> dict:
    """A plan dict (edge_layers, weight_bits, activation_bits, ...) from `autosplit plan --format json` output,
    a JSON list of such plans, or an experiment table (plans.csv, pareto.csv, baselines.csv, measured.csv);
    `method` keeps the rows of one method (its chosen plan where the table marks one), `row` picks one (0-based)
    among those left."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--plan: {path}: no such file")
    text = path.read_text(errors="replace")
    if path.suffix.lower() == ".csv":
        rows = [{k: _from_csv_cell(v) for k, v in r.items() if k is not None}
                for r in csv.DictReader(text.splitlines())]
    else:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"--plan: {path}: not JSON ({exc.msg} at line {exc.lineno}); give the output of "
                            "`autosplit plan --format json` or an experiment's .csv table") from None
        rows = loaded if isinstance(loaded, list) else [loaded]
    rows = [r for r in rows if isinstance(r, dict)]
    if method is not None:
        rows = [r for r in rows if r.get("method") == method]
        for column in ("role", "kept_as"):  # measured.csv and plans.csv mark each method's chosen plan
            if any(r.get(column) == "chosen" for r in rows):
                rows = [r for r in rows if r.get(column) == "chosen"]
    if not rows:
        raise UserError(f"--plan: {path}: no plan{' of method ' + repr(method) if method else ''} in it")
    if row is None:
        if len(rows) > 1:
            raise UserError(f"--plan: {path} holds {len(rows)} plans; pick one with --row N (0..{len(rows) - 1})"
                            f"{'' if method else ' or --method NAME'}")
        row = 0
    if not 0 <= row < len(rows):
        raise UserError(f"--row: {row} is out of range; {path} has {len(rows)} plan(s) to choose from")
    plan = rows[row]
    missing = [k for k in PLAN_KEYS if not isinstance(plan.get(k), list)]
    if missing:
        raise UserError(f"--plan: {path}: the plan has no {', '.join(missing)} list (is it `autosplit plan "
                        "--format json` output?)")
    if not (len(plan["edge_layers"]) == len(plan["weight_bits"]) == len(plan["activation_bits"])):
        raise UserError(f"--plan: {path}: edge_layers, weight_bits and activation_bits differ in length")
    return plan


# --- the split ----------------------------------------------------------------------------------------
@dataclass
class Split:
    """What export produced: the two models, the whole deployed model they were cut from, and the plan file."""

    edge: onnx.ModelProto
    cloud: onnx.ModelProto
    whole: object      # the fake-quantized model with the wire casts at the cut (edge + cloud in one graph)
    plan: dict         # the contents of plan.json
    wires: list[WireTensor]


def _bits(value, what: str, layer: str) -> int:
    if value is None:
        return FLOAT_BITS
    try:
        bits = int(value)
    except (TypeError, ValueError):
        raise UserError(f"--plan: {what} of {layer!r} is {value!r}, not a bit-width") from None
    if not (1 <= bits <= 8 or bits in (16, 32)):
        raise UserError(f"--plan: {what} of {layer!r} is {bits}; expected 1..8 or 16 (float)")
    return min(bits, FLOAT_BITS)


def _producer_index(model, tensor: str) -> int:
    return next(i for i, node in enumerate(model.graph.node) if tensor in node.output)


def _replace_nodes(model, index: int, count: int, nodes: list) -> None:
    """Put `nodes` in place of `count` nodes from `index` of `model`'s graph (0: insert), keeping the order."""
    existing = list(model.graph.node)
    existing[index: index + count] = nodes
    del model.graph.node[:]
    model.graph.node.extend(existing)


def _tensor_info(quantizer, layer: str, wire: str, bits: int, scale, zero_point) -> dict:
    shape = [int(d) for d in quantizer.graph.tensors[layer].shape]
    return {"name": wire, "tensor": quantizer.output_tensor[layer], "layer": layer, "shape": shape,
            "elements": int(np.prod(shape)), "bits": bits, "dtype": "float16" if bits >= FLOAT_WIRE_BITS else "uint8",
            "scale": scale, "zero_point": zero_point,
            "range": list(quantizer.activation_range(layer, bits)) if bits < FLOAT_BITS else None}


def _send_codes(whole, quantizer, layer: str, bits: int) -> dict:
    """The fake quantizer's last Mul (code * step) of `layer` gives way to Add(zero point) -> Cast(uint8), the
    wire, then DequantizeLinear, which computes the same float32 product."""
    from onnx import TensorProto, helper, numpy_helper

    onnx_name = quantizer.output_tensor[layer]
    lo, hi = quantizer.activation_range(layer, bits)
    step, zero_point = asymmetric_grid(lo, hi, bits)
    prefix, wire = f"{layer}::aq", f"{layer}::q{bits}"
    index = _producer_index(whole, onnx_name)
    dequantize = whole.graph.node[index]
    if dequantize.op_type != "Mul" or dequantize.input[0] != f"{prefix}::code":
        raise UserError(f"layer {layer!r}: its output {onnx_name!r} is not the fake quantizer's; cannot cut there")
    whole.graph.initializer.extend([
        numpy_helper.from_array(np.array(np.float32(zero_point)), f"{prefix}::zero_point_float"),
        numpy_helper.from_array(np.array(np.uint8(zero_point)), f"{prefix}::zero_point")])
    _replace_nodes(whole, index, 1, [
        helper.make_node("Add", [f"{prefix}::code", f"{prefix}::zero_point_float"], [f"{prefix}::q_float"]),
        helper.make_node("Cast", [f"{prefix}::q_float"], [wire], to=TensorProto.UINT8),
        helper.make_node("DequantizeLinear", [wire, f"{prefix}::step", f"{prefix}::zero_point"], [onnx_name])])
    return _tensor_info(quantizer, layer, wire, bits, float(np.float32(step)), int(zero_point))


def _send_float16(whole, quantizer, layer: str) -> dict:
    """A 16-bit crossing tensor: Cast to float16 (the wire) after its producer, Cast back to float32 for the
    cloud."""
    from onnx import TensorProto, helper

    onnx_name = quantizer.output_tensor[layer]
    wire = f"{layer}::f16"
    index = _producer_index(whole, onnx_name)
    producer = whole.graph.node[index]
    for i, out in enumerate(producer.output):
        if out == onnx_name:
            producer.output[i] = f"{onnx_name}::float32"
    _replace_nodes(whole, index + 1, 0, [
        helper.make_node("Cast", [f"{onnx_name}::float32"], [wire], to=TensorProto.FLOAT16),
        helper.make_node("Cast", [wire], [onnx_name], to=TensorProto.FLOAT)])
    return _tensor_info(quantizer, layer, wire, FLOAT_WIRE_BITS, None, None)


def build_split(quantizer, plan: dict) -> Split:
    """Cut `quantizer`'s model (a `FakeQuantizer`) at `plan`; a UserError when the plan does not fit the model."""
    import onnx

    graph = quantizer.graph
    edge_layers = [str(name) for name in plan["edge_layers"]]
    unknown = [name for name in edge_layers if name not in quantizer.layers]
    if unknown:
        raise UserError(f"--plan: layer {unknown[0]!r} is not a layer of {quantizer.path.name} "
                        f"(its layers, as `autosplit inspect` lists them: {', '.join(quantizer.layers[:6])}"
                        f"{', ...' if len(quantizer.layers) > 6 else ''}); was the plan made for another model?")
    if len(edge_layers) == len(quantizer.layers):
        raise UserError("--plan: an edge-only plan (every layer on the edge): there is nothing to send")
    if not is_closed(graph, edge_layers):
        raise UserError("--plan: the edge layers are not closed under predecessors: an edge layer reads a cloud "
                        "layer's output")
    weight_bits = {n: _bits(w, "weight bits", n) for n, w in zip(edge_layers, plan["weight_bits"])
                   if n in quantizer.weight_layers}
    activation_bits = {n: _bits(a, "activation bits", n) for n, a in zip(edge_layers, plan["activation_bits"])}
    crossing = crossing_tensors(graph, edge_layers)

    whole = quantizer.model(weight_bits, activation_bits)
    wires, crossing_info = [], []
    for tensor in crossing:
        if tensor.name in graph.inputs:
            info = _send_input(whole, quantizer, tensor.name)
        elif activation_bits[tensor.name] < FLOAT_BITS:
            info = _send_codes(whole, quantizer, tensor.name, activation_bits[tensor.name])
        else:
            info = _send_float16(whole, quantizer, tensor.name)
        wires.append(WireTensor(info["name"], tuple(info["shape"]), info["bits"]))
        crossing_info.append(info)
    try:
        onnx.checker.check_model(whole)
        whole = onnx.shape_inference.infer_shapes(whole, strict_mode=True)
    except Exception as exc:
        raise UserError(f"{quantizer.path.name}: the split model does not pass onnx.checker: "
                        f"{' '.join(str(exc).split())[:300]}") from None

    input_name = quantizer.input_name
    outputs = [o.name for o in whole.graph.output]
    extractor = onnx.utils.Extractor(whole)
    edge = extractor.extract_model([input_name], [w.name for w in wires])
    cloud = extractor.extract_model([w.name for w in wires], outputs)
    for part, name, inputs in ((edge, "edge", {input_name}), (cloud, "cloud", {w.name for w in wires})):
        available = set(inputs) | {i.name for i in part.graph.initializer}
        for node in part.graph.node:
            missing = [t for t in node.input if t and t not in available]
            if missing:
                raise UserError(f"--plan: the {name} part needs tensor {missing[0]!r}, which the plan does not "
                                f"send across the cut")
            available.update(node.output)
        part.graph.name = f"{whole.graph.name}_{name}"
        onnx.checker.check_model(part)

    graph_outputs = []
    for output in cloud.graph.output:
        dims = output.type.tensor_type.shape.dim
        graph_outputs.append({"name": output.name, "shape": [1] + [d.dim_value for d in dims[1:]]})
    opset = max((o.version for o in whole.opset_import if o.domain in ("", "ai.onnx")), default=0)
    payload = packed_bytes(wires)
    plan_out = {
        "format": FORMAT,
        "model": quantizer.path.name,
        "opset": opset,
        "cut_index": prefix_index(graph, edge_layers),
        "edge_layers": edge_layers,
        "weight_bits": [weight_bits.get(n) for n in edge_layers],
        "activation_bits": [activation_bits[n] for n in edge_layers],
        "input": {"name": input_name, "shape": [1, *graph.input_shape[1:]],
                  "dtype": "float32"},
        "outputs": graph_outputs,
        "crossing": crossing_info,
        "codec": "raw",
        "packing": PACKING,
        "payload_bytes": payload,
        "quantizer": {"tier": quantizer.tier, "granularity": quantizer.granularity},
    }
    return Split(edge, cloud, whole, plan_out, wires)


INPUT_BITS = 8


def input_grid(calibration_x: np.ndarray) -> tuple[float, float]:
    """(scale, zero point) of the 8-bit grid the model input crosses the cut on (the simulator's raw input codec:
    8 bits a value): step 1 from 0 when the calibration inputs are 8-bit pixel values (integers in 0..255), which
    is lossless for such data; else the min-max range of the calibration inputs."""
    x = np.asarray(calibration_x, dtype=np.float64)
    if x.size and x.min() >= 0 and x.max() <= 255 and np.array_equal(x, np.round(x)):
        return 1.0, 0.0
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
    return asymmetric_grid(lo, hi, INPUT_BITS)


def _send_input(whole, quantizer, name: str) -> dict:
    """Quantize the graph input `name` to 8 bits on the edge and dequantize it in the cloud: every node that read
    the input reads the dequantized copy (cloud-only plans, and non-prefix plans where a cloud layer reads the
    input)."""
    from onnx import TensorProto, helper, numpy_helper

    step, zero_point = input_grid(quantizer.calibration_x)
    prefix, wire = f"{name}::iq", f"{name}::q{INPUT_BITS}"
    received = f"{name}::received"
    for node in whole.graph.node:
        for i, t in enumerate(node.input):
            if t == name:
                node.input[i] = received
    consts = {f"{prefix}::inv_step": np.float32(1.0 / step), f"{prefix}::lo": np.float32(-zero_point),
              f"{prefix}::hi": np.float32(2 ** INPUT_BITS - 1 - zero_point), f"{prefix}::zp_float": np.float32(zero_point),
              f"{prefix}::step": np.float32(step), f"{prefix}::zero_point": np.uint8(zero_point)}
    whole.graph.initializer.extend(numpy_helper.from_array(np.array(v), k) for k, v in consts.items())
    nodes = [helper.make_node("Mul", [name, f"{prefix}::inv_step"], [f"{prefix}::scaled"]),
             helper.make_node("Round", [f"{prefix}::scaled"], [f"{prefix}::rounded"]),
             helper.make_node("Clip", [f"{prefix}::rounded", f"{prefix}::lo", f"{prefix}::hi"], [f"{prefix}::code"]),
             helper.make_node("Add", [f"{prefix}::code", f"{prefix}::zp_float"], [f"{prefix}::q_float"]),
             helper.make_node("Cast", [f"{prefix}::q_float"], [wire], to=TensorProto.UINT8),
             helper.make_node("DequantizeLinear", [wire, f"{prefix}::step", f"{prefix}::zero_point"], [received])]
    _replace_nodes(whole, 0, 0, nodes)
    shape = [1, *quantizer.graph.tensors[name].shape[1:]]
    return {"name": wire, "tensor": name, "layer": None, "shape": shape, "elements": int(np.prod(shape)),
                  "bits": INPUT_BITS, "dtype": "uint8", "scale": float(np.float32(step)), "zero_point": int(zero_point),
                  "range": None}


def wires_of(plan: dict) -> list[WireTensor]:
    """The wire tensors of a plan.json dict."""
    return [WireTensor(str(c["name"]), tuple(int(d) for d in c["shape"]), int(c["bits"])) for c in plan["crossing"]]


# --- the command ------------------------------------------------------------------------------------------
def make_quantizer(model_path: str | Path, calibration_x: np.ndarray, tier: str, granularity: str, *,
                   input_shape: tuple[int, ...] | None = None, until: str | None = None):
    """The FakeQuantizer `AccuracyMeter` builds for this model and calibration, one sample per run (the split
    serves one request at a time)."""
    check_inputs(model_path, calibration_x, "--calibration")
    return FakeQuantizer(model_path, calibration_x, tier, granularity, input_shape=input_shape, until=until)


def run_onnx(model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of `model` (ModelProto or bytes) with onnxruntime, configured as the accuracy measurement is
    (one thread, graph optimisations off), so that the arithmetic is the same."""
    session = session_of(model)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def session_of(model):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def self_check(split: Split, quantizer, x: np.ndarray) -> dict:
    """Edge, then packing and unpacking, then cloud on inputs `x`, against the whole fake-quantized model:
    the largest absolute output difference and whether every top-1 class agrees."""
    model = quantizer.model(
        {n: b for n, b in zip(split.plan["edge_layers"], split.plan["weight_bits"]) if b is not None},
        dict(zip(split.plan["edge_layers"], split.plan["activation_bits"])))
    whole = session_of(model)
    reference_names = [o.name for o in whole.get_outputs()]
    reference = dict(zip(reference_names, quantizer.run_batches(whole, x, reference_names)))
    edge_session, cloud_session = session_of(split.edge), session_of(split.cloud)
    names = [o.name for o in cloud_session.get_outputs()]
    outputs = []
    for sample in x:
        wires = dict(zip([w.name for w in split.wires],
                         edge_session.run([w.name for w in split.wires], {quantizer.input_name: sample[None]})))
        received = unpack(pack(wires, split.wires), split.wires)
        outputs.append(cloud_session.run(names, received))
    worst, agree = 0.0, True
    for i, name in enumerate(names):
        got = np.concatenate([o[i] for o in outputs])
        want = reference[name]
        worst = max(worst, float(np.max(np.abs(got - want))) if got.size else 0.0)
        agree &= bool(np.array_equal(got.reshape(len(x), -1).argmax(1), want.reshape(len(x), -1).argmax(1)))
    return {"samples": int(len(x)), "max_abs_difference": worst, "top1_agrees": agree}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_split(model_path: str | Path, plan: dict, out: str | Path, calibration_x: np.ndarray,
                 calibration_name: str, tier: str = "calibrated", granularity: str = "per-channel",
                 check_samples: int = 16, force: bool = False, *, input_shape: tuple[int, ...] | None = None,
                 until: str | None = None) -> dict:
    """Write edge.onnx, cloud.onnx and plan.json to `out`; returns plan.json's contents. `input_shape` and
    `until` are --input-shape and --until, as for every command that reads the model."""
    import onnx

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a directory")
    existing = [n for n in ("edge.onnx", "cloud.onnx", "plan.json") if (out / n).exists()]
    if existing and not force:
        raise UserError(f"--out: {out} already holds {', '.join(existing)}; give --force to overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out: cannot create {out} ({exc.strerror or exc})") from None
    try:
        quantizer = make_quantizer(model_path, calibration_x, tier, granularity, input_shape=input_shape,
                                   until=until)
    except UserError:
        raise
    except Exception as exc:  # onnx and onnxruntime raise many unrelated types for a file they cannot use
        raise UserError(f"{model_path}: cannot prepare it for export: {' '.join(str(exc).split())[:300] or type(exc).__name__}") from None
    split = build_split(quantizer, plan)
    check = self_check(split, quantizer, calibration_x[:check_samples])
    source = {k: v for k, v in plan.items() if k not in PLAN_KEYS}
    result = dict(split.plan)
    result["model_sha256"] = file_sha256(Path(model_path))
    result["quantizer"]["calibration"] = {"file": calibration_name, "samples": int(len(calibration_x))}
    result["source_plan"] = source
    simulated = source.get("payload_bytes")
    result["simulated_payload_bytes"] = None if simulated in (None, "") else float(simulated)
    if source.get("activation_codec") == "entropy":
        result["codec_note"] = ENTROPY_NOTE
    elif source.get("input_codec") == "jpeg" and any(c["layer"] is None for c in result["crossing"]):
        result["codec_note"] = JPEG_NOTE
    result["self_check"] = check
    for name, part in (("edge", split.edge), ("cloud", split.cloud)):
        tmp = out / f".{name}.onnx.tmp"
        onnx.save(part, str(tmp))
        tmp.replace(out / f"{name}.onnx")
    result["files"] = {n: file_sha256(out / n) for n in ("edge.onnx", "cloud.onnx")}
    tmp = out / ".plan.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out / "plan.json")
    return result
