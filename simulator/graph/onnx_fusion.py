"""Decomposed ONNX forms of one operation, rewritten into that operation before layers are made.

- GELU, as exporters write it without a Gelu op: the Erf form x * 0.5 * (1 + erf(x / sqrt 2)) (the 0.5 applied
  first or last) and the Tanh form x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) become one `Gelu`;
- LayerNorm below opset 17: ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div (then Mul by gamma, Add beta) becomes one
  `LayerNormalization` over the last axis.
The rewritten node takes the name (and metadata) of the last node of its form, so its layer is named where the
form ended. A form whose intermediate tensors are read elsewhere is left as it is.
"""
from __future__ import annotations

import math

import numpy as np


def fuse_decomposed_ops(nodes: list, const: dict[str, np.ndarray]) -> list:
    """`nodes` (an ONNX graph's, in order) with every GELU and LayerNorm form fused into one node."""
    return _Fuser(nodes, const).run()


class _Fuser:
    def __init__(self, nodes: list, const: dict[str, np.ndarray]) -> None:
        self.nodes = list(nodes)
        self.const = const
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        self.readers: dict[str, list] = {}
        for n in self.nodes:
            for t in n.input:
                self.readers.setdefault(t, []).append(n)

    def run(self) -> list:
        from onnx import helper

        removed: set[int] = set()
        replacement: dict[int, object] = {}
        for node in self.nodes:
            match = None
            if node.op_type in ("Erf", "Tanh"):
                match = self._gelu(node)
            elif node.op_type == "Div":
                match = self._layernorm(node)
            if match is None:
                continue
            members, last, op, inputs, attrs = match
            if any(id(m) in removed for m in members):
                continue
            fused = helper.make_node(op, inputs, [last.output[0]], name=last.name, **attrs)
            fused.metadata_props.extend(last.metadata_props)
            removed.update(id(m) for m in members)
            replacement[id(last)] = fused
        return [replacement.get(id(n), n) for n in self.nodes if id(n) not in removed or id(n) in replacement]

    # --- helpers ---------------------------------------------------------------------------------------
    def _only_reader(self, tensor: str, op: str):
        readers = self.readers.get(tensor, [])
        return readers[0] if len(readers) == 1 and readers[0].op_type == op else None

    def _scalar(self, tensor: str) -> float | None:
        value = self.const.get(tensor)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    def _split(self, node) -> tuple[str, float] | None:
        """(data input, constant) of a binary node with one scalar constant operand."""
        a, b = node.input[0], node.input[1]
        if self._scalar(b) is not None and a not in self.const:
            return a, self._scalar(b)  # type: ignore[return-value]
        if self._scalar(a) is not None and b not in self.const:
            return b, self._scalar(a)  # type: ignore[return-value]
        return None

    def _other(self, node, tensor: str) -> str | None:
        ins = list(node.input)
        return ins[1 - ins.index(tensor)] if tensor in ins and len(ins) == 2 else None

    # --- GELU ------------------------------------------------------------------------------------------
    def _gelu(self, node):
        head = self.producer.get(node.input[0])
        if head is None or len(self.readers.get(node.input[0], [])) != 1:
            return None
        if node.op_type == "Erf":
            members, x = self._erf_head(head)
        else:
            members, x = self._tanh_head(head)
        if x is None:
            return None
        plus = self._only_reader(node.output[0], "Add")
        if plus is None or (split := self._split(plus)) is None or not math.isclose(split[1], 1.0):
            return None
        members += [node, plus]
        times = self._only_reader(plus.output[0], "Mul")
        if times is None:
            return None
        other = self._other(times, plus.output[0])
        members.append(times)
        if other == x:  # (x * (1 + erf)) * 0.5
            half = self._only_reader(times.output[0], "Mul")
            if half is None or (split := self._split(half)) is None or not math.isclose(split[1], 0.5):
                return None
            members.append(half)
            last = half
        elif other is not None and self._scalar(other) is not None and math.isclose(self._scalar(other) or 0, 0.5):
            last = self._only_reader(times.output[0], "Mul")  # ((1 + erf) * 0.5) * x
            if last is None or self._other(last, times.output[0]) != x:
                return None
            members.append(last)
        else:  # (x * 0.5) * (1 + erf)
            half = self.producer.get(other or "")
            if (half is None or half.op_type != "Mul" or (split := self._split(half)) is None
                    or split[0] != x or not math.isclose(split[1], 0.5) or len(self.readers[half.output[0]]) != 1):
                return None
            members.append(half)
            last = times
        return members, last, "Gelu", [x], {}

    def _erf_head(self, head) -> tuple[list, str | None]:
        """x / sqrt(2) or x * (1 / sqrt(2))."""
        split = self._split(head) if head.op_type in ("Div", "Mul") else None
        if split is None:
            return [], None
        scale = split[1] if head.op_type == "Mul" else 1 / split[1]
        return ([head], split[0]) if math.isclose(scale, 1 / math.sqrt(2), rel_tol=1e-3) else ([], None)

    def _tanh_head(self, head) -> tuple[list, str | None]:
        """sqrt(2/pi) * (x + 0.044715 * x^3), the cube as Pow(x, 3)."""
        split = self._split(head) if head.op_type == "Mul" else None
        if split is None or not math.isclose(split[1], math.sqrt(2 / math.pi), rel_tol=1e-3):
            return [], None
        inner = self.producer.get(split[0])
        if inner is None or inner.op_type != "Add" or len(inner.input) != 2:
            return [], None
        for x, cubic in ((inner.input[0], inner.input[1]), (inner.input[1], inner.input[0])):
            scaled = self.producer.get(cubic)
            if scaled is None or scaled.op_type != "Mul" or (s := self._split(scaled)) is None:
                continue
            power = self.producer.get(s[0])
            if (math.isclose(s[1], 0.044715, rel_tol=1e-3) and power is not None and power.op_type == "Pow"
                    and power.input[0] == x and self._scalar(power.input[1]) == 3.0):
                return [head, inner, scaled, power], x
        return [], None

    # --- LayerNorm -------------------------------------------------------------------------------------
    def _layernorm(self, div):
        """Div(x - mean(x), sqrt(mean((x - mean(x))^2) + eps)), then * gamma + beta when present."""
        centred, std = div.input[0], div.input[1]
        sub, sqrt = self.producer.get(centred), self.producer.get(std)
        if sub is None or sqrt is None or sub.op_type != "Sub" or sqrt.op_type != "Sqrt":
            return None
        x, mean = sub.input[0], self.producer.get(sub.input[1])
        if mean is None or mean.op_type != "ReduceMean" or mean.input[0] != x or not self._last_axis(mean):
            return None
        add_eps = self.producer.get(sqrt.input[0])
        if add_eps is None or add_eps.op_type != "Add" or (split := self._split(add_eps)) is None:
            return None
        var = self.producer.get(split[0])
        if var is None or var.op_type != "ReduceMean" or not self._last_axis(var):
            return None
        square = self.producer.get(var.input[0])
        if (square is None or square.op_type != "Pow" or square.input[0] != centred
                or self._scalar(square.input[1]) != 2.0):
            return None
        members = [mean, sub, square, var, add_eps, sqrt, div]
        if {id(r) for r in self.readers.get(centred, [])} != {id(square), id(div)}:
            return None
        last, inputs = div, [x]
        scale = self._only_reader(div.output[0], "Mul")
        gamma = self._other(scale, div.output[0]) if scale is not None else None
        if scale is not None and gamma in self.const:
            members.append(scale)
            last, inputs = scale, [x, gamma]
            shift = self._only_reader(scale.output[0], "Add")
            beta = self._other(shift, scale.output[0]) if shift is not None else None
            if shift is not None and beta in self.const:
                members.append(shift)
                last, inputs = shift, [x, gamma, beta]
        return members, last, "LayerNormalization", inputs, {"axis": -1, "epsilon": split[1]}

    def _last_axis(self, reduce) -> bool:
        from onnx import helper

        attrs = {a.name: helper.get_attribute_value(a) for a in reduce.attribute}
        axes = attrs.get("axes")
        if axes is None and len(reduce.input) > 1:
            axes = self.const.get(reduce.input[1])
        return axes is not None and [int(a) for a in np.ravel(axes)] == [-1]
