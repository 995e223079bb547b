"""`autosplit hardware`: the accelerator presets and what each was checked against."""
from __future__ import annotations

import argparse
import textwrap
from typing import Any

from simulator.cli._arguments import add_format_argument
from simulator.cli._output import emit


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hardware", help="list the hardware presets and what each was checked against",
        description="Every built-in accelerator preset: its kind, name, supported bits, and its evidence: the "
        "published rows it was fitted on with its error there, or 'assumed' with what was assumed. GPU presets "
        "name their default mode (serving = a TensorRT engine, framework = PyTorch's kernels) and what validates "
        "it.")
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from hardware_models.registry import (  # loads every hardware model: not for --help
        load_accelerator,
        preset_evidence,
        preset_names,
    )

    rows: list[dict[str, Any]] = []
    for name in preset_names():
        accelerator = load_accelerator(name)
        rows.append({"name": name, "kind": accelerator.kind, "product": accelerator.name,
                     "supported_bits": list(accelerator.supported_bits), "mode": accelerator.mode_label(),
                     "evidence": preset_evidence(accelerator)})
    if args.format == "table":
        for row in rows:
            print(f"{row['name']} ({row['kind']}{', ' + row['mode'] if row['mode'] else ''}): {row['product']}")
            print(textwrap.fill(row["evidence"], width=110, initial_indent="    ", subsequent_indent="    "))
        return
    emit(args.format, rows, [{**r, "supported_bits": ",".join(map(str, r["supported_bits"]))} for r in rows])
