"""`autosplit layer-cost`: per-layer cost of a model (or a SCALE-Sim topology) on one accelerator."""
from __future__ import annotations

import argparse
from typing import Any

from hardware_models.errors import UserError
from simulator.cli._arguments import add_format_argument, add_gpu_mode_arguments, add_model_argument, model_from_args
from simulator.cli._output import emit
from simulator.cli._values import parse_bits, whole

PRECISION_BITS = {"fp32": 32, "fp16": 16, "int8": 8}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "layer-cost", help="per-layer cost of a model on one accelerator",
        description="Per-layer cycles, latency, energy and DRAM bytes of a model (a zoo name or an .onnx file) or a "
        "SCALE-Sim topology CSV on an accelerator (a preset name, a preset .yaml, or a SCALE-Sim .cfg), and the "
        "total. compute_cycles are SCALE-Sim's 'Total Cycles' minus 'Stall Cycles'. For a GPU the total is the "
        "whole network's prediction in the preset's execution mode, which need not be the sum of the rows.")
    parser.add_argument("--hardware", required=True, metavar="HW",
                        help="preset name (e.g. eyeriss, tpu_v1), a preset .yaml, a SCALE-Sim .cfg or a profile .csv "
                        "from `autosplit profile` (of the same model)")
    add_model_argument(parser)
    parser.add_argument("--topology", metavar="SCALESIM.csv", help="a SCALE-Sim conv topology CSV instead of a model")
    parser.add_argument("--bits", metavar="W[/A]", help="weight/activation bit-widths of every layer (default 8/8, "
                        "or 16/16 where 8 is unsupported)")
    parser.add_argument("--batch", type=whole(1, 65536), default=1, help="batch size (default 1)")
    parser.add_argument("--precision", choices=list(PRECISION_BITS),
                        help="GPU or CPU arithmetic: fp32, fp16 or int8 (32/16/8 bits; overrides --bits)")
    parser.add_argument("--threads", type=whole(1, 4096), help="threads of a CPU preset (default: every core)")
    add_gpu_mode_arguments(parser, "--execution", "--fusion", "the GPU's")
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from hardware_models.registry import (  # loads every hardware model: not for --help
        load_accelerator,
        preset_evidence,
        with_mode_spec,
    )
    from hardware_models.scalesim_io import read_topology

    if (args.execution or args.fusion) and not load_accelerator(args.hardware).has_modes:
        raise UserError(f"--execution/--fusion: apply to a GPU; {args.hardware} is not a GPU preset")
    accelerator = load_accelerator(with_mode_spec(args.hardware, args.execution, args.fusion))
    if args.threads is not None:
        accelerator = accelerator.with_threads(args.threads, where="--threads")
    if args.topology and (args.model or args.model_pos):
        raise UserError("layer-cost: give either a MODEL or --topology, not both")
    if args.topology:
        layers, source = read_topology(args.topology), args.topology
        accelerator.check_model(args.topology, None)
    else:
        graph = model_from_args(args)
        layers, source = graph.layer_specs(), graph.name
        accelerator.check_model(graph.name, graph.source)
    if args.precision and not accelerator.fixed_precisions:
        raise UserError(f"--precision: {accelerator.name} computes at any of its bit-widths, not in fixed "
                        "precisions (a GPU's or a CPU's); give --bits W/A")
    if args.precision and args.bits:
        raise UserError("--precision and --bits: give one of them (--precision sets both bit-widths)")
    if args.precision:
        weight_bits = activation_bits = PRECISION_BITS[args.precision]
    elif args.bits:
        weight_bits, activation_bits = parse_bits(args.bits)
    else:
        weight_bits = activation_bits = accelerator.default_bits  # 8/8 on the edge, 16 on a GPU (CLOUD16)
    supported = accelerator.supported_bits
    if accelerator.fixed_precisions and not {weight_bits, activation_bits} <= set(supported):
        raise UserError(f"--bits: {accelerator.name} computes at {', '.join(map(str, supported))} bits, not "
                        f"{weight_bits}/{activation_bits} (or give --precision fp32|fp16|int8)")
    rows, total = accelerator.network_cost(layers, weight_bits, activation_bits, args.batch)
    data: dict[str, Any] = {"hardware": accelerator.name, "model": source, "weight_bits": weight_bits,
                            "activation_bits": activation_bits, "batch": args.batch,
                            "layers": [row.as_row() for row in rows],
                            "total": {**total.as_row(), "energy_parts_j": total.energy_parts_j},
                            "evidence": preset_evidence(accelerator)}
    if accelerator.has_modes:
        data["mode"] = accelerator.mode()
    table = [row.as_row() for row in rows]
    if args.format == "table":
        table.append({**total.as_row(), "name": "TOTAL"})
    mode = f" in {accelerator.mode_label()} mode" if accelerator.has_modes else ""
    title = (f"{source} on {accelerator.name}{mode}: {weight_bits}-bit weights, {activation_bits}-bit activations, "
             f"batch {args.batch}; cycles at {accelerator.clock_hz / 1e6:g} MHz")
    emit(args.format, data, table, title=title, footer=f"evidence: {data['evidence']}")
