"""Fake quantization of an ONNX model at per-layer bit-widths, for measuring accuracy with onnxruntime.

The layers are those of the simplified graph (`simulator.graph.load_model`: batchnorm folded into its conv,
activations fused), so bit-widths line up with `autosplit inspect`'s layer list. For a plan:
- each weight layer's ONNX weight initializer is replaced by its folded weight, quantize-dequantized per
  output channel (or per tensor) symmetrically (`distortion.quantize_weight`), and its bias by the folded bias
  (kept in float: int32 in a real deployment); the folded batchnorm node is removed;
- each layer's output tensor (after its fused activation) passes through Mul(1/step), Round,
  Clip(-zero_point, 2^b - 1 - zero_point), Mul(step): the asymmetric per-tensor grid of
  `distortion.quantize_asymmetric`, which works for any bit-width from 1 to 8 (ONNX QuantizeLinear only
  knows 8-bit and 4-bit integer types). Ranges come from calibration inputs (`activation_range`): each
  tensor's values on them, at most `CALIBRATION_VALUES` of them (an even stride, plus the smallest and the
  largest, so the min-max range is exact), which bounds the range search and the distortion tables' cost.
Bits >= 16 leave a weight or a tensor in float: the reference.

onnxruntime runs with graph optimisations off (a fused Conv+Mul would round differently from the exported
split, which must agree to the bit) and one thread per core. A measurement is bitwise what the deployed split
computes one request at a time (`BATCH`): onnxruntime may round differently at another batch (a GEMM at one
row can take another kernel; a transformer once flipped 4 of 256 top-1 answers at batch 32). So `logits` runs
many samples at a time (`use_batches`) only after checking, once per model and data, that the float model's
outputs at that batch equal those of one sample at a time bit for bit (the kernels depend on the shapes, not
the values); and on that data it keeps the float model's first tensors (`REUSE_BYTES`) and runs only the nodes
a bit assignment changes (`_changed_part`: a layer quantized late reads the float values before it). A file
that fixes another batch is run at that batch.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from hardware_models.errors import UserError
from simulator.accuracy.cache import MeasurementCache
from simulator.accuracy.distortion import FLOAT_BITS, activation_range, asymmetric_grid, quantize_weight
from simulator.graph import onnx_import
from simulator.graph.ir import Graph
from simulator.graph.simplify import simplify

WEIGHT_OPS = ("Conv", "Gemm", "MatMul")
WEIGHT_LAYER_OPS = ("conv", "linear")  # layers whose weights are quantized (LayerNorm's scale stays float)
FLOAT_OUTPUT_OPS = ("layernorm", "softmax")  # outputs kept in float unless they cross the cut
BATCH = 1
CALIBRATION_VALUES = 1 << 22
REUSE_BYTES = 1 << 27
"""Float tensor values on the data kept for measurements to read instead of computing (`_changed_part`)."""


def _onnx_outputs_of_raw_layers(model, path: Path) -> tuple[Graph, dict[str, str]]:
    """The raw Graph of `model` (as `prepare_onnx` made it) and, for each raw layer, the ONNX tensor it stands
    for."""
    importer = onnx_import._Importer(model, path)
    raw = importer.run()
    onnx_of: dict[str, str] = {}
    for onnx_name, ir_name in importer.tensor_of.items():
        onnx_of[ir_name] = onnx_name  # the last ONNX tensor an IR tensor stands for (after fused no-ops)
    return raw, onnx_of


class FakeQuantizer:
    """An ONNX model prepared for fake quantization: folded, with its layers' tensors and calibration samples.

    `layers` are the simplified graph's layer names (inspect's order); `weight_layers` those with weights.
    `calibration_x` (model-ready inputs, batch first) fixes the activation ranges. The model is read as every
    command reads it (`prepare_onnx`: shapes fixed, truncated at `until`, constants folded), with its batch
    fixed at `batch` and the other input dimensions those of `input_shape`, else of the calibration samples;
    inputs are run in batches of that size (the last one padded).
    """

    def __init__(self, onnx_path: str | Path, calibration_x: np.ndarray, tier: str = "calibrated",
                 granularity: str = "per-channel", cache: MeasurementCache | None = None, *,
                 input_shape: tuple[int, ...] | None = None, until: str | None = None, batch: int = 1) -> None:
        from simulator.graph.onnx_prepare import prepare_onnx

        self.cache = cache  # activation ranges found before (for the same model, calibration and tier)
        self.path = Path(onnx_path)
        self.calibration_x = calibration_x  # the input's grid when it crosses a cut (export)
        self.tier, self.granularity = tier, granularity
        self.batch = batch
        sample = tuple(input_shape[1:]) if input_shape else tuple(np.shape(calibration_x)[1:])
        model = prepare_onnx(self.path, input_shape=(batch, *sample), until=until)
        raw, onnx_of = _onnx_outputs_of_raw_layers(model, self.path)
        self.graph = simplify(raw)
        self.layers = [layer.name for layer in self.graph.layers]
        self.weight_layers = [l.name for l in self.graph.layers if l.op in WEIGHT_LAYER_OPS and
                              "weight" in self.graph.weights.get(l.name, {})]
        self.input_name = next(i.name for i in model.graph.input
                               if i.name not in {t.name for t in model.graph.initializer})
        self.output_tensor = {l.name: onnx_of[l.fused[-1] if l.fused else l.name] for l in self.graph.layers}
        self._weights: dict[tuple[str, int], np.ndarray] = {}
        self._onnx_of, self._until = onnx_of, until  # to prepare the model again at another batch (`_widen`)
        self._prepared_outputs = [list(n.output) for n in model.graph.node]
        self.base = self._fold(model, onnx_of)
        self.wide: tuple[object, int] | None = None  # (folded model, batch) that `logits` runs, once checked
        self._wide_samples = 1  # `use_batches`: samples a run wanted; 1 = one at a time
        self._data: np.ndarray | None = None  # the inputs `_widen` checked
        self._float_values: dict[str, np.ndarray] | None = None  # kept float tensors on them (the input included)
        self._wide_nodes: set[bytes] = set()  # the wide float model's nodes, serialized
        self._ranges: dict[tuple[str, int], tuple[float, float]] = {}
        producer = {out: node for node in self.base.graph.node for out in node.output}
        # activation-activation matmuls (QK^T, AV): their two operands, quantized at the layer's bits
        self.operand_tensors = {l.name: list(producer[self.output_tensor[l.name]].input[:2])
                                for l in self.graph.layers if l.op == "matmul"
                                and producer[self.output_tensor[l.name]].op_type in ("MatMul", "Einsum")}
        self.consumers: dict[str, set[str]] = {l.name: set() for l in self.graph.layers}
        for l in self.graph.layers:
            for t in l.inputs:
                if t in self.consumers:
                    self.consumers[t].add(l.name)
        self.graph_outputs = set(self.graph.outputs)

    # --- preparation --------------------------------------------------------------------------------
    def _fold(self, model, onnx_of: dict[str, str]):
        """A copy of `model` with every folded batchnorm removed and its conv reading the folded weights."""
        import onnx
        from onnx import numpy_helper

        base = onnx.ModelProto()
        base.CopyFrom(model)
        producer = {out: node for node in base.graph.node for out in node.output}
        self.weight_node: dict[str, onnx.NodeProto] = {}
        removed = []
        for layer in self.graph.layers:
            if layer.name not in self.weight_layers:
                continue
            node = producer[onnx_of[layer.name]]
            if node.op_type == "Add":  # a Linear on 3-D input: MatMul, then an Add of its bias (which stays)
                node = next((producer[t] for t in node.input if t in producer and producer[t].op_type == "MatMul"),
                            node)
            if node.op_type not in WEIGHT_OPS:
                raise ValueError(f"layer {layer.name!r}: ONNX node {node.name!r} is {node.op_type}, not a weight op")
            self.weight_node[layer.name] = node
            batchnorm_folded = False
            for fused in layer.fused:
                bn = producer.get(onnx_of.get(fused, ""))
                if bn is not None and bn.op_type == "BatchNormalization":
                    batchnorm_folded = True
                    # the conv now writes the batchnorm's output tensor; the batchnorm goes
                    for i, out in enumerate(node.output):
                        if out == bn.input[0]:
                            node.output[i] = bn.output[0]
                    removed.append(bn)
            bias = self.graph.weights[layer.name].get("bias")
            if node.op_type == "MatMul" and batchnorm_folded:
                raise ValueError(f"layer {layer.name!r}: a batchnorm folded into a MatMul is not supported")
            if bias is not None and node.op_type != "MatMul":  # a MatMul's bias stays in its own Add node
                bias_name = f"{layer.name}::folded_bias"
                base.graph.initializer.append(numpy_helper.from_array(bias.astype(np.float32), bias_name))
                while len(node.input) < 3:
                    node.input.append("")
                node.input[2] = bias_name
            node.input[1] = f"{layer.name}::weight"
            base.graph.initializer.append(numpy_helper.from_array(self._weight_array(layer.name, FLOAT_BITS),
                                                                  f"{layer.name}::weight"))
        for bn in removed:
            base.graph.node.remove(bn)
        used = {t for node in base.graph.node for t in node.input}
        keep = [init for init in base.graph.initializer if init.name in used]
        del base.graph.initializer[:]
        base.graph.initializer.extend(keep)
        return base

    def _weight_array(self, layer: str, bits: int) -> np.ndarray:
        """The layer's folded weight at `bits`, in the ONNX node's layout, float32."""
        key = (layer, bits)
        if key not in self._weights:
            w = self.graph.weights[layer]["weight"]
            q = w if bits >= FLOAT_BITS else quantize_weight(w, bits, self.tier, self.granularity)
            node = self.weight_node[layer]
            transposed = node.op_type == "MatMul" or (node.op_type == "Gemm" and not _attr(node, "transB", 0))
            self._weights[key] = np.ascontiguousarray((q.T if transposed else q).astype(np.float32))
        return self._weights[key]

    @cached_property
    def calibration(self) -> dict[str, np.ndarray]:
        """Each layer output's values on the calibration inputs (ONNX tensor name -> at most about
        `CALIBRATION_VALUES` values, flat); run when first needed (not when the ranges are all cached)."""
        tensors = [*self.output_tensor.values(), *(t for pair in self.operand_tensors.values() for t in pair)]
        return {name: _bounded(values) for name, values in self.run_tensors(self.calibration_x, tensors).items()}

    def activation_range(self, layer: str, bits: int, operand: int | None = None) -> tuple[float, float]:
        """The clipping range (lo, hi) of `layer`'s output (or of its matmul `operand` 0 or 1) at `bits`,
        searched once (kept in the cache)."""
        name = layer if operand is None else f"{layer}::operand{operand}"
        key = (name, bits)
        if key not in self._ranges:
            stored = None if self.cache is None else self.cache.get("range", f"{name}/{bits}")
            if stored is None:
                tensor = self.output_tensor[layer] if operand is None else self.operand_tensors[layer][operand]
                stored = activation_range(self.calibration[tensor], bits, self.tier)
                if self.cache is not None:
                    self.cache.put("range", f"{name}/{bits}", list(stored))
            self._ranges[key] = (float(stored[0]), float(stored[1]))
        return self._ranges[key]

    def stays_float(self, layer: str, quantized: set[str]) -> bool:
        """True for a LayerNorm or Softmax output that no layer outside `quantized` (the plan's edge) reads:
        such outputs stay in float; one that crosses the cut is sent, hence quantized, at the plan's bits."""
        return (self.graph.layer(layer).op in FLOAT_OUTPUT_OPS and layer not in self.graph_outputs
                and self.consumers[layer] <= quantized)

    # --- models -------------------------------------------------------------------------------------
    def model(self, weight_bits: dict[str, int] | None = None, activation_bits: dict[str, int] | None = None,
              base=None):
        """The ONNX ModelProto with the given per-layer bits (a layer left out, or at 16 bits, stays float), made
        from `base` (a folded model: `self.base`, at the model's batch, unless given)."""
        import onnx
        from onnx import helper, numpy_helper

        weight_bits, activation_bits = weight_bits or {}, activation_bits or {}
        unknown = (set(weight_bits) | set(activation_bits)) - set(self.layers)
        if unknown:
            raise ValueError(f"unknown layers {sorted(unknown)}")
        out = onnx.ModelProto()
        out.CopyFrom(self.base if base is None else base)
        for init in out.graph.initializer:
            layer = init.name[: -len("::weight")] if init.name.endswith("::weight") else None
            if layer in weight_bits and int(weight_bits[layer]) < FLOAT_BITS:
                init.CopyFrom(numpy_helper.from_array(self._weight_array(layer, int(weight_bits[layer])), init.name))
        producer = {o: node for node in out.graph.node for o in node.output}
        before: dict[int, list] = {}  # quantizers of a matmul's operands, placed before it
        after: dict[int, list] = {}  # quantizers of a layer's output, placed after its node
        position = {id(node): i for i, node in enumerate(out.graph.node)}
        quantized = {layer for layer, bits in activation_bits.items() if int(bits) < FLOAT_BITS}

        def quantizer(prefix: str, source: str, target: str, lo: float, hi: float, bits: int) -> list:
            step, zero_point = asymmetric_grid(lo, hi, bits)
            consts = {f"{prefix}::inv_step": np.float32(1.0 / step), f"{prefix}::step": np.float32(step),
                      f"{prefix}::lo": np.float32(-zero_point), f"{prefix}::hi": np.float32(2 ** bits - 1 - zero_point)}
            out.graph.initializer.extend(numpy_helper.from_array(np.array(v), k) for k, v in consts.items())
            return [helper.make_node("Mul", [source, f"{prefix}::inv_step"], [f"{prefix}::scaled"]),
                    helper.make_node("Round", [f"{prefix}::scaled"], [f"{prefix}::rounded"]),
                    helper.make_node("Clip", [f"{prefix}::rounded", f"{prefix}::lo", f"{prefix}::hi"],
                                     [f"{prefix}::code"]),
                    helper.make_node("Mul", [f"{prefix}::code", f"{prefix}::step"], [target])]

        for layer in quantized:
            bits = int(activation_bits[layer])
            tensor = self.output_tensor[layer]
            node = producer[tensor]
            for i, operand in enumerate(self.operand_tensors.get(layer, [])):
                target = f"{layer}::operand{i}::q"
                node.input[i] = target
                before.setdefault(position[id(node)], []).extend(
                    quantizer(f"{layer}::operand{i}::aq", operand, target, *self.activation_range(layer, bits, i),
                              bits))
            if self.stays_float(layer, quantized):
                continue
            float_name = f"{tensor}::float"
            for i, o in enumerate(node.output):
                if o == tensor:
                    node.output[i] = float_name
            after[position[id(node)]] = quantizer(f"{layer}::aq", float_name, tensor,
                                                  *self.activation_range(layer, bits), bits)
        nodes = list(out.graph.node)
        del out.graph.node[:]
        for i, node in enumerate(nodes):
            out.graph.node.extend(before.get(i, []))
            out.graph.node.append(node)
            out.graph.node.extend(after.get(i, []))
        return out

    # --- running ---------------------------------------------------------------------------------------
    def session(self, model):
        import os

        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        # idle workers sleep instead of spinning: the same arithmetic, without burning the other cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def run_tensors(self, x: np.ndarray, tensors: list[str], model=None, batch: int | None = None
                    ) -> dict[str, np.ndarray]:
        """Values of ONNX `tensors` on inputs `x` (float model unless `model` is given, run at `batch`)."""
        import onnx
        from onnx import helper

        probe = onnx.ModelProto()
        probe.CopyFrom(model if model is not None else self.base)
        present = {o.name for o in probe.graph.output}
        names = list(dict.fromkeys(tensors))
        for t in names:
            if t not in present:
                probe.graph.output.append(helper.make_empty_tensor_value_info(t))
        return dict(zip(names, self.run_batches(self.session(probe), x, names, batch)))

    def use_batches(self, samples: int) -> None:
        """Let `logits` run up to `samples` inputs at a time (for a model whose file leaves the batch free), once
        a check finds that this is bitwise what one sample at a time computes (see `_widen`)."""
        self._wide_samples = max(1, int(samples))

    def logits(self, x: np.ndarray, weight_bits: dict[str, int] | None = None,
               activation_bits: dict[str, int] | None = None) -> np.ndarray:
        """The model's outputs on `x` at the given bits. On the data `_widen` checked, many samples a run, and
        only the nodes whose values differ from the float model's: the float values they read are kept."""
        if self.wide is None and self._wide_samples > 1 and len(x) > 1:
            self._widen(x)
        if self.wide is None:
            return self.run_batches(self.session(self.model(weight_bits, activation_bits)), x, None)[0]
        base, batch = self.wide
        model = self.model(weight_bits, activation_bits, base)
        if self._float_values is None or x is not self._data:
            return self.run_batches(self.session(model), x, None, batch)[0]
        kept = self._float_values
        part, fed = self._changed_part(model, weight_bits or {}, kept)
        return self.run_batches(self.session(part), {name: kept[name] for name in fed}, None, batch)[0]

    def _widen(self, x: np.ndarray) -> None:
        """Prepare the model at a batch of `use_batches`' samples (at most len(x)) and keep it (`wide`) when its
        float logits on `x` equal, bit for bit, those of one sample at a time; else stay at one sample a run
        (onnxruntime may pick other kernels at another batch: a GEMM at one row is a GEMV). Runs once; the
        kernels depend on shapes, not on values, so the check holds for every bit assignment. The same run
        keeps the float values of the first tensors, up to `REUSE_BYTES`, for `_changed_part`."""
        self._wide_samples, batch = 1, min(self._wide_samples, len(x))  # one try, whatever it finds
        try:
            self._try_batch(x, batch)
        except Exception as exc:  # it cannot run at that batch (a reshape that fixes it): one sample a run
            if not (type(exc).__module__.startswith("onnxruntime") or isinstance(exc, UserError)):
                raise

    def _try_batch(self, x: np.ndarray, batch: int) -> None:
        """`_widen` at `batch`: sets `wide` and the kept float values when the check passes."""
        from onnx import helper

        from simulator.graph.onnx_prepare import prepare_onnx

        model = prepare_onnx(self.path, input_shape=(batch, *np.shape(x)[1:]), until=self._until)
        if [list(n.output) for n in model.graph.node] != self._prepared_outputs:
            return  # folding the batch into constants changed the graph: names would not line up
        wide = self._fold(model, self._onnx_of)
        float_logits = self.run_batches(self.session(self.base), x, None)[0]
        output = wide.graph.output[0].name

        def shapes(folded) -> dict[str, list[int]]:
            return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in folded.graph.value_info}

        # tensors batch first (a sample a row), at one sample and at `batch`: others mix samples in a row
        one, many = shapes(self.base), shapes(wide)
        bytes_per_sample = {v.name: int(np.prod(one[v.name][1:])) *
                            np.dtype(helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)).itemsize
                            for v in self.base.graph.value_info
                            if one[v.name][:1] == [1] and many.get(v.name) == [batch, *one[v.name][1:]]}
        kept, total = [], 0
        for node in wide.graph.node:
            for t in node.output:
                if t in bytes_per_sample and total + bytes_per_sample[t] * len(x) <= REUSE_BYTES:
                    kept.append(t)
                    total += bytes_per_sample[t] * len(x)
        values = self.run_tensors(x, [output, *kept], wide, batch)
        if np.array_equal(values.pop(output), float_logits):
            self.wide = (wide, batch)
            self._data, self._float_values = x, {self.input_name: np.asarray(x, np.float32), **values}
            self._wide_nodes = {node.SerializeToString() for node in wide.graph.node}

    def _changed_part(self, model, weight_bits: dict[str, int], kept: dict[str, np.ndarray]
                      ) -> tuple[object, list[str]]:
        """`model` (made from `wide` with `weight_bits`) cut to the nodes its outputs need that are not `kept`
        (float values, `_float_values`): a tensor computed as in the float model from float values is read
        from there. Returns the cut model and the kept tensors it reads (its inputs)."""
        from onnx import helper

        replaced = {f"{layer}::weight" for layer, bits in weight_bits.items() if int(bits) < FLOAT_BITS}
        nodes = list(model.graph.node)
        floats = {self.input_name} | {i.name for i in model.graph.initializer} - replaced
        for node in nodes:  # topological order: a node of the float model reading float values gives float ones
            if all(not t or t in floats for t in node.input) and node.SerializeToString() in self._wide_nodes:
                floats.update(node.output)
        producer = {t: i for i, node in enumerate(nodes) for t in node.output}
        keep: set[int] = set()
        fed: set[str] = set()
        todo = [o.name for o in model.graph.output]
        while todo:
            t = todo.pop()
            if t in floats and t in kept:
                fed.add(t)
            elif t in producer and producer[t] not in keep:
                keep.add(producer[t])
                todo.extend(i for i in nodes[producer[t]].input if i)
        part = [nodes[i] for i in sorted(keep)]
        used = {t for node in part for t in node.input}
        names = sorted(fed)
        graph = helper.make_graph(
            part, model.graph.name,
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(kept[n].dtype), None)
             for n in names],
            list(model.graph.output), [i for i in model.graph.initializer if i.name in used])
        return helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version), names

    def run_batches(self, session, x: np.ndarray | dict[str, np.ndarray], names: list[str] | None,
                    batch: int | None = None) -> list[np.ndarray]:
        """`session`'s outputs `names` (all when None) on `x` (the input's values, or each input's by name), run
        `batch` (default: the model's) samples at a time (the last batch padded with zeros, whose outputs are
        dropped), joined along the batch."""
        batch = self.batch if batch is None else batch
        inputs = x if isinstance(x, dict) else {self.input_name: np.asarray(x, np.float32)}
        samples = len(next(iter(inputs.values())))
        parts: list[list[np.ndarray]] = []
        for start in range(0, samples, batch):
            size = min(batch, samples - start)
            feed = {name: value[start:start + batch] if size == batch else np.concatenate(
                [value[start:], np.zeros((batch - size, *value.shape[1:]), value.dtype)])
                for name, value in inputs.items()}
            parts.append([value[:size] for value in session.run(names, feed)])
        return [np.concatenate(values) for values in zip(*parts)]


def _bounded(values: np.ndarray) -> np.ndarray:
    """At most about `CALIBRATION_VALUES` of a tensor's values, flat: an even stride through them plus the
    smallest and the largest."""
    flat = values.ravel()
    if flat.size <= CALIBRATION_VALUES:
        return flat
    return np.concatenate([flat[:: -(-flat.size // CALIBRATION_VALUES)], [flat.min(), flat.max()]])


def _attr(node, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default
