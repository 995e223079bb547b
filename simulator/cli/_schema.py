"""`autosplit schema`: the experiment YAML's JSON Schema, or a table of its keys."""
from __future__ import annotations

import argparse
import json
import textwrap

from simulator.cli._output import emit


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schema", help="the experiment YAML's JSON Schema",
        description="Print the JSON Schema of experiment files (for editor completion), or with --format table one "
        "row per key with its type, default and meaning.")
    parser.add_argument("--format", choices=["json", "table", "csv"], default="json",
                        help="json (default) or a key table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from simulator.experiment.schema import json_schema, key_rows  # loads the schema, numpy, pandas: not for --help

    if args.format == "json":
        print(json.dumps(json_schema(), indent=1))
        return
    rows = key_rows()
    if args.format == "table":  # descriptions wrapped onto continuation rows: lines fit a terminal
        wrapped = []
        for row in rows:
            lines = textwrap.wrap(str(row["description"]), 60) or [""]
            kind = textwrap.wrap(str(row["type"]), 30) or [""]
            default = textwrap.wrap(str(row["default"]), 24) or [""]
            for i in range(max(len(lines), len(kind), len(default))):
                wrapped.append({"key": row["key"] if i == 0 else "", "type": kind[i] if i < len(kind) else "",
                                "default": default[i] if i < len(default) else "",
                                "description": lines[i] if i < len(lines) else ""})
        rows = wrapped
    emit(args.format, rows, rows)
