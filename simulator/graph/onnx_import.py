"""ONNX import: a network exported from PyTorch (or elsewhere) becomes the same Graph IR as the zoo.

`prepare_onnx` (simulator/graph/onnx_prepare.py) first fixes the input shapes, truncates at `until` and folds
every constant computation; shapes then come from ONNX shape inference, and a tensor whose shape is still
unknown is an error naming its node, never a guess. Decomposed GELU and LayerNorm forms are fused into one node
each (onnx_fusion.py). What is left computable from constants (weights stored as ConstantOfShape, a transposed
weight) is evaluated here, so layers only read data tensors. Weights are kept as numpy arrays in
`graph.weights[layer]` ({"weight", "bias"}; batchnorms: "scale", "bias", "mean", "var", "eps").

Parameters: a conv, linear, layernorm, batchnorm or recurrent layer counts its constant operands (batchnorm: its
scale and shift, as torch does); any other layer counts a constant operand traced back to a learnable
parameter, i.e. an initializer named as PyTorch names parameters (`encoder.pos_embedding`, `class_token`), never
an exporter's constant (`onnx::Add_12`, `/Constant_output_0`, `val_3`, `unsqueeze_2`). A MatMul followed by an Add of a constant
is one linear layer with that bias.

Multi-output ops: a Split is one "split" layer per output (named as repeated calls: `x.split`, `x.split#2`);
an LSTM/GRU is one layer whose tensor stands for all of its outputs.

Layer names come from the module path: the TorchScript exporter's scope names (`/layer1/layer1.0/conv1/Conv`
-> `layer1.0.conv1`) or the dynamo exporter's `pkg.torch.onnx.name_scopes` metadata (its node names,
`node_Conv_755`, say nothing). A functional op in a block, or one of several ops of a module, gets the op kind
(`layer1.0.add`, `encoder_layer_0.self_attention.softmax`), a module's second call `relu_1` -> `relu#2`;
other exporters' node names are kept.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from hardware_models.errors import UserError
from simulator.graph.ir import Graph, Layer
from simulator.graph.onnx_prepare import evaluate_nodes, prepare_onnx

# onnx is an optional dependency (pip install 'autosplit[onnx]'): imported where it is used, so that the zoo
# and everything else work without it

ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leakyrelu", "Sigmoid": "sigmoid", "Tanh": "tanh",
               "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid", "Elu": "elu", "Softplus": "softplus",
               "Gelu": "gelu"}
DATA = {"Flatten": "flatten", "Reshape": "reshape", "Squeeze": "reshape", "Unsqueeze": "reshape",
        "Transpose": "transpose", "Identity": "identity", "Dropout": "dropout", "Pad": "pad", "Slice": "slice",
        "Concat": "concat", "Expand": "expand", "Tile": "expand", "Gather": "gather", "GatherElements": "gather",
        "Cast": "identity"}
# elementwise arithmetic: one operation per output element, costed as an add or a multiply
ELEMENTWISE = {"Add": "add", "Sub": "add", "Mul": "mul", "Div": "mul", "Resize": "upsample", "Upsample": "upsample",
               "Pow": "mul", "Sqrt": "mul", "Reciprocal": "mul", "Neg": "mul", "Exp": "mul", "Log": "mul",
               "Erf": "mul", "Abs": "mul", "Where": "mul", "Equal": "mul", "Not": "mul", "Less": "mul",
               "Greater": "mul", "Max": "add", "Min": "add"}
POOLS = {"MaxPool": "maxpool", "AveragePool": "avgpool", "GlobalAveragePool": "globalavgpool",
         "GlobalMaxPool": "globalavgpool"}
# the heads of detection and segmentation post-processing: an unsupported op among these (or before them) is
# where the network ends and --until belongs
POSTPROCESSING = {"NonMaxSuppression", "TopK", "NonZero", "RoiAlign", "ReduceMin", "ReduceMax", "ArgMax", "ArgMin",
                  "ScatterElements", "GatherND", "Loop", "If"}
# an exporter's own constants, never learnable parameters: the TorchScript exporter's (`onnx::Add_12`,
# `/encoder/Constant_output_0`), the dynamo exporter's (`val_3`) and the constants its optimiser folds, named after
# the torch op that made them (`unsqueeze_2`, `masked_fill`: Swin's gathered relative-position bias and window
# mask, computed from a parameter but not one)
_FX_OPS = ("unsqueeze|squeeze|view|reshape|permute|transpose|expand|clone|contiguous|sub|add|mul|div|neg|ne|eq|"
           "masked_fill|index|index_put|select|slice|cat|stack|where|arange|zeros|ones|full|new_zeros|_to_copy|"
           "lift_fresh_copy|getitem|repeat|roll|pad|flatten|mm|bmm|matmul|linear|einsum|gather|scatter|sum|mean|"
           "t|type_as|to|copy|fill|alias|detach|unbind|split|chunk|narrow|embedding")
_EXPORTER_CONSTANT = re.compile(rf"onnx::.*|/.*|_?val_\d+|.*Constant.*|.*__shape|(?:{_FX_OPS})(?:_\d+)?")


def import_onnx(path: str | Path, *, input_shape: tuple[int, ...] | None = None, until: str | None = None) -> Graph:
    """The Graph of the ONNX file at `path` (raw: batchnorm and activations still apart), as `prepare_onnx`
    makes it ready (input shapes fixed, truncated at `until`, constants folded)."""
    model = prepare_onnx(path, input_shape=input_shape, until=until)
    return _Importer(model, Path(path)).run()


def _attributes(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _scopes(node) -> list[str] | None:
    """The dynamo exporter's module scopes of `node` ('' first, the fx node last), when it carries them."""
    import ast

    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = ast.literal_eval(prop.value)
            return [str(s) for s in scopes] if isinstance(scopes, list) else None
    return None


def _module_path(node) -> str | None:
    """The module path `node` runs in ('' for the model itself), or None when the exporter did not say."""
    name = node.name or ""
    if name.startswith("/"):
        segments: list[str] = []
        previous = ""
        for part in name.strip("/").split("/")[:-1]:
            segments.append(part[len(previous) + 1:] if previous and part.startswith(previous + ".") else part)
            previous = part
        return ".".join(segments)
    scopes = _scopes(node)
    if scopes is not None:
        modules = [s for s in scopes[:-1] if s]
        return modules[-1] if modules else ""
    return None


class _Importer:
    def __init__(self, model, path: Path) -> None:
        from onnx import numpy_helper

        from simulator.graph.onnx_fusion import fuse_decomposed_ops

        self.path = path
        self.graph = model.graph
        self.opsets = list(model.opset_import)
        self.const: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        # learnable parameters each constant derives from (see the module docstring), and those already counted
        self.origin: dict[str, frozenset[str]] = {
            name: frozenset([name]) for name, value in self.const.items()
            if value.size > 1 and value.dtype.kind == "f"}
        self.counted: set[str] = set()
        self.shapes: dict[str, tuple[int, ...]] = {}
        # prepare_onnx fixes every input dimension; a model given here without it (the fake quantizer's own
        # path) has its symbolic batch taken as 1 wherever inference carried it, and nothing else
        symbolic = {i.type.tensor_type.shape.dim[0].dim_param for i in self.graph.input
                    if i.type.tensor_type.shape.dim and i.type.tensor_type.shape.dim[0].dim_param}
        for info in [*self.graph.input, *self.graph.value_info, *self.graph.output]:
            dims = info.type.tensor_type.shape.dim
            # a dimension shape inference could not resolve is left out, never guessed: the node that produces
            # the tensor fails with its name if it becomes a layer
            if info.type.tensor_type.HasField("shape") and all(
                    (d.HasField("dim_value") and d.dim_value > 0) or d.dim_param in symbolic for d in dims):
                self.shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)
        unknown = [i.name for i in self.graph.input if i.name not in self.const and i.name not in self.shapes]
        if unknown:
            raise UserError(f"{path}: input {unknown[0]!r} has a symbolic dimension besides the batch; give its "
                            "size with --input-shape (input_shape: in YAML)")
        self.inputs = {i.name: self.shapes[i.name] for i in self.graph.input if i.name not in self.const}
        self.nodes = fuse_decomposed_ops(list(self.graph.node), self.const)
        self.tensor_of: dict[str, str] = {name: name for name in self.inputs}  # onnx tensor -> IR tensor
        self.layers: list[Layer] = []
        self.by_name: dict[str, Layer] = {}
        self.weights: dict[str, dict[str, np.ndarray]] = {}
        self.uses: dict[str, int] = {}
        self.readers: dict[str, int] = {}
        for node in self.nodes:
            for t in node.input:
                self.readers[t] = self.readers.get(t, 0) + 1
        self.module_ops, self.modules = self._count_module_ops()
        # the module path of each tensor's producer, for nodes that carry none (dynamo exports only)
        self.producer_path: dict[str, str] = {}
        if any(_scopes(n) is not None for n in self.nodes):
            for n in self.nodes:
                module = _module_path(n)
                if module is not None:
                    self.producer_path.update((o, module) for o in n.output)

    def _count_module_ops(self) -> tuple[dict[str, int], set[str]]:
        """Per module path, how many nodes on data run in it; and every module path that occurs."""
        constant = set(self.const)
        matmuls = {n.output[0] for n in self.nodes if n.op_type == "MatMul"}
        counts: dict[str, int] = {}
        for node in self.nodes:
            if all(t in constant for t in node.input if t) or node.op_type in ("Shape", "Size"):
                constant.update(node.output)
                continue
            if node.op_type == "Add" and {*node.input} & constant and {*node.input} & matmuls:
                continue  # a linear layer's bias, one layer with its MatMul
            path = _module_path(node)
            if path:
                counts[path] = counts.get(path, 0) + 1
        return counts, set(counts)

    # --- driver -------------------------------------------------------------------------------------
    def run(self) -> Graph:
        for position, node in enumerate(self.nodes):
            if all(t in self.const for t in node.input if t) and node.op_type not in ("Shape",):
                self._fold(node)
                continue
            if node.op_type == "Shape" and self._fold_shape(node):
                continue
            self._layer(node, position)
        name = self.path.name.removesuffix(".onnx")
        return Graph(name, {self.tensor_of[n]: s for n, s in self.inputs.items()}, self.layers,
                     weights=self.weights, source=str(self.path))

    def fail(self, node, message: str) -> UserError:
        return UserError(f"{self.path}: node {node.name or node.output[0]!r} ({node.op_type}): {message}")

    # --- constants ----------------------------------------------------------------------------------
    def _fold_shape(self, node) -> bool:
        if node.input[0] not in self.shapes:
            return False
        attrs = _attributes(node)
        self.const[node.output[0]] = np.array(self.shapes[node.input[0]], np.int64)[attrs.get("start", 0):
                                                                                   attrs.get("end")]
        return True

    def _fold(self, node) -> None:
        """Evaluate `node`, whose inputs are all constants (what prepare_onnx left: weights and what reads them)."""
        from onnx import numpy_helper

        attrs = _attributes(node)
        ins = [t for t in node.input if t]
        if node.op_type == "ConstantOfShape":  # a weight of the fixtures: a read-only view, no memory
            fill = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
            values = {node.output[0]: np.broadcast_to(fill.reshape(-1)[0], tuple(int(d) for d in self.const[ins[0]]))}
        else:
            try:
                values = evaluate_nodes([node], {t: self.const[t] for t in ins}, self.opsets)
            except Exception as exc:  # the reference evaluator's own error, of many types
                raise self.fail(node, f"cannot evaluate it on its constant inputs: {exc}") from None
        origin = frozenset().union(*(self.origin.get(t, frozenset()) for t in ins))
        for name, value in values.items():
            self.const[name] = value
            if origin:
                self.origin[name] = origin
            elif value.dtype.kind == "f" and value.size > 1 and node.op_type == "ConstantOfShape":
                self.origin[name] = frozenset([name])

    def _parameters(self, tensors, *, all_constants: bool) -> int:
        """Elements of the learnable parameters `tensors` derive from (through constants) not yet counted.

        `all_constants`: every constant operand is a parameter (a conv's, a linear's); otherwise only those named
        as PyTorch names parameters."""
        total = 0
        for t in tensors:
            for name in self.origin.get(t, ()):
                if name in self.counted or (not all_constants and _EXPORTER_CONSTANT.fullmatch(name)):
                    continue
                self.counted.add(name)
                total += int(self.const[name].size)
        return total

    # --- layers -------------------------------------------------------------------------------------
    def _name(self, node, kind: str) -> str:
        """The module path; a functional op in a block, or one of a module's several ops, gets its kind."""
        path = _module_path(node)
        weight = node.input[1] if node.op_type == "Conv" and len(node.input) > 1 else ""
        if "." in weight and not _EXPORTER_CONSTANT.fullmatch(weight):
            # the conv's own module, from its weight's name: the dynamo exporter gives a conv with a folded
            # batchnorm the batchnorm's scope (`bn1` for `conv1.weight`)
            path = weight.rsplit(".", 1)[0]
        elif path is None and node.input and self.producer_path.get(node.input[0]) is not None:
            # a node an exporter's optimiser made, with no scope of its own: its input's module, and its kind
            path = f"{self.producer_path[node.input[0]]}.{kind}".lstrip(".")
            self.modules.add(path)
        if path is None:
            path = re.sub(r"[^A-Za-z0-9_.#]", "_", node.name or "") or f"{kind}_{len(self.layers)}"
        else:
            segments = path.split(".") if path else []
            reuse = re.fullmatch(r"(.+)_(\d+)", segments[-1]) if segments else None
            if reuse:
                base = ".".join([*segments[:-1], reuse.group(1)])
                if base in self.uses:
                    path = f"{base}#{int(reuse.group(2)) + 1}"
            is_container = any(m.startswith(path + ".") for m in self.modules) if path else True
            if is_container or self.module_ops.get(path, 0) > 1:
                path = f"{path}.{kind}" if path else kind
        count = self.uses.get(path, 0) + 1
        self.uses[path] = count
        return path if count == 1 else f"{path}#{count}"

    def _data_inputs(self, node) -> list[str]:
        out = []
        for t in node.input:
            if t and t not in self.const:
                if t not in self.tensor_of:
                    raise self.fail(node, f"reads {t!r}, which no earlier node produces")
                out.append(self.tensor_of[t])
        return out

    def _shape_of(self, node, tensor: str, what: str) -> tuple[int, ...]:
        if tensor in self.const:
            return tuple(self.const[tensor].shape)
        if tensor not in self.shapes:
            raise self.fail(node, f"cannot infer the shape of its {what} {tensor!r}")
        return self.shapes[tensor]

    def _shape(self, node, output: int = 0) -> tuple[int, ...]:
        return self._shape_of(node, node.output[output], "output")

    def _input_shape(self, node, index: int = 0) -> tuple[int, ...]:
        return self._shape_of(node, node.input[index], "input")

    def _add(self, node, op: str, *, output: int = 0, all_constants: bool = False, **fields) -> Layer:
        params = fields.pop("params", None)
        counted = self._parameters(node.input, all_constants=all_constants)
        layer = Layer(self._name(node, op), op, tuple(self._data_inputs(node)), self._shape(node, output),
                      params=counted if params is None else params, **fields)
        self.layers.append(layer)
        self.by_name[layer.name] = layer
        self.tensor_of[node.output[output]] = layer.name
        return layer

    def _layer(self, node, position: int) -> None:
        op, attrs = node.op_type, _attributes(node)
        if op == "Conv":
            self._conv(node, attrs)
        elif op in ("Gemm", "MatMul"):
            self._gemm(node, attrs)
        elif op == "Einsum":
            self._einsum(node, attrs)
        elif op in ("LSTM", "GRU"):
            self._recurrent(node, attrs)
        elif op == "BatchNormalization":
            scale, bias, mean, var = (self.const.get(t) for t in node.input[1:5])
            if scale is None or bias is None or mean is None or var is None:
                raise self.fail(node, "batchnorm parameters must be constants")
            self._parameters(node.input, all_constants=True)  # the running statistics are buffers, not parameters
            layer = self._add(node, "batchnorm", params=scale.size + bias.size, attrs={"eps": attrs.get("epsilon", 1e-5)})
            self.weights[layer.name] = {"scale": scale, "bias": bias, "mean": mean, "var": var,
                                        "eps": np.array(attrs.get("epsilon", 1e-5), dtype=np.float32)}
        elif op == "LayerNormalization":
            self._layernorm(node, attrs)
        elif op == "Softmax":
            rank = len(self._input_shape(node))
            self._add(node, "softmax", attrs={"axis": attrs.get("axis", -1) % rank})
        elif op == "Clip":
            bounds = [float(self.const[t]) for t in node.input[1:] if t and t in self.const]
            bounds = bounds or [attrs.get("min", -np.inf), attrs.get("max", np.inf)]
            kind = "relu6" if bounds[:2] == [0.0, 6.0] else "relu" if bounds[:1] == [0.0] and len(bounds) == 1 else "clip"
            self._add(node, kind, attrs={"min": bounds[0], "max": bounds[-1] if len(bounds) > 1 else None})
        elif op in ACTIVATIONS:
            self._add(node, ACTIVATIONS[op], attrs={k: v for k, v in attrs.items() if k == "alpha"})
        elif op == "Mul" and self._fuse_silu(node):
            return
        elif op == "Add" and self._fuse_bias(node):
            return
        elif op in POOLS:
            self._pool(node, attrs)
        elif op == "ReduceMean":
            self._reduce_mean(node, attrs)
        elif op == "Split":
            self._split(node, attrs)
        elif op in ELEMENTWISE:
            self._add(node, ELEMENTWISE[op])
        elif op in DATA:
            self._add(node, DATA[op], attrs={"axis": attrs["axis"]} if "axis" in attrs else {})
        else:
            raise self.fail(node, f"unsupported op {op!r}{self._until_hint(node, position)}")

    def _until_hint(self, node, position: int) -> str:
        """Where post-processing starts at `node` (it, or a later node reading it, is NMS/TopK/...): --until."""
        reached = set(node.output)
        later_ops = {node.op_type}
        for other in self.nodes[position + 1:]:
            if any(t in reached for t in other.input):
                reached.update(other.output)
                later_ops.add(other.op_type)
        post = sorted(later_ops & POSTPROCESSING)
        if not post:
            return ""
        data = [t for t in node.input if t and t not in self.const]
        producer = next((n for n in self.nodes if data and data[0] in n.output), None)
        before = (producer.name or data[0]) if producer is not None else (data[0] if data else "NODE")
        return (f"; what follows is post-processing ({', '.join(post)}): import the network up to it with "
                f"--until {before} (until: in YAML)")

    def _conv(self, node, attrs: dict) -> None:
        weight = self.const.get(node.input[1])
        if weight is None:
            raise self.fail(node, "conv weights must be constants (initializers or constant nodes)")
        bias = self.const.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        out_ch, in_per_group, kh, kw = weight.shape
        pads = attrs.get("pads", [0, 0, 0, 0])
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            pads = [None] * 4
        layer = self._add(node, "conv", all_constants=True, weight_elements=weight.size,
                          attrs={"kernel": (kh, kw), "stride": tuple(attrs.get("strides", (1, 1))),
                                 "padding": tuple(pads[:2]), "groups": attrs.get("group", 1),
                                 "dilation": tuple(attrs.get("dilations", (1, 1))), "bias": bias is not None})
        n, _, oh, ow = layer.output_shape
        layer.macs = n * oh * ow * weight.size
        self.weights[layer.name] = {"weight": weight, **({"bias": bias} if bias is not None else {})}

    def _gemm(self, node, attrs: dict) -> None:
        a, b = node.input[0], node.input[1]
        a_shape = self._input_shape(node, 0)
        if a in self.const or b not in self.const:  # activation x activation (attention's QK^T, AV)
            layer = self._add(node, "matmul", all_constants=True)
            k = a_shape[-2] if node.op_type == "Gemm" and attrs.get("transA", 0) else a_shape[-1]
            layer.macs = layer.output_elements * k
            layer.attrs["batch_matrices"] = math.prod(layer.output_shape[1:-2])
            layer.weight_elements = sum(int(self.const[t].size) for t in (a, b) if t in self.const)
            return
        weight = self.const[b]
        weight_out_in = weight if node.op_type == "Gemm" and attrs.get("transB", 0) else weight.T
        bias = self.const.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        layer = self._add(node, "linear", all_constants=True, weight_elements=weight.size,
                          attrs={"in_features": weight_out_in.shape[1], "bias": bias is not None})
        layer.macs = layer.output_elements * weight_out_in.shape[1]
        self.weights[layer.name] = {"weight": weight_out_in, **({"bias": bias} if bias is not None else {})}

    def _fuse_bias(self, node) -> bool:
        """MatMul then Add of a constant vector (a Linear on a 3-D input): one linear layer with its bias."""
        for x, c in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
            layer = self.by_name.get(self.tensor_of.get(x, ""))
            bias = self.const.get(c)
            if (layer is not None and layer.op == "linear" and not layer.attrs["bias"] and bias is not None
                    and self.readers.get(x) == 1 and bias.size == layer.output_shape[-1]
                    and self.shapes.get(node.output[0]) == layer.output_shape):
                layer.params += self._parameters([c], all_constants=True)
                layer.attrs["bias"] = True
                self.weights[layer.name]["bias"] = bias.reshape(-1)
                self.tensor_of[node.output[0]] = layer.name
                return True
        return False

    def _einsum(self, node, attrs: dict) -> None:
        """A two-operand einsum: MACs = the product of every index's size (each output sums over the rest)."""
        equation = attrs["equation"].decode() if isinstance(attrs["equation"], bytes) else attrs["equation"]
        operands, _, result = equation.replace(" ", "").partition("->")
        terms = operands.split(",")
        if len(terms) != 2 or "..." in equation or not result:
            raise self.fail(node, f"only a two-operand einsum with explicit indices is supported, not {equation!r}")
        sizes: dict[str, int] = {}
        for term, tensor in zip(terms, node.input):
            sizes.update(zip(term, self._shape_of(node, tensor, "input")))
        weight = next((self.const[t] for t in node.input if t in self.const), None)
        layer = self._add(node, "matmul" if weight is None else "linear", all_constants=True,
                          weight_elements=0 if weight is None else weight.size,
                          attrs={"equation": equation, "batch_matrices": 1})
        layer.macs = math.prod(sizes.values())
        if weight is None:
            layer.attrs["batch_matrices"] = math.prod(layer.output_shape[1:-2])
        else:
            layer.attrs.update(in_features=math.prod(sizes[i] for i in set(operands) - set(result) - {","}),
                               bias=False)
            del layer.attrs["batch_matrices"]

    def _recurrent(self, node, attrs: dict) -> None:
        """LSTM/GRU: params W + R + B; MACs = steps x batch x directions x gates x hidden x (inputs + hidden)."""
        w, r = self.const.get(node.input[1]), self.const.get(node.input[2])
        if w is None or r is None:
            raise self.fail(node, "recurrent weights must be constants")
        x_shape = self._input_shape(node)
        layout = attrs.get("layout", 0)
        steps, batch = (x_shape[1], x_shape[0]) if layout else (x_shape[0], x_shape[1])
        directions, gate_rows, inputs = w.shape
        hidden = attrs["hidden_size"]
        output = next(i for i, t in enumerate(node.output) if t)
        op = node.op_type.lower()
        params = self._parameters(node.input[1:4], all_constants=True)  # not the initial states
        layer = self._add(node, op, output=output, params=params, weight_elements=w.size + r.size,
                          attrs={"steps": steps, "hidden_size": hidden, "gates": gate_rows // hidden,
                                 "directions": directions})
        layer.macs = steps * batch * directions * gate_rows * (inputs + hidden)
        self.weights[layer.name] = {"weight": w, "recurrent_weight": r,
                                    **({"bias": self.const[node.input[3]]}
                                       if len(node.input) > 3 and node.input[3] in self.const else {})}
        for t in node.output:
            if t:
                self.tensor_of[t] = layer.name

    def _layernorm(self, node, attrs: dict) -> None:
        scale = self.const.get(node.input[1]) if len(node.input) > 1 else None
        bias = self.const.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        rank = len(self._input_shape(node))
        layer = self._add(node, "layernorm", all_constants=True,
                          attrs={"axis": attrs.get("axis", -1) % rank, "eps": attrs.get("epsilon", 1e-5)})
        self.weights[layer.name] = {k: v for k, v in (("weight", scale), ("bias", bias)) if v is not None}

    def _reduce_mean(self, node, attrs: dict) -> None:
        in_shape = self._input_shape(node)
        axes = attrs.get("axes", self.const.get(node.input[1]) if len(node.input) > 1 and node.input[1] else None)
        axes = sorted(int(a) % len(in_shape) for a in (range(len(in_shape)) if axes is None else np.ravel(axes)))
        if len(in_shape) == 4 and axes == [2, 3]:  # a spatial mean is a global average pool
            self._add(node, "globalavgpool", attrs={"kernel": tuple(in_shape[2:4]), "stride": (1, 1)})
        else:
            self._add(node, "reducemean", attrs={"axes": tuple(axes)})

    def _split(self, node, attrs: dict) -> None:
        rank = len(self._input_shape(node))
        for index, tensor in enumerate(node.output):
            if tensor:
                self._add(node, "split", output=index, attrs={"axis": attrs.get("axis", 0) % rank, "part": index})

    def _pool(self, node, attrs: dict) -> None:
        op = POOLS[node.op_type]
        if op == "globalavgpool":
            kernel = tuple(self._input_shape(node)[2:4])
            self._add(node, op, attrs={"kernel": kernel, "stride": (1, 1)})
            return
        self._add(node, op, attrs={"kernel": tuple(attrs["kernel_shape"]),
                                   "stride": tuple(attrs.get("strides", (1, 1))),
                                   "padding": tuple(attrs.get("pads", (0, 0, 0, 0))[:2]),
                                   "ceil_mode": bool(attrs.get("ceil_mode", 0))})

    def _fuse_silu(self, node) -> bool:
        """x * sigmoid(x) (how SiLU is exported) becomes one silu layer named after the sigmoid."""
        if len(node.input) != 2:
            return False
        a, b = node.input[0], node.input[1]
        for x, s in ((a, b), (b, a)):
            layer = self.by_name.get(self.tensor_of.get(s, ""))
            if (layer is not None and layer.op == "sigmoid" and layer.inputs == (self.tensor_of.get(x),)
                    and self.readers.get(s) == 1):
                layer.op = "silu"
                self.tensor_of[node.output[0]] = layer.name
                return True
        return False
