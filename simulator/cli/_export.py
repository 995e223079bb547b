"""`autosplit export MODEL.onnx`: a plan as edge.onnx, cloud.onnx and plan.json."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hardware_models.errors import UserError
from hardware_models.units import UNITS_HELP
from simulator.choices import GRANULARITIES, measured_tier
from simulator.cli._arguments import (
    add_format_argument,
    add_model_argument,
    add_progress_argument,
    apply_progress,
    input_shape,
    model_name,
)
from simulator.cli._output import emit, format_table
from simulator.cli._plan import add_scenario_arguments, search
from simulator.cli._values import whole

# what --method needs besides the model: the scenario flags `plan` requires
_SCENARIO_REQUIRED = ("edge", "cloud", "uplink", "edge_memory", "max_accuracy_drop", "method")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a plan as edge.onnx, cloud.onnx and plan.json",
        description="Cut MODEL.onnx at a plan and write, to --out: edge.onnx (the model's input to every crossing "
        "tensor; weights quantized at the plan's bits, every edge activation fake-quantized as `autosplit accuracy "
        "--data` measures it, crossing tensors leaving as uint8 codes, or float16 at 16 bits), cloud.onnx (the "
        "crossing tensors, through ONNX DequantizeLinear, to the outputs, float32) and plan.json (the cut, each "
        "crossing tensor's name, shape, bits, scale, zero point, and how a request packs into bytes: sub-byte codes "
        "bit-packed into one stream). The plan is --plan FILE (`autosplit plan --format json` output, or an "
        "experiment's .csv table with --method/--row), or --method with `plan`'s scenario flags. Activation ranges "
        "come from --calibration, or the first 128 samples of --data, as in `autosplit accuracy`. " + UNITS_HELP)
    add_model_argument(parser)
    parser.add_argument("--plan", metavar="PLAN.json", help="the plan: `autosplit plan --format json` output, a JSON "
                        "list of plans, or an experiment table (.csv)")
    parser.add_argument("--row", type=whole(0), help="which plan of a table or list (0-based, after --method's filter)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for edge.onnx, cloud.onnx, plan.json")
    parser.add_argument("--force", action="store_true", help="overwrite an exported split already in --out")
    parser.add_argument("--data", metavar="FILE.npz", help="labelled data whose first 128 inputs fix activation "
                        "ranges (when --calibration is not given)")
    parser.add_argument("--calibration", metavar="FILE.npz", help="inputs that fix activation ranges")
    parser.add_argument("--granularity", default="per-channel", choices=GRANULARITIES,
                        help="weight quantization granularity (default per-channel)")
    add_progress_argument(parser)
    before = {a.dest for a in parser._actions}
    add_scenario_arguments(parser, required=False)
    parser.set_defaults(scenario_defaults={a.dest: a.default for a in parser._actions if a.dest not in before})
    add_format_argument(parser)
    parser.set_defaults(func=run)


def _plan_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The best plan of --method for `plan`'s scenario flags (what `autosplit plan --format json` prints)."""
    missing = [f"--{k.replace('_', '-')}" for k in _SCENARIO_REQUIRED if getattr(args, k) is None]
    if missing:
        raise UserError(f"export: give --plan PLAN.json, or --method with the scenario flags (missing: "
                        f"{', '.join(missing)})")
    if args.data is None:
        raise UserError("export --method: give --data FILE.npz: the search needs the model's accuracy, measured")
    plan = search(args)[1].plan
    if plan is None:
        raise UserError(f"--method {args.method}: no plan meets the memory and accuracy bounds; nothing to export")
    return {**plan.to_json(), "activation_codec": args.activation_codec, "input_codec": args.input_codec}


def run(args: argparse.Namespace) -> None:
    # the exporter loads numpy and onnx: not for --help
    from simulator.accuracy.measure import CALIBRATION_SAMPLES
    from simulator.accuracy.npz import load_inputs, load_npz
    from simulator.deploy import export_split, read_plan

    name = model_name(args)
    apply_progress(args)
    if not name.endswith(".onnx"):
        raise UserError(f"export: MODEL must be an .onnx file with weights, got {name!r}")
    if not Path(name).is_file():
        raise UserError(f"export: {name}: no such ONNX file")
    if args.calibration is None and args.data is None:
        raise UserError("export: give --calibration FILE.npz (or --data FILE.npz, whose first 128 inputs are used) "
                        "to fix the activation ranges")
    data_x = load_npz(args.data, "--data")[0] if args.data else None
    if args.calibration:
        calibration_x, calibration_name = load_inputs(args.calibration, "--calibration"), args.calibration
    else:
        assert data_x is not None  # --data is given when --calibration is not
        calibration_x = data_x[:CALIBRATION_SAMPLES]
        calibration_name = f"{args.data} (first {CALIBRATION_SAMPLES})"
    if args.plan is not None:
        # the scenario flags make a plan; with a plan file they would be silently ignored
        unused = [flag for flag, default in args.scenario_defaults.items()
                  if flag not in ("method", "tier") and getattr(args, flag) != default]
        if unused:
            raise UserError(f"export --{unused[0].replace('_', '-')}: the scenario flags make a plan with --method; "
                            "with --plan FILE they are not used (give one or the other)")
        plan = read_plan(args.plan, method=args.method, row=args.row)
    else:
        if args.row is not None:
            raise UserError("--row: picks a plan of a --plan table; give --plan FILE")
        plan = _plan_from_flags(args)
    result = export_split(name, plan, args.out, calibration_x, calibration_name, measured_tier(args.tier), args.granularity,
                          force=args.force, input_shape=input_shape(args), until=args.until)
    if args.format == "json":
        emit("json", result, [])
        return
    rows = [{"tensor": c["name"], "shape": "x".join(map(str, c["shape"])), "bits": c["bits"], "scale": c["scale"],
             "zero_point": c["zero_point"], "dtype": c["dtype"]} for c in result["crossing"]]
    if args.format == "csv":
        emit("csv", result, rows)
        return
    simulated = result["simulated_payload_bytes"]
    print(f"exported {result['model']}: {len(result['edge_layers'])} edge layers, "
          f"cut {result['cut_index'] if result['cut_index'] is not None else 'non-prefix'}, opset {result['opset']}")
    print(f"  payload {result['payload_bytes']} bytes a request"
          + (f" (the plan's payload_bytes: {simulated:.0f})" if simulated is not None else ""))
    check = result["self_check"]
    print(f"  check   edge -> pack -> unpack -> cloud vs the whole fake-quantized model on {check['samples']} "
          f"calibration samples: max |difference| {check['max_abs_difference']:.3g}, top-1 "
          f"{'agrees' if check['top1_agrees'] else 'DIFFERS'}")
    print(format_table(rows))
    print(f"wrote {Path(args.out) / 'edge.onnx'}, cloud.onnx, plan.json")
