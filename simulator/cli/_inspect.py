"""`autosplit inspect MODEL`: a model's layers and, with --cuts, its split candidates."""
from __future__ import annotations

import argparse
from typing import Any

from simulator.cli._arguments import add_format_argument, add_model_argument, model_from_args
from simulator.cli._output import emit, format_table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect", help="layers and split candidates of a model",
        description="Layers of MODEL in execution order (after folding batchnorm and fusing activations unless "
        "--no-simplify) and, with --cuts, every split candidate with the tensors crossing it. A cut's index is the "
        "number of layers on the edge (0 = cloud-only).")
    add_model_argument(parser)
    parser.add_argument("--cuts", action="store_true", help="also list split candidates and their crossing tensors")
    parser.add_argument("--no-simplify", action="store_true",
                        help="show the raw graph (batchnorm and activations apart)")
    parser.add_argument("--viable", action="store_true",
                        help="only cuts whose payload is at most the raw input's (the paper's viability filter); "
                        "implies --cuts")
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from simulator.graph.cuts import enumerate_cuts, viable_cuts  # loads numpy: not for --help

    if args.viable:  # the filter is of cuts: it implies --cuts
        args.cuts = True
    graph = model_from_args(args, simplify=not args.no_simplify)
    layers: list[dict[str, Any]] = [
        {"name": l.name, "op": l.op, "inputs": list(l.inputs), "output_shape": list(l.output_shape),
         "params": l.params, "macs": l.macs} for l in graph.layers]
    data: dict[str, Any] = {"model": graph.name, "input_shape": list(graph.input_shape),
                            "simplified": graph.simplified, "params": graph.params, "macs": graph.macs,
                            "layers": layers}
    cuts: list[dict[str, Any]] = []
    if args.cuts:
        found = viable_cuts(graph) if args.viable else enumerate_cuts(graph)
        cuts = [{"index": c.index, "after": c.after,
                 "tensors": [{"name": t.name, "shape": list(t.shape), "elements": t.elements} for t in c.tensors],
                 "elements": c.elements} for c in found]
        data["cuts"] = cuts
    if args.format != "table":
        rows = layers if not args.cuts else [
            {"index": c["index"], "after": c["after"], "tensors": " + ".join(t["name"] for t in c["tensors"]),
             "elements": c["elements"]} for c in cuts]
        emit(args.format, data, rows)
        return
    title = (f"{graph.name}: input {'x'.join(map(str, graph.input_shape))}, {len(graph.layers)} layers, "
             f"{graph.params:,} params, {graph.macs:,} MACs"
             + ("" if graph.simplified else " (raw graph, not simplified)"))
    emit("table", data, [{**l, "inputs": ", ".join(l["inputs"])} for l in layers], title=title)
    if args.cuts:
        print()
        print(format_table([{"index": c["index"], "after": c["after"] or "(input)",
                             "tensors": " + ".join(f"{t['name']}[{t['elements']}]" for t in c["tensors"]),
                             "elements": c["elements"]} for c in cuts]))
