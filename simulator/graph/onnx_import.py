"""ONNX import: a CNN exported from PyTorch (or elsewhere) becomes the same Graph IR as the zoo.

Shapes come from ONNX shape inference (a symbolic batch dimension is taken as 1), repeated after folding the
constants it could not see through: a dynamic-batch export computes slice bounds and reshape targets from
`Shape` chains (ShuffleNet's channel split), which inference only resolves once they are constants. A tensor
whose shape is still unknown then is an error naming its node, never a guess. Everything computable
from constants alone (initializers, Constant, ConstantOfShape, Identity over shared initializers, and
Shape/Gather/Unsqueeze/Concat/Reshape chains over known shapes) is folded here with numpy, so layers only
read data tensors. Weights are kept as numpy arrays in `graph.weights[layer] = {"weight", "bias"}`
(batchnorms: "scale", "bias", "mean", "var", "eps"). Layer names are recovered from the TorchScript
exporter's scope names (`/layer1/layer1.0/conv1/Conv` -> `layer1.0.conv1`, a functional op in a block
-> `layer1.0.add`, a module's second call `relu_1` -> `relu#2`); other exporters' node names are kept.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from hardware_models.errors import UserError
from simulator.graph.ir import Graph, Layer
from simulator.graph.onnx_prepare import prepare_onnx

# onnx is an optional dependency (pip install 'autosplit[onnx]'): imported where it is used, so that the zoo
# and everything else work without it

ACTIVATIONS = {"Relu": "relu", "LeakyRelu": "leakyrelu", "Sigmoid": "sigmoid", "Tanh": "tanh",
               "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid", "Elu": "elu", "Softplus": "softplus",
               "Gelu": "gelu"}
DATA = {"Flatten": "flatten", "Reshape": "reshape", "Squeeze": "reshape", "Unsqueeze": "reshape",
        "Transpose": "transpose", "Identity": "identity", "Dropout": "dropout", "Pad": "pad", "Slice": "slice",
        "Concat": "concat"}
ELEMENTWISE = {"Add": "add", "Sub": "add", "Mul": "mul", "Div": "mul", "Softmax": "softmax", "Resize": "upsample",
               "Upsample": "upsample", "BatchNormalization": "batchnorm"}
POOLS = {"MaxPool": "maxpool", "AveragePool": "avgpool", "GlobalAveragePool": "globalavgpool",
         "GlobalMaxPool": "globalavgpool"}
CONSTANT_OPS = {"Constant", "ConstantOfShape", "Identity", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat",
                "Reshape", "Cast", "Add", "Sub", "Mul", "Div", "Slice", "Range", "Floor", "Ceil", "Sqrt",
                "Transpose", "Flatten"}


def import_onnx(path: str | Path, *, input_shape: tuple[int, ...] | None = None, until: str | None = None) -> Graph:
    """The Graph of the ONNX file at `path` (raw: batchnorm and activations still apart), as `prepare_onnx`
    makes it ready (input shapes fixed, truncated at `until`, constants folded)."""
    model = prepare_onnx(path, input_shape=input_shape, until=until)
    return _Importer(model, Path(path)).run()


def _attributes(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class _Importer:
    def __init__(self, model, path: Path) -> None:
        from onnx import numpy_helper

        self.path = path
        self.graph = model.graph
        self.const: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for info in [*self.graph.input, *self.graph.value_info, *self.graph.output]:
            dims = info.type.tensor_type.shape.dim
            # a dimension shape inference could not resolve is left out, never guessed: the node that produces
            # the tensor fails with its name if it becomes a layer
            if info.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") and d.dim_value > 0
                                                               for d in dims):
                self.shapes[info.name] = tuple(d.dim_value for d in dims)
        self.inputs = {i.name: self.shapes[i.name] for i in self.graph.input if i.name not in self.const}
        self.tensor_of: dict[str, str] = {name: name for name in self.inputs}  # onnx tensor -> IR tensor
        self.layers: list[Layer] = []
        self.by_name: dict[str, Layer] = {}
        self.weights: dict[str, dict[str, np.ndarray]] = {}
        self.uses: dict[str, int] = {}
        self.readers: dict[str, int] = {}
        for node in self.graph.node:
            for t in node.input:
                self.readers[t] = self.readers.get(t, 0) + 1

    # --- driver -------------------------------------------------------------------------------------
    def run(self) -> Graph:
        for node in self.graph.node:
            if node.op_type in CONSTANT_OPS and self._fold(node):
                continue
            self._layer(node)
        name = self.path.stem
        return Graph(name, {self.tensor_of[n]: s for n, s in self.inputs.items()}, self.layers,
                     weights=self.weights, source=str(self.path))

    def fail(self, node, message: str) -> UserError:
        return UserError(f"{self.path}: node {node.name or node.output[0]!r} ({node.op_type}): {message}")

    # --- constants ----------------------------------------------------------------------------------
    def _fold(self, node) -> bool:
        """Evaluate `node` with numpy when all its inputs are known constants (or known shapes)."""
        op, attrs = node.op_type, _attributes(node)
        ins = [t for t in node.input if t]
        if op == "Shape":
            if ins[0] in self.const:
                shape = self.const[ins[0]].shape
            elif ins[0] in self.shapes:
                shape = self.shapes[ins[0]]
            else:
                return False
            value = np.array(shape, dtype=np.int64)[attrs.get("start", 0): attrs.get("end")]
            self.const[node.output[0]] = value
            return True
        if op == "Constant":
            from onnx import numpy_helper

            if "value" in attrs:
                self.const[node.output[0]] = numpy_helper.to_array(attrs["value"])
            else:
                key = next(iter(attrs))
                self.const[node.output[0]] = np.array(attrs[key])
            return True
        if not all(t in self.const for t in ins):
            return False
        v = [self.const[t] for t in ins]
        if op == "ConstantOfShape":
            from onnx import numpy_helper

            fill = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
            out = np.full(tuple(int(d) for d in v[0]), fill.reshape(-1)[0], dtype=fill.dtype)
        elif op == "Identity":
            out = v[0]
        elif op == "Gather":
            out = np.take(v[0], v[1], axis=attrs.get("axis", 0))
        elif op == "Unsqueeze":
            axes = attrs.get("axes", v[1] if len(v) > 1 else [])
            out = v[0]
            for axis in sorted(int(a) % (out.ndim + len(axes)) for a in axes):
                out = np.expand_dims(out, axis)
        elif op == "Squeeze":
            axes = attrs.get("axes", v[1] if len(v) > 1 else None)
            out = np.squeeze(v[0], axis=tuple(int(a) for a in axes) if axes is not None else None)
        elif op == "Concat":
            out = np.concatenate([np.atleast_1d(a) for a in v], axis=attrs["axis"])
        elif op == "Reshape":
            target = [int(d) if d != 0 else v[0].shape[i] for i, d in enumerate(v[1])]
            out = v[0].reshape(target)
        elif op == "Flatten":
            axis = attrs.get("axis", 1)
            out = v[0].reshape(math.prod(v[0].shape[:axis]), -1)
        elif op == "Cast":
            from onnx import helper

            out = v[0].astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))
        elif op in ("Add", "Sub", "Mul", "Div"):
            fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
            out = fn(v[0], v[1])
            if op == "Div" and np.issubdtype(v[0].dtype, np.integer):
                out = (v[0] // v[1]).astype(v[0].dtype)
        elif op == "Slice":
            starts, ends = v[1], v[2]
            axes = v[3] if len(v) > 3 else range(len(starts))
            steps = v[4] if len(v) > 4 else [1] * len(starts)
            index = [slice(None)] * v[0].ndim
            for s, e, a, st in zip(starts, ends, axes, steps):
                index[int(a)] = slice(int(s), int(e), int(st))
            out = v[0][tuple(index)]
        elif op == "Range":
            # numpy takes 0-d arrays for the bounds, its stubs do not
            out = np.arange(v[0], v[1], v[2])  # type: ignore[call-overload]
        elif op == "Transpose":
            out = np.transpose(v[0], attrs.get("perm"))
        else:
            out = {"Floor": np.floor, "Ceil": np.ceil, "Sqrt": np.sqrt}[op](v[0])
        self.const[node.output[0]] = np.asarray(out)
        return True

    # --- layers -------------------------------------------------------------------------------------
    def _name(self, node, kind: str) -> str:
        """Module path from a TorchScript scope name; functional ops get their block and kind."""
        name = node.name or ""
        if name.startswith("/"):
            parts = name.strip("/").split("/")[:-1]
            segments: list[str] = []
            previous = ""
            for part in parts:
                local = part[len(previous) + 1:] if previous and part.startswith(previous + ".") else part
                segments.append(local)
                previous = part
            path = ".".join(segments)
            reuse = re.fullmatch(r"(.+)_(\d+)", segments[-1]) if segments else None
            if reuse:
                base = ".".join([*segments[:-1], reuse.group(1)])
                if base in self.uses:
                    path = f"{base}#{int(reuse.group(2)) + 1}"
            is_container = any(n.startswith(path + ".") for n in self.uses) if path else True
            if is_container:
                path = f"{path}.{kind}" if path else kind
        else:
            path = re.sub(r"[^A-Za-z0-9_.#]", "_", name) or f"{kind}_{len(self.layers)}"
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

    def _shape(self, node) -> tuple[int, ...]:
        out = node.output[0]
        if out not in self.shapes:
            raise self.fail(node, f"cannot infer the shape of its output {out!r}")
        return self.shapes[out]

    def _input_shape(self, node) -> tuple[int, ...]:
        name = node.input[0]
        if name not in self.shapes:
            raise self.fail(node, f"cannot infer the shape of its input {name!r}")
        return self.shapes[name]

    def _add(self, node, op: str, **fields) -> Layer:
        layer = Layer(self._name(node, op), op, tuple(self._data_inputs(node)), self._shape(node), **fields)
        self.layers.append(layer)
        self.by_name[layer.name] = layer
        self.tensor_of[node.output[0]] = layer.name
        return layer

    def _layer(self, node) -> None:
        op, attrs = node.op_type, _attributes(node)
        if op == "Conv":
            self._conv(node, attrs)
        elif op in ("Gemm", "MatMul"):
            self._gemm(node, attrs)
        elif op == "BatchNormalization":
            scale, bias, mean, var = (self.const.get(t) for t in node.input[1:5])
            if scale is None or bias is None or mean is None or var is None:
                raise self.fail(node, "batchnorm parameters must be constants")
            layer = self._add(node, "batchnorm", params=scale.size + bias.size, attrs={"eps": attrs.get("epsilon", 1e-5)})
            self.weights[layer.name] = {"scale": scale, "bias": bias, "mean": mean, "var": var,
                                        "eps": np.array(attrs.get("epsilon", 1e-5), dtype=np.float32)}
        elif op == "Clip":
            bounds = [float(self.const[t]) for t in node.input[1:] if t and t in self.const]
            bounds = bounds or [attrs.get("min", -np.inf), attrs.get("max", np.inf)]
            kind = "relu6" if bounds[:2] == [0.0, 6.0] else "relu" if bounds[:1] == [0.0] and len(bounds) == 1 else "clip"
            self._add(node, kind, attrs={"min": bounds[0], "max": bounds[-1] if len(bounds) > 1 else None})
        elif op in ACTIVATIONS:
            self._add(node, ACTIVATIONS[op], attrs={k: v for k, v in attrs.items() if k == "alpha"})
        elif op == "Mul" and self._fuse_silu(node):
            return
        elif op in POOLS:
            self._pool(node, attrs)
        elif op == "ReduceMean":
            axes = attrs.get("axes", self.const.get(node.input[1]) if len(node.input) > 1 else None)
            if axes is None or sorted(int(a) % 4 for a in axes) != [2, 3]:
                raise self.fail(node, "only a spatial mean (axes 2 and 3) is supported")
            in_shape = self._input_shape(node)
            self._add(node, "globalavgpool", attrs={"kernel": tuple(in_shape[2:4]), "stride": (1, 1)})
        elif op in ELEMENTWISE:
            self._add(node, ELEMENTWISE[op])
        elif op in DATA:
            self._add(node, DATA[op], attrs={"axis": attrs["axis"]} if "axis" in attrs else {})
        else:
            raise self.fail(node, f"unsupported op {op!r}")

    def _weight(self, node, index: int) -> np.ndarray | None:
        name = node.input[index] if len(node.input) > index else ""
        return self.const.get(name) if name else None

    def _conv(self, node, attrs: dict) -> None:
        weight = self._weight(node, 1)
        if weight is None:
            raise self.fail(node, "conv weights must be constants (initializers or constant nodes)")
        bias = self._weight(node, 2)
        out_ch, in_per_group, kh, kw = weight.shape
        pads = attrs.get("pads", [0, 0, 0, 0])
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            pads = [None] * 4
        layer = self._add(node, "conv", params=weight.size + (bias.size if bias is not None else 0),
                          weight_elements=weight.size,
                          attrs={"kernel": (kh, kw), "stride": tuple(attrs.get("strides", (1, 1))),
                                 "padding": tuple(pads[:2]), "groups": attrs.get("group", 1),
                                 "dilation": tuple(attrs.get("dilations", (1, 1))), "bias": bias is not None})
        n, _, oh, ow = layer.output_shape
        layer.macs = n * oh * ow * weight.size
        self.weights[layer.name] = {"weight": weight, **({"bias": bias} if bias is not None else {})}

    def _gemm(self, node, attrs: dict) -> None:
        weight = self._weight(node, 1)
        if weight is None:  # activation x activation (attention-like): MACs but no weights
            layer = self._add(node, "matmul")
            k = self._input_shape(node)[-1]
            layer.macs = layer.output_elements * k
            return
        if node.op_type == "Gemm" and attrs.get("transB", 0):
            weight_out_in = weight
        else:
            weight_out_in = weight.T
        bias = self._weight(node, 2)
        layer = self._add(node, "linear", params=weight.size + (bias.size if bias is not None else 0),
                          weight_elements=weight.size,
                          attrs={"in_features": weight_out_in.shape[1], "bias": bias is not None})
        layer.macs = layer.output_elements * weight_out_in.shape[1]
        self.weights[layer.name] = {"weight": weight_out_in, **({"bias": bias} if bias is not None else {})}

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
