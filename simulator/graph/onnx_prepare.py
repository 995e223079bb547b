"""An ONNX file made ready for import: input shapes fixed, truncated where the user asks, constants folded.

`prepare_onnx` returns the model exactly as the importer (and anything that runs the model, e.g. the fake
quantizer) sees it:
1. every input dimension is fixed: from `input_shape` (`--input-shape` / `input_shape:`) when given; otherwise a
   symbolic batch (the first dimension) is 1, and any other symbolic dimension (a spatial H/W, a sequence
   length) is an error naming `--input-shape`, never a silent 1;
2. with `until` (a node or tensor name; `--until` / `until:`), only what that tensor needs is kept and it becomes
   the graph's output, so a detection model's post-processing (NMS, TopK, NonZero, RoiAlign) is left out;
3. everything computable from constants alone is folded into initializers: ONNX shape inference, then every node
   whose inputs are all constants (or a `Shape`/`Size` of a tensor whose shape is now known) is evaluated with
   onnx's reference evaluator, one batch per round, and inference runs again, until a round folds nothing.
   Shape arithmetic of any kind (Shape/Gather/Mod/Equal/Where/Expand/ScatterND/Range/ConstantOfShape/Cast...)
   folds this way with no per-op code. Constants larger than `FOLD_LIMIT` elements (weights) are left as they
   are: a weight stored as ConstantOfShape (the test fixtures) stays a node rather than a large initializer;
   and nothing is computed here from a float constant over `PARAMETER_LIMIT` elements, so that a learnable
   parameter (a relative-position table gathered by constant indices) is still one, for the importer to count.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hardware_models.errors import UserError, suggest

if TYPE_CHECKING:
    import onnx

# shape arithmetic is small; weights are not, and are never needed to compute a shape
FOLD_LIMIT = 1 << 16
# a float constant over this many elements may be a learnable parameter (a positional embedding, a relative
# position table): what is computed from it stays for the importer, which counts the parameter where it is read
PARAMETER_LIMIT = 64
_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
# ops whose output is not a function of their inputs, or that carry subgraphs: never folded
_NOT_FOLDABLE = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
                 "Bernoulli", "If", "Loop", "Scan", "SequenceMap"}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def prepare_onnx(path: str | Path, *, input_shape: tuple[int, ...] | None = None,
                 until: str | None = None) -> onnx.ModelProto:
    """The ONNX model at `path` with fixed input shapes, truncated at `until`, constants folded (see module)."""
    try:
        import onnx
    except ImportError:
        raise UserError("reading ONNX files needs the onnx package: pip install 'autosplit[onnx]'") from None
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        if model.functions:
            from onnx import inliner

            model = inliner.inline_local_functions(model)
    except Exception as exc:  # onnx raises several unrelated types for a broken file
        raise UserError(f"{path}: not a valid ONNX model: {_first_line(exc)}") from None
    _fix_input_shapes(model, path, input_shape)
    if until is not None:
        _truncate(model, path, until)
    return fold_constants(model, path)


def _fix_input_shapes(model: onnx.ModelProto, path: Path, input_shape: tuple[int, ...] | None) -> None:
    """Give every input dimension a size: `input_shape` for the first input, else 1 for a symbolic batch."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    for position, value in enumerate(inputs):
        dims = value.type.tensor_type.shape.dim
        written = "x".join(d.dim_param or str(d.dim_value) if (d.dim_param or d.HasField("dim_value")) else "?"
                           for d in dims)
        if input_shape is not None and position == 0:
            if len(input_shape) != len(dims):
                raise UserError(f"--input-shape {'x'.join(map(str, input_shape))} (input_shape: in YAML): {path.name}'s input "
                                f"{value.name!r} has {len(dims)} dimensions ({written}); give {len(dims)}")
            for axis, (dim, size) in enumerate(zip(dims, input_shape)):
                if dim.HasField("dim_value") and dim.dim_value != size:
                    raise UserError(f"--input-shape {'x'.join(map(str, input_shape))} (input_shape: in YAML): {path.name}'s input "
                                    f"{value.name!r} has a fixed size {dim.dim_value} on axis {axis} ({written})")
                dim.Clear()
                dim.dim_value = size
            continue
        for axis, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if axis == 0:  # a dynamic batch: one sample, as every other model in autosplit
                dim.Clear()
                dim.dim_value = 1
                continue
            example = "x".join(str(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else "?"
                               for d in dims)
            raise UserError(f"{path.name}: input {value.name!r} has the symbolic dimension "
                            f"{dim.dim_param or '?'!r} on axis {axis} ({written}); give its size with "
                            f"--input-shape (input_shape: in YAML), e.g. --input-shape {example}"
                            + ("" if position == 0 else " (it sets the first input only: re-export with fixed "
                               "shapes)"))


def _truncate(model: onnx.ModelProto, path: Path, until: str) -> None:
    """Keep only the nodes `until` (a node name or a tensor name) needs; its output(s) become the graph's."""
    import onnx

    graph = model.graph
    by_node = {n.name: [o for o in n.output if o] for n in graph.node if n.name}
    produced = {o for n in graph.node for o in n.output if o}
    if until in by_node:
        targets = by_node[until]
    elif until in produced:
        targets = [until]
    else:
        raise UserError(f"--until {until!r} (until: in YAML): {path.name} has no node or tensor of that name"
                        f"{suggest(until, [*by_node, *produced])}")
    kept, _ = _nodes_reaching(graph, targets)
    try:
        typed = {v.name: v for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    except Exception:  # the part after the cut may be what inference cannot read; the outputs stay untyped
        typed = {}
    outputs = []
    for name in targets:
        info = onnx.ValueInfoProto()
        if name in typed:
            info.CopyFrom(typed[name])
        else:
            info.name = name
            info.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        outputs.append(info)
    del graph.node[:]
    graph.node.extend(kept)
    del graph.output[:]
    graph.output.extend(outputs)
    used = {t for n in kept for t in n.input}
    keep_init = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep_init)


def _static_shape(info) -> tuple[int, ...] | None:
    tensor = info.type.tensor_type
    if not tensor.HasField("shape") or any(not d.HasField("dim_value") for d in tensor.shape.dim):
        return None
    return tuple(d.dim_value for d in tensor.shape.dim)


def _infer(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:
        raise UserError(f"{path}: shape inference failed: {_first_line(exc)}") from None


def fold_constants(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    """Fold every small constant computation into initializers, re-running shape inference (see module)."""
    from onnx import helper, numpy_helper

    model = _infer(model, path)
    too_large: set[str] = set()  # constants over FOLD_LIMIT: their nodes stay
    while True:
        graph = model.graph
        sizes = {i.name: math.prod(i.dims) for i in graph.initializer}
        floats = {i.name for i in graph.initializer if i.data_type in _FLOAT_TYPES}
        shapes = {v.name: s for v in [*graph.input, *graph.value_info, *graph.output]
                  if (s := _static_shape(v)) is not None}
        shapes.update({i.name: tuple(i.dims) for i in graph.initializer})
        folded: dict[int, object] = {}  # position -> node to evaluate (Shape/Size of a known shape as Constant)
        for index, node in enumerate(graph.node):
            ins = [t for t in node.input if t]
            if (node.domain not in ("", "ai.onnx") or node.op_type in _NOT_FOLDABLE
                    or any(o in too_large for o in node.output)):
                continue
            if node.op_type in ("Shape", "Size") and ins[0] in shapes:
                folded[index] = helper.make_node("Constant", [], [node.output[0]],
                                                 value=numpy_helper.from_array(_shape_value(node, shapes[ins[0]])))
            elif all(t in sizes and (sizes[t] <= PARAMETER_LIMIT or t not in floats) for t in ins) and (
                    ins or node.op_type == "Constant"):
                if node.op_type == "ConstantOfShape" and not _small_fill(graph, ins[0]):
                    continue
                folded[index] = node
            else:
                continue
            sizes.update({o: 0 for o in node.output if o})  # its consumers fold in the same round (sizes
            # are checked after evaluation)
        if not folded:
            return _without_dead_nodes(model)
        values = _evaluate(list(folded.values()), graph, model.opset_import, path)
        big = {name for name, value in values.items() if value.size > FOLD_LIMIT}
        too_large |= big
        # a large constant (say, a mask expanded from a small one) stays a node, its small inputs initializers
        kept = [n for i, n in enumerate(graph.node) if i not in folded or any(o in big for o in n.output)]
        needed = {t for n in kept for t in n.input} | {o.name for o in graph.output}
        graph.initializer.extend(numpy_helper.from_array(np.asarray(values[name]), name)
                                 for name in values if name in needed and name not in big)
        del graph.node[:]
        graph.node.extend(kept)
        del graph.value_info[:]
        model = _infer(_without_dead_nodes(model), path)


def _nodes_reaching(graph: onnx.GraphProto, targets: list[str]) -> tuple[list[onnx.NodeProto], set[str]]:
    """The nodes `targets` depend on, in graph order, and every tensor they read (targets included)."""
    needed = set(targets)
    nodes = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            nodes.append(node)
            needed.update(t for t in node.input if t)
    nodes.reverse()
    return nodes, needed


def _without_dead_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` without nodes nobody reads and initializers no node reads."""
    graph = model.graph
    alive, needed = _nodes_reaching(graph, [o.name for o in graph.output])
    initializers = [i for i in graph.initializer if i.name in needed]
    del graph.node[:]
    graph.node.extend(alive)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    return model


def _shape_value(node, shape: tuple[int, ...]) -> np.ndarray:
    from onnx import helper

    if node.op_type == "Size":
        return np.array(math.prod(shape), dtype=np.int64)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return np.array(shape, dtype=np.int64)[attrs.get("start", 0): attrs.get("end")]


def _small_fill(graph, shape_name: str) -> bool:
    """True when the ConstantOfShape reading the initializer `shape_name` makes a small tensor."""
    from onnx import numpy_helper

    init = next((i for i in graph.initializer if i.name == shape_name), None)
    if init is None:  # a shape computed in this round: the next round decides
        return False
    return math.prod(int(d) for d in numpy_helper.to_array(init).reshape(-1)) <= FOLD_LIMIT


def evaluate_nodes(nodes: list, feeds: dict[str, np.ndarray], opset_import) -> dict[str, np.ndarray]:
    """Every output of `nodes` (which read only `feeds` and each other), by onnx's reference evaluator."""
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    produced = [o for n in nodes for o in n.output if o]
    reads = [t for t in dict.fromkeys(t for n in nodes for t in n.input if t) if t not in produced]
    inputs = [helper.make_tensor_value_info(t, helper.np_dtype_to_tensor_dtype(feeds[t].dtype), feeds[t].shape)
              for t in reads]
    outputs = [helper.make_empty_tensor_value_info(name) for name in produced]
    model = helper.make_model(helper.make_graph(nodes, "constants", inputs, outputs),
                              opset_imports=list(opset_import))
    results = ReferenceEvaluator(model).run(None, {t: feeds[t] for t in reads})
    return {name: np.asarray(value) for name, value in zip(produced, results)}


def _evaluate(nodes: list, graph, opset_import, path: Path) -> dict[str, np.ndarray]:
    """Every output of `nodes` (all computable from the graph's initializers), by onnx's reference evaluator."""
    from onnx import numpy_helper

    reads = {t for n in nodes for t in n.input if t}
    feeds = {i.name: numpy_helper.to_array(i) for i in graph.initializer if i.name in reads}
    try:
        return evaluate_nodes(nodes, feeds, opset_import)
    except Exception as exc:
        raise UserError(f"{path}: folding constants failed: {_first_line(exc)}") from None
