"""Graph IR, model zoo, ONNX import and split candidates."""
from __future__ import annotations

from pathlib import Path

from hardware_models.errors import UserError, suggest
from simulator.graph import zoo
from simulator.graph.ir import Graph, Layer, Tensor, layer_spec
from simulator.graph.onnx_import import import_onnx, prepare_onnx
from simulator.graph.simplify import simplify as simplify_graph

__all__ = ["Graph", "Layer", "Tensor", "layer_spec", "load_model", "prepare_onnx"]


def load_model(name: str, simplify: bool = True, *, input_shape: tuple[int, ...] | None = None,
               until: str | None = None) -> Graph:
    """A zoo model by name, or an ONNX file by path; simplified (batchnorm folded, activations fused) by default.

    `input_shape` fixes an ONNX model's symbolic input dimensions and `until` truncates it at a node or tensor
    (see `prepare_onnx`); a zoo model takes neither.
    """
    if name.endswith(".onnx") or Path(name).is_file():
        graph = import_onnx(name, input_shape=input_shape, until=until)
    elif input_shape is not None or until is not None:
        given = "--input-shape" if input_shape is not None else "--until"
        raise UserError(f"{given} is for an .onnx model; {name!r} is a zoo model with fixed shapes and layers")
    elif name in zoo.names():
        graph = zoo.build(name, simplify=False)
    else:
        raise UserError(f"unknown model {name!r}{suggest(name, zoo.names())}; expected a zoo name "
                        f"({', '.join(zoo.names())}) or a path to an .onnx file")
    if not any(layer.op not in VIEW_OPS for layer in graph.layers):
        what = "no operations" if not graph.layers else "only " + ", ".join(sorted({l.op for l in graph.layers}))
        raise UserError(f"{name}: the model has {what}: nothing is computed, so there is nothing to split")
    return simplify_graph(graph) if simplify else graph


# ops that pass their input on unchanged (a model made only of them has nothing to split)
VIEW_OPS = ("identity", "dropout")
