"""Graph IR, model zoo, ONNX import and split candidates."""
from __future__ import annotations

from pathlib import Path

from hardware_models.errors import UserError, suggest
from simulator.graph import zoo
from simulator.graph.ir import Graph, Layer, Tensor, layer_spec
from simulator.graph.onnx_import import import_onnx
from simulator.graph.simplify import simplify as simplify_graph

__all__ = ["Graph", "Layer", "Tensor", "layer_spec", "load_model"]


def load_model(name: str, simplify: bool = True) -> Graph:
    """A zoo model by name, or an ONNX file by path; simplified (batchnorm folded, activations fused) by default."""
    if name.endswith(".onnx") or Path(name).is_file():
        graph = import_onnx(name)
    elif name in zoo.names():
        graph = zoo.build(name, simplify=False)
    else:
        raise UserError(f"unknown model {name!r}{suggest(name, zoo.names())}; expected a zoo name "
                        f"({', '.join(zoo.names())}) or a path to an .onnx file")
    return simplify_graph(graph) if simplify else graph
