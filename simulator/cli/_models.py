"""`autosplit models`: the model zoo."""
from __future__ import annotations

import argparse

from simulator.cli._arguments import add_format_argument
from simulator.cli._output import emit


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the model zoo", description="The built-in model zoo: "
                                   "parameters (torchvision's convention), conv/linear MACs at batch 1, and layer "
                                   "count after simplification.")
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from simulator.graph import zoo  # loads numpy: not for --help

    rows = []
    for name in zoo.names():
        graph = zoo.build(name)
        rows.append({"name": name, "params": graph.params, "macs": graph.macs, "layers": len(graph.layers),
                     "input_shape": list(graph.input_shape)})
    emit(args.format, rows, rows)
