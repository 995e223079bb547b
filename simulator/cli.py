"""`autosplit` command line: one sub-command per job, shared conventions for all of them.

Every command takes `--format table|csv|json` (table by default), exits 0 on success and 2 on a user
error with a one-line message (never a traceback). Each command is an `add_<name>(subparsers)` function
that registers its arguments and sets `func` to the function that runs it.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from hardware_models.errors import UserError
from hardware_models.units import UNITS_HELP


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is a UserError (one line, exit 2) instead of usage + message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message} (see --help)")


_NEGATIVE_VALUE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """['--uplink', '-1Mbps'] -> ['--uplink=-1Mbps']: argparse would read '-1Mbps' as a flag and say "expected
    one argument"; joined, the value reaches the flag's own check ("expected a rate > 0")."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE_VALUE.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autosplit")
    except PackageNotFoundError:
        return "unknown (not installed)"


# --- flag values: the same bounds as the experiment YAML's keys ---------------------------------------
def _whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse type: a whole number in [low, high]."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            upper = f"..{high}" if high is not None else " or more"
            raise argparse.ArgumentTypeError(f"expected a whole number {low}{upper}, got {text!r}")
        return value

    whole.__name__ = "whole number"
    return whole


def _number(low: float, high: float, *, low_open: bool = False, high_open: bool = False,
            what: str = "a number") -> Callable[[str], float]:
    """argparse type: a finite number in the interval [low, high] (open ends where asked)."""

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {what} in {'(' if low_open else '['}{low:g}, {high:g}"
                                             f"{')' if high_open else ']'}, got {text!r}")
        return value

    number.__name__ = "number"
    return number


def _seed_type() -> Callable[[str], int]:
    from simulator.experiment.schema import MAX_SEED

    return _whole(0, MAX_SEED)


# --- output -------------------------------------------------------------------------------------------
def _plain(value: object) -> object:
    """JSON-safe: numpy scalars to Python, NaN/inf to null."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _cell(value: object, exact: bool = False) -> str:
    """A value as table text (6 significant digits) or, `exact`, as CSV text that reads back to the same value."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float):
        if exact:
            return repr(value) if math.isfinite(value) else ""
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value)) if all(isinstance(v, int) for v in value) else ",".join(map(str, value))
    return "" if value is None else str(value)


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as an aligned plain-text table."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [all(_is_number(row.get(c)) for row in rows) for c in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_csv(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    import csv
    import io

    if not rows:
        return ""
    columns = list(columns or rows[0].keys())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_cell(row.get(c), exact=True) for c in columns] for row in rows])
    return out.getvalue().rstrip("\n")


def emit(fmt: str, data: object, rows: Sequence[dict], columns: Sequence[str] | None = None,
         title: str | None = None, footer: str | None = None) -> None:
    """Print `data` as JSON, or `rows` as a table / CSV."""
    if fmt == "json":
        print(json.dumps(_plain(data), indent=1))
        return
    if fmt == "csv":
        print(format_csv(rows, columns))
        return
    if title:
        print(title)
    print(format_table(rows, columns))
    if footer:
        print(footer)


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table",
                        help="output format (default: table; json for scripts)")


# --- commands -----------------------------------------------------------------------------------------
def add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the model zoo", description="The built-in model zoo: parameters "
                       "(torchvision's convention), conv/linear MACs at batch 1, and layer count after simplification.")
    _add_format(p)
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> None:
    from simulator.graph import zoo

    rows = []
    for name in zoo.names():
        graph = zoo.build(name)
        rows.append({"name": name, "params": graph.params, "macs": graph.macs, "layers": len(graph.layers),
                     "input_shape": list(graph.input_shape)})
    emit(args.format, rows, rows)


def _add_model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_pos", nargs="?", metavar="MODEL", help="zoo name (see `autosplit models`) or an .onnx path")
    p.add_argument("--model", "--onnx", dest="model", help="same as MODEL")


def model_from_args(args: argparse.Namespace, simplify: bool = True):
    """The Graph named by MODEL / --model / --onnx."""
    from simulator.graph import load_model

    return load_model(model_name(args), simplify=simplify)


def model_name(args: argparse.Namespace) -> str:
    """MODEL, or --model/--onnx: one of them, not two different ones."""
    for given, what in ((args.model, "--model"), (args.model_pos, "MODEL")):
        if given is not None and not given.strip():
            raise UserError(f"{args.command}: {what} is empty; expected a zoo name or an .onnx file")
    if args.model and args.model_pos and args.model != args.model_pos:
        raise UserError(f"{args.command}: MODEL {args.model_pos!r} and --model {args.model!r} disagree; give one")
    name = args.model or args.model_pos
    if not name:
        raise UserError(f"{args.command}: give a MODEL (a zoo name or an .onnx file)")
    return name


def add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="layers and split candidates of a model",
                       description="Layers of MODEL in execution order (after folding batchnorm and fusing "
                       "activations unless --no-simplify) and, with --cuts, every split candidate with the "
                       "tensors crossing it. A cut's index is the number of layers on the edge (0 = cloud-only).")
    _add_model_argument(p)
    p.add_argument("--cuts", action="store_true", help="also list split candidates and their crossing tensors")
    p.add_argument("--no-simplify", action="store_true", help="show the raw graph (batchnorm and activations apart)")
    p.add_argument("--viable", action="store_true",
                   help="only cuts whose payload is at most the raw input's (the paper's viability filter); "
                   "implies --cuts")
    _add_format(p)
    p.set_defaults(func=run_inspect)


def run_inspect(args: argparse.Namespace) -> None:
    from simulator.graph.cuts import enumerate_cuts, viable_cuts

    if args.viable:  # the filter is of cuts: it implies --cuts
        args.cuts = True
    graph = model_from_args(args, simplify=not args.no_simplify)
    layers = [{"name": l.name, "op": l.op, "inputs": list(l.inputs), "output_shape": list(l.output_shape),
               "params": l.params, "macs": l.macs} for l in graph.layers]
    data: dict = {"model": graph.name, "input_shape": list(graph.input_shape), "simplified": graph.simplified,
                  "params": graph.params, "macs": graph.macs, "layers": layers}
    cuts = []
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


PRECISION_BITS = {"fp32": 32, "fp16": 16, "int8": 8}


def parse_bits(text: str) -> tuple[int, int]:
    """'4/8' -> (4, 8) weight and activation bits; '8' -> (8, 8)."""
    parts = text.split("/")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(not 1 <= v <= 64 for v in values):
        raise UserError(f"--bits: expected W or W/A with whole bit-widths such as 8 or 4/8, got {text!r}")
    return values[0], values[-1]


def add_layer_cost(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("layer-cost", help="per-layer cost of a model on one accelerator",
                       description="Per-layer cycles, latency, energy and DRAM bytes of a model (a zoo name or an "
                       ".onnx file) or a SCALE-Sim topology CSV on an accelerator (a preset name, a preset .yaml, "
                       "or a SCALE-Sim .cfg), and the total. compute_cycles are SCALE-Sim's 'Total Cycles' minus "
                       "'Stall Cycles'. For a GPU the total is the whole network's prediction in the preset's "
                       "execution mode, which need not be the sum of the rows.")
    p.add_argument("--hardware", required=True, metavar="HW",
                   help="preset name (e.g. eyeriss, tpu_v1), a preset .yaml or a SCALE-Sim .cfg")
    _add_model_argument(p)
    p.add_argument("--topology", metavar="SCALESIM.csv", help="a SCALE-Sim conv topology CSV instead of a model")
    p.add_argument("--bits", metavar="W[/A]",
                   help="weight/activation bit-widths of every layer (default 8/8, or 16/16 where 8 is unsupported)")
    p.add_argument("--batch", type=_whole(1, 65536), default=1, help="batch size (default 1)")
    p.add_argument("--precision", choices=list(PRECISION_BITS),
                   help="GPU arithmetic: fp32, fp16 or int8 (32/16/8 bits; overrides --bits)")
    _add_gpu_mode(p, "--execution", "--fusion", "the GPU's")
    _add_format(p)
    p.set_defaults(func=run_layer_cost)


def _add_gpu_mode(p: argparse.ArgumentParser, execution_flag: str, fusion_flag: str, whose: str) -> None:
    """The GPU mode flags (issue 14): execution graph|eager and fusion serving|framework."""
    p.add_argument(execution_flag, choices=["graph", "eager"],
                   help=f"{whose} execution: graph (one captured graph / engine) or eager (PyTorch dispatching op by "
                   "op; implies --fusion framework); default: the preset's (graph)")
    p.add_argument(fusion_flag, choices=["serving", "framework"],
                   help=f"{whose} kernels: serving (a TensorRT engine, fitted on published TensorRT results) or "
                   "framework (PyTorch's kernels, fitted on a measured H200 profile); default: the preset's (serving)")


def run_layer_cost(args: argparse.Namespace) -> None:
    from hardware_models.registry import load_accelerator, preset_evidence, with_mode_spec

    if (args.execution or args.fusion) and not hasattr(load_accelerator(args.hardware), "with_mode"):
        raise UserError(f"--execution/--fusion: apply to a GPU; {args.hardware} is not a GPU preset")
    accelerator = load_accelerator(with_mode_spec(args.hardware, args.execution, args.fusion))
    if args.topology and (args.model or args.model_pos):
        raise UserError("layer-cost: give either a MODEL or --topology, not both")
    if args.topology:
        from hardware_models.scalesim_io import read_topology

        layers, source = read_topology(args.topology), args.topology
    else:
        graph = model_from_args(args)
        layers, source = graph.layer_specs(), graph.name
    if args.batch < 1:
        raise UserError(f"--batch: expected a whole number >= 1, got {args.batch}")
    if args.precision and not hasattr(accelerator, "kernel_table"):
        raise UserError(f"--precision: {accelerator.name} is not a GPU; give --bits W/A for an edge accelerator")
    if args.precision and args.bits:
        raise UserError("--precision and --bits: give one of them (--precision sets both bit-widths)")
    if args.precision:
        weight_bits = activation_bits = PRECISION_BITS[args.precision]
    elif args.bits:
        weight_bits, activation_bits = parse_bits(args.bits)
    else:
        # the edge's default is 8/8; a cloud GPU's is 16 bits (DESIGN: cloud16)
        supported = getattr(accelerator, "supported_bits", (8,))
        gpu = hasattr(accelerator, "kernel_table")
        weight_bits = activation_bits = 8 if 8 in supported and not gpu else 16
    supported = getattr(accelerator, "supported_bits", None)
    if hasattr(accelerator, "kernel_table") and supported and not {weight_bits, activation_bits} <= set(supported):
        raise UserError(f"--bits: {accelerator.name} computes at {', '.join(map(str, supported))} bits, not "
                        f"{weight_bits}/{activation_bits} (or give --precision fp32|fp16|int8)")
    kernels = graph.kernel_ops() if not args.topology and hasattr(accelerator, "kernel_table") else {}
    rows, total = accelerator.network_cost(layers, weight_bits, activation_bits, args.batch, **kernels)
    data = {"hardware": accelerator.name, "model": source, "weight_bits": weight_bits,
            "activation_bits": activation_bits, "batch": args.batch,
            "layers": [row.as_row() for row in rows],
            "total": {**total.as_row(), "energy_parts_j": total.energy_parts_j},
            "evidence": preset_evidence(accelerator)}
    if hasattr(accelerator, "with_mode"):
        data["mode"] = {"execution": accelerator.execution, "fusion": accelerator.fusion}
    table = [row.as_row() for row in rows]
    if args.format == "table":
        table.append({**total.as_row(), "name": "TOTAL"})
    mode = f" in {accelerator.mode_label()} mode" if hasattr(accelerator, "mode_label") else ""
    title = (f"{source} on {accelerator.name}{mode}: {weight_bits}-bit weights, {activation_bits}-bit activations, "
             f"batch {args.batch}; cycles at {getattr(accelerator, 'clock_hz', 0) / 1e6:g} MHz")
    emit(args.format, data, table, title=title, footer=f"evidence: {data['evidence']}")


def add_hardware(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hardware", help="list the hardware presets and what each was checked against",
                       description="Every built-in accelerator preset: its kind, name, supported bits, and its "
                       "evidence: the published rows it was fitted on with its error there, or 'assumed' with what "
                       "was assumed. GPU presets name their default mode (serving = a TensorRT engine, framework = "
                       "PyTorch's kernels) and what validates it.")
    _add_format(p)
    p.set_defaults(func=run_hardware)


def run_hardware(args: argparse.Namespace) -> None:
    from hardware_models.registry import PRESET_DIR, load_accelerator, preset_evidence, preset_names, read_yaml

    rows = []
    for name in preset_names():
        accelerator = load_accelerator(name)
        rows.append({"name": name, "kind": read_yaml(PRESET_DIR / f"{name}.yaml").get("kind"),
                     "product": getattr(accelerator, "name", name),
                     "supported_bits": list(getattr(accelerator, "supported_bits", ())),
                     "mode": accelerator.mode_label() if hasattr(accelerator, "mode_label") else None,
                     "evidence": preset_evidence(accelerator)})
    if args.format == "table":
        for row in rows:
            print(f"{row['name']} ({row['kind']}{', ' + row['mode'] if row['mode'] else ''}): {row['product']}")
            print(textwrap.fill(row["evidence"], width=110, initial_indent="    ", subsequent_indent="    "))
        return
    emit(args.format, rows, [{**r, "supported_bits": ",".join(map(str, r["supported_bits"]))} for r in rows])


def add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an experiment YAML: every method, sweeps, tables, plots, summary",
                       description="Validate EXPERIMENT.yaml, run every search method in every sweep cell and write "
                       "the results directory (results/<file stem>/ unless --out): config.resolved.yaml, plans.parquet "
                       "and plans.csv, pareto.csv, baselines.csv, timings.csv, summary.md and plots. Files are written "
                       "under temporary names and renamed, so a killed run never leaves half a file. See "
                       "experiments/README.md for every key, `autosplit schema` for the JSON Schema.",
                       epilog=UNITS_HELP)
    p.add_argument("experiment", metavar="EXPERIMENT.yaml", help="the experiment file")
    p.add_argument("--out", metavar="DIR", help="results directory (default: output.dir, else results/<file stem>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key, e.g. --set network.uplink=10Mbps --set search.budgets.optuna.trials=500 "
                   "(repeatable; the value is read as YAML)")
    p.add_argument("--dry-run", action="store_true", help="validate and print the work plan; run nothing, write nothing")
    p.add_argument("--storage", metavar="URL", help="Optuna storage: a journal file path or an RDB URL "
                   "(overrides the YAML's storage)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--force", action="store_true", help="overwrite an existing results directory")
    again.add_argument("--resume", action="store_true", help="continue an interrupted run in its results directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_format(p)
    p.set_defaults(func=run_run)


def run_run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from simulator.experiment.loading import load_experiment
    from simulator.experiment.runner import default_out_dir, run_experiment, work_plan

    loaded = load_experiment(args.experiment, args.overrides)
    out_dir = Path(args.out) if args.out else default_out_dir(loaded)
    if args.dry_run:
        plan = work_plan(loaded, out_dir, args.storage or loaded.config.storage)
        rows = [{"cell": c["cell"], "model": c["model"], "edge": c["edge"], "cloud": c["cloud"],
                 "uplink_bps": c["uplink_bps"], "rtt_s": c["rtt_s"], "link": c["link"],
                 "edge_memory_bytes": c["edge_memory_limit_bytes"], "max_accuracy_drop": c["max_accuracy_drop"]}
                for c in plan["cells"]]
        methods = ", ".join(m["method"] + (f" {m['budget']}" if m["budget"] else "") for m in plan["methods"])
        emit(args.format, plan, rows, title=f"{loaded.source}: {len(rows)} cell(s) x {len(plan['methods'])} "
             f"method(s) = {plan['runs']} runs -> {out_dir}" + (" (exists)" if plan["out_dir_exists"] else ""),
             footer="".join(f"note: cell {n['cell']}: {n['note']}\n" for n in plan["skipped"])
             + f"methods: {methods}\nseed {plan['seed']}; "
             + ("reproducible (trial budgets)" if plan["reproducible"] else "NOT reproducible (a seconds budget)")
             + "; dry run: nothing was run or written")
        return
    output = run_experiment(loaded, out_dir, force=args.force, resume=args.resume, storage=args.storage,
                            argv=list(sys.argv[1:]), show_progress=False if args.no_progress else None)
    import pandas as pd

    baselines = pd.read_csv(output.out_dir / "baselines.csv")
    rows = [{"cell": r["cell"], "method": r["method"], "latency_s": r["latency_s"], "accuracy": r["accuracy"],
             "edge_energy_j": r["edge_energy_j"], "feasible": r["feasible"]} for r in baselines.to_dict("records")]
    emit(args.format, {"out_dir": str(output.out_dir), "files": [p.name for p in output.files], "plans": rows}, rows,
         title=f"chosen plan per method (cell: see summary.md)",
         footer=f"results: {output.out_dir}/ (summary.md, baselines.csv, pareto.csv, plans.parquet, plots)")


def add_schema(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="the experiment YAML's JSON Schema",
                       description="Print the JSON Schema of experiment files (for editor completion), or with "
                       "--format table one row per key with its type, default and meaning.")
    p.add_argument("--format", choices=["json", "table", "csv"], default="json", help="json (default) or a key table")
    p.set_defaults(func=run_schema)


def run_schema(args: argparse.Namespace) -> None:
    from simulator.experiment.schema import json_schema, key_rows

    if args.format == "json":
        print(json.dumps(json_schema(), indent=1))
        return
    rows = key_rows()
    if args.format == "table":  # descriptions wrapped onto continuation rows: lines fit a terminal
        import textwrap

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


def _add_scenario_flags(p: argparse.ArgumentParser, required: bool = True) -> None:
    """`plan`'s scenario and method flags (also `export`'s, where they are optional: a --plan file replaces them)."""
    p.add_argument("--edge", required=required, help="edge accelerator: preset name, preset .yaml or SCALE-Sim .cfg")
    p.add_argument("--cloud", required=required, help="cloud accelerator: preset name or file (runs at 16 bits)")
    _add_gpu_mode(p, "--cloud-execution", "--cloud-fusion", "the cloud GPU's")
    p.add_argument("--uplink", required=required, help="uplink rate, e.g. 3Mbps (10^6 bit/s) or 3Mibps (2^20 bit/s)")
    p.add_argument("--rtt", default="0s", help="round-trip time, e.g. 40ms (default 0)")
    p.add_argument("--loss", type=float, default=0.0, help="packet loss probability on the uplink, 0..0.1 (default 0; "
                   "where the analytic TCP model agrees with the simulation)")
    p.add_argument("--link", choices=["tcp", "ideal"], default="tcp",
                   help="tcp: framing, slow start, RTT (default); ideal: bytes / rate, the paper's model")
    p.add_argument("--edge-memory", required=required, help="edge memory budget, e.g. 4MiB")
    p.add_argument("--memory-model", choices=["peak_live", "max_layer"], default="peak_live",
                   help="activation memory: peak_live (largest live set, default) or max_layer (the paper's)")
    p.add_argument("--max-accuracy-drop", type=float, required=required, help="accuracy bound, percentage points")
    p.add_argument("--accuracy-confidence", choices=["pessimistic", "expected"], default="pessimistic",
                   help="the end of the predicted accuracy's 80%% interval the bound applies to (default pessimistic)")
    p.add_argument("--method", required=required, help="cloud, edge-u2/u4/u6/u8, neurosurgeon, dads, qdmp, autosplit, "
                   "exact, optuna")
    p.add_argument("--edge-bits", help="bit-widths the edge may use, e.g. 2,4,6,8 (default: the preset's)")
    p.add_argument("--tier", choices=["naive", "calibrated", "reconstruction"], default="calibrated",
                   help="post-training quantization method tier for the accuracy proxy (default calibrated)")
    p.add_argument("--input-codec", choices=["raw", "jpeg"], default="raw", help="how cloud-only sends the image")
    p.add_argument("--activation-codec", choices=["raw", "entropy"], default="raw",
                   help="how a split sends activations")
    p.add_argument("--trials", type=int, help="optuna only: trial budget (reproducible with --seed)")
    p.add_argument("--seconds", help="optuna only: wall-clock budget, e.g. 20s")
    p.add_argument("--seed", type=int, default=0, help="random seed, 0..2^32-1 (default 0)")


def add_plan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="the best split plan of one method",
                       description="Split MODEL between an edge accelerator and a cloud one over a link, with one "
                       "search method, and print its plan: cut, per-layer bits, latency breakdown, accuracy, memory, "
                       "energy. Baselines report their own plan even when it breaks the bounds (feasible: false); "
                       "the searches report their lowest-latency plan within the bounds. " + UNITS_HELP)
    _add_model_argument(p)
    _add_scenario_flags(p)
    _add_format(p)
    p.set_defaults(func=run_plan)


# `plan` flags are the experiment's keys: they go through the same schema, and messages name the flag
PLAN_FLAGS = {"model": "MODEL", "edge": "--edge", "cloud": "--cloud", "network.uplink": "--uplink",
              "network.rtt": "--rtt", "network.loss": "--loss", "network.link": "--link",
              "constraints.edge_memory": "--edge-memory", "constraints.memory_model": "--memory-model",
              "constraints.max_accuracy_drop": "--max-accuracy-drop",
              "constraints.accuracy_confidence": "--accuracy-confidence", "bits.edge": "--edge-bits",
              "accuracy.tier": "--tier", "codecs.input": "--input-codec", "codecs.activation": "--activation-codec",
              "search.methods": "--method", "search.budgets": "--trials/--seconds", "seed": "--seed",
              "cloud_mode.execution": "--cloud-execution", "cloud_mode.fusion": "--cloud-fusion"}


def plan_experiment(args: argparse.Namespace):
    """The `plan` flags as a validated experiment config (the YAML keys' checks), or a UserError naming a flag."""
    from pydantic import ValidationError

    from simulator.experiment.loading import describe_error
    from simulator.experiment.schema import Experiment

    edge_bits = None
    if args.edge_bits is not None:
        try:
            edge_bits = [int(b) for b in args.edge_bits.split(",")]
        except ValueError:
            raise UserError(f"--edge-bits: expected a comma-separated list of integers, got {args.edge_bits!r}") from None
    budget = {k: v for k, v in (("trials", args.trials), ("seconds", args.seconds)) if v is not None}
    data = {"model": model_name(args), "edge": args.edge, "cloud": args.cloud,
            "network": {"uplink": args.uplink, "rtt": args.rtt, "loss": args.loss, "link": args.link},
            "constraints": {"edge_memory": args.edge_memory, "memory_model": args.memory_model,
                            "max_accuracy_drop": args.max_accuracy_drop,
                            "accuracy_confidence": args.accuracy_confidence},
            "accuracy": {"tier": args.tier, **_measured_accuracy_keys(args)}, "codecs": {"input": args.input_codec, "activation": args.activation_codec},
            "search": {"methods": [args.method], "budgets": {args.method: budget} if budget else {}},
            "seed": args.seed}
    if edge_bits is not None:
        data["bits"] = {"edge": edge_bits}
    if args.cloud_execution is not None or args.cloud_fusion is not None:
        data["cloud_mode"] = {k: v for k, v in (("execution", args.cloud_execution), ("fusion", args.cloud_fusion))
                              if v is not None}
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            line = describe_error(error, "\0").removeprefix("\0: ")
            key, _, message = line.partition(": ")
            flag = next((f for k, f in PLAN_FLAGS.items() if key == k or key.startswith((k + ".", k + "["))), key)
            if key.startswith("search.budgets.") and key.rsplit(".", 1)[-1] in ("trials", "seconds"):
                flag = "--" + key.rsplit(".", 1)[-1]
            line = f"plan {flag}: {message}"
            if line not in lines:
                lines.append(line)
        raise UserError("\n".join(lines)) from None


def _measured_accuracy_keys(args: argparse.Namespace) -> dict:
    """accuracy.data / calibration / granularity from the flags of a command that has them (`export`)."""
    keys = {"data": getattr(args, "data", None), "calibration": getattr(args, "calibration", None)}
    keys = {k: str(Path(v).resolve()) for k, v in keys.items() if v is not None}
    if keys and getattr(args, "granularity", None):
        keys["granularity"] = args.granularity
    return keys


# the core's field names in `plan`'s messages: the flags
_PLAN_CORE_FLAGS = {"edge_bits": "--edge-bits", "edge_memory": "--edge-memory", "max_accuracy_drop": "--max-accuracy-drop",
                    "memory_model": "--memory-model", "input_codec": "--input-codec",
                    "activation_codec": "--activation-codec", "uplink_bps": "--uplink", "rtt_s": "--rtt",
                    "loss_rate": "--loss", "protocol": "--link", "edge": "--edge", "network.loss": "--loss",
                    "network.preset": "--link", "cloud_mode": "--cloud-execution/--cloud-fusion"}


def run_plan(args: argparse.Namespace) -> None:
    from simulator.experiment.scenario import build_scenario, uniform_bits_missing
    from simulator.search import run_method

    config = plan_experiment(args)
    scenario = build_scenario(config, names=_PLAN_CORE_FLAGS)
    skipped = uniform_bits_missing(args.method, scenario)
    if skipped:
        raise UserError(f"--method {skipped.replace(' skipped:', ':')}")
    budget = config.search.budgets[args.method].as_dict() if args.method in config.search.budgets else {}
    result = run_method(args.method, scenario, budget=budget, seed=config.seed)
    best = result.best
    if best is None:
        data = {"method": args.method, "model": scenario.graph.name, "feasible": False,
                "message": "no plan meets the memory and accuracy bounds"}
        emit(args.format, data, [data])
        return
    data = {**best, "evaluations": result.evaluations, "search_s": result.elapsed_s}
    from hardware_models.registry import preset_evidence

    data["hardware_evidence"] = {"edge": preset_evidence(scenario.edge), "cloud": preset_evidence(scenario.cloud)}
    if hasattr(scenario.cloud, "with_mode"):
        data["cloud_mode"] = {"execution": scenario.cloud.execution, "fusion": scenario.cloud.fusion}
    if args.format != "table":
        emit(args.format, data, [{k: v for k, v in data.items() if k not in ("breakdown",)} | best["breakdown"]])
        return
    b = best["breakdown"]
    cut = "non-prefix (DAG min-cut)" if best["cut_index"] is None else best["cut_index"]
    print(f"{best['method']} on {best['model']}: cut {cut}, {len(best['edge_layers'])} edge layers, "
          f"{'feasible' if best['feasible'] else 'NOT feasible (breaks a bound)'}")
    print(f"  latency  {best['latency_s'] * 1e3:9.3f} ms = edge {b['edge_s'] * 1e3:.3f} + transfer "
          f"{b['transfer_s'] * 1e3:.3f} + cloud {b['cloud_s'] * 1e3:.3f} ms")
    print(f"  accuracy {best['accuracy_expected']:9.3f} %  (80% interval {best['accuracy_low']:.2f} .. "
          f"{best['accuracy_high']:.2f}; drop {best['accuracy_drop']:.3f} points at the {args.accuracy_confidence} end)")
    print(f"  memory   {best['edge_memory_bytes'] / 2**20:9.3f} MiB   energy {best['edge_energy_j'] * 1e3:.3f} mJ   "
          f"payload {best['payload_bytes']:.0f} B ({best['wire_bytes']:.0f} B on the wire)")
    if "cloud_mode" in data:
        print(f"  cloud    {scenario.cloud.name} in {scenario.cloud.mode_label()} mode")
    rows = [{"layer": n, "weight_bits": w, "activation_bits": a}
            for n, w, a in zip(best["edge_layers"], best["weight_bits"], best["activation_bits"])]
    if rows:
        print(format_table(rows))


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_models, add_inspect, add_layer_cost,
                                                                add_hardware]
COMMANDS += [add_run, add_schema]
COMMANDS += [add_plan]


def add_accuracy(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("accuracy", help="predicted (proxy) and measured accuracy of a bit assignment",
                       description="Predicted accuracy of MODEL with the given weight/activation bits (the proxy "
                       "g(sum_i s_i D_i(bits_i)) of simulator.accuracy) and, for an .onnx model with --data, the "
                       "accuracy measured with onnxruntime on a fake-quantized copy. Zoo models use distortions "
                       "from stated assumptions (He-initialised Gaussian weights, ReLU'd Gaussian activations) and "
                       "sensitivities calibrated on published PTQ results; an ONNX model with data uses its real "
                       "weights and activations and sensitivities fitted to single-layer measurements. "
                       "Accuracies in percent; 16/16 is the floating-point reference.")
    _add_model_argument(p)
    p.add_argument("--bits", default="8/8", metavar="W/A[,W/A...]",
                   help="one W/A pair for every layer (default 8/8), or a comma list with one pair per layer of "
                   "`autosplit inspect MODEL`, in its order; bits 1..8, or 16 for float; weight bits of layers "
                   "without weights are ignored")
    p.add_argument("--tier", default="calibrated", choices=["naive", "calibrated", "reconstruction"],
                   help="PTQ method tier: naive min-max, calibrated clipping (default), reconstruction "
                   "(AdaRound/BRECQ-like rounding optimisation)")
    p.add_argument("--granularity", default="per-channel", choices=["per-channel", "per-tensor"],
                   help="weight quantization granularity (activations are always per tensor)")
    p.add_argument("--data", metavar="FILE.npz", help="labelled data (x: model-ready float32 inputs, batch first; "
                   "y: integer labels) to measure an .onnx model on")
    p.add_argument("--calibration", metavar="FILE.npz", help="inputs that fix activation ranges (default: the "
                   "first 128 samples of --data)")
    p.add_argument("--fp-accuracy", type=_number(0.0, 100.0, low_open=True, what="a percentage"), metavar="PCT",
                   help="float accuracy of an .onnx model given without --data (percent)")
    _add_format(p)
    p.set_defaults(func=run_accuracy)


def run_accuracy(args: argparse.Namespace) -> None:
    from simulator.accuracy.assess import assess

    name = model_name(args)
    onnx = name.endswith(".onnx")
    if args.fp_accuracy is not None and not onnx:
        raise UserError(f"--fp-accuracy: {name} is a zoo model, whose float accuracy is torchvision's; the flag is "
                        "for an .onnx model without --data")
    if args.calibration and not args.data:
        raise UserError("--calibration: calibration inputs are for measuring; give --data FILE.npz with an .onnx model")
    if args.fp_accuracy is not None and args.data:
        raise UserError("--fp-accuracy: with --data the float accuracy is measured; give one of them")
    pairs = [parse_bits(part.strip()) for part in args.bits.split(",") if part.strip()]
    if not pairs:
        raise UserError("--bits: give W/A pairs such as 8/8 or 4/8,8/8,...")
    data = assess(name, pairs, args.tier, args.granularity, args.data, args.calibration, args.fp_accuracy)
    emit(args.format, data, [{k: v for k, v in data.items() if not isinstance(v, list)}])


COMMANDS += [add_accuracy]


def add_netsim(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("netsim", help="transfer-time distribution of one upload (SimPy, segment level)",
                       description="Simulates uploading --bytes over the uplink --runs times at TCP segment level "
                       "(a persistent connection unless --new-connection; slow start from 10 segments; loss "
                       "with retransmission) and prints the distribution, beside the analytic model the search "
                       "uses. --link ideal is the paper's bytes / rate (no framing, no RTT). With --trace each "
                       "run starts at a random point of the bandwidth trace.", epilog=UNITS_HELP)
    p.add_argument("--uplink", help="uplink rate, e.g. 3Mbps (10^6 bit/s) or 3Mibps (the paper's 2^20 bit/s)")
    p.add_argument("--preset", help="a network preset (ble, 3g, lte, 5g, wifi, paper-3mbps, ...) or a .yaml file; "
                   "other options override its values")
    p.add_argument("--rtt", help="round-trip time, e.g. 40ms (default 0, or the preset's)")
    p.add_argument("--bytes", default="150528", help="payload size, e.g. 150528 or 147KiB (default 150528, "
                   "a 224x224x3 8-bit image)")
    p.add_argument("--runs", type=_whole(1, 1_000_000), default=1000, help="simulated uploads (default 1000)")
    p.add_argument("--trace", help="bandwidth trace file: rows of 'time_s, rate_bps' (replaces --uplink)")
    p.add_argument("--loss", type=_number(0.0, 1.0, high_open=True, what="a probability"),
                   help="packet loss probability in [0, 1) (default 0, or the preset's); the analytic model "
                   "(model_s, what the search uses) holds up to 0.1")
    p.add_argument("--jitter", help="extra one-way delay per packet, uniform in [0, JITTER], e.g. 5ms")
    p.add_argument("--new-connection", action="store_true", help="open a new TCP connection per upload (+1 RTT)")
    p.add_argument("--link", choices=["tcp", "ideal"], help="protocol model (default tcp, or the preset's)")
    p.add_argument("--seed", type=_seed_type(), default=0, help="random seed, 0..2^32-1 (default 0)")
    _add_format(p)
    p.set_defaults(func=run_netsim)


_NETSIM_FLAGS = {"uplink_bps": "--uplink", "rtt_s": "--rtt", "loss_rate": "--loss", "jitter_s": "--jitter"}


def run_netsim(args: argparse.Namespace) -> None:
    import time

    import numpy as np

    from hardware_models.units import parse_bytes, parse_rate, parse_time
    from simulator.network import BandwidthTrace, Link, load_link, simulate_transfer_times_s

    from simulator.experiment.schema import MAX_ANALYTIC_LOSS, MAX_DURATION_S, MAX_RATE_BPS

    payload = parse_bytes(args.bytes, "--bytes")
    if not (0 <= payload <= MAX_SIMULATED_BYTES) or payload != int(payload):
        raise UserError(f"--bytes: expected a whole number of bytes in 0..{MAX_SIMULATED_BYTES:.0f} (what one "
                        f"simulated upload may hold), got {args.bytes!r}")
    fields: dict = {}
    if args.uplink is not None:
        fields["uplink_bps"] = _bounded(parse_rate(args.uplink, "--uplink"), "--uplink", args.uplink, 1.0,
                                        MAX_RATE_BPS, "a rate in bit/s")
    if args.rtt is not None:
        fields["rtt_s"] = _bounded(parse_time(args.rtt, "--rtt"), "--rtt", args.rtt, 0.0, MAX_DURATION_S,
                                   "a time in s")
    if args.loss is not None:
        fields["loss_rate"] = args.loss
    if args.jitter is not None:
        fields["jitter_s"] = _bounded(parse_time(args.jitter, "--jitter"), "--jitter", args.jitter, 0.0,
                                      MAX_DURATION_S, "a time in s")
    if args.new_connection:
        fields["new_connection"] = True
    if args.link is not None:
        fields["protocol"] = args.link
    if args.trace is not None:
        fields["trace"] = BandwidthTrace.from_file(args.trace)
        fields["uplink_bps"] = fields["trace"].mean_rate_bps
    try:
        if args.preset:
            link = load_link(args.preset, **fields)
        elif "uplink_bps" not in fields:
            raise UserError("netsim: give --uplink RATE (or --trace FILE or --preset NAME)")
        else:
            link = Link(**fields)
    except UserError as exc:
        message = str(exc)
        for field, flag in _NETSIM_FLAGS.items():
            message = message.replace(f"{field}:", f"{flag}:")
        raise UserError(message) from None
    started = time.perf_counter()
    times = simulate_transfer_times_s(link, int(payload), args.runs, seed=args.seed)
    elapsed = time.perf_counter() - started
    note = None
    if link.protocol == "tcp" and link.loss_rate > MAX_ANALYTIC_LOSS:
        note = (f"loss {link.loss_rate:g} > {MAX_ANALYTIC_LOSS:g}: beyond where the analytic model (model_s) agrees "
                "with the simulation; plan and run refuse it")
    data = {"payload_bytes": int(payload), "uplink_bps": link.uplink_bps, "rtt_s": link.rtt_s,
            "mean_s": float(times.mean()), "p50_s": float(np.percentile(times, 50)),
            "p95_s": float(np.percentile(times, 95)), "p99_s": float(np.percentile(times, 99)),
            "runs": args.runs, "min_s": float(times.min()), "max_s": float(times.max()),
            "model_s": float(link.transfer_time_s(payload)), "wire_bytes": float(link.wire_bytes(payload)),
            "link": link.protocol, "loss_rate": link.loss_rate, "new_connection": link.new_connection,
            "preset": args.preset, "trace": args.trace, "simulation_s": elapsed, "note": note}
    rows = [{k: data[k] for k in ("payload_bytes", "wire_bytes", "uplink_bps", "rtt_s", "loss_rate", "runs",
                                  "mean_s", "p50_s", "p95_s", "p99_s", "model_s")}]
    emit(args.format, data, rows, title=f"netsim: {link.protocol} link, {link.uplink_bps / 1e6:g} Mbit/s, "
         f"RTT {link.rtt_s * 1e3:g} ms, loss {link.loss_rate:g}; model_s = the analytic model's mean",
         footer=f"note: {note}" if note else None)


# a simulated upload holds its segments' state in arrays: bound what one run may allocate (~1.5 GB of payload)
MAX_SIMULATED_BYTES = 2**30 * 1.5


def _bounded(value: float, flag: str, text: str, low: float, high: float, what: str, low_open: bool = False) -> float:
    if not (value > low if low_open else value >= low) or not value <= high:
        raise UserError(f"{flag}: expected {what} {'>' if low_open else '>='} {low:g} and <= {high:g}, got {text!r}")
    return value


COMMANDS += [add_netsim]


def add_capacity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("capacity", help="fleet simulation: devices per GPU at a p99 SLO, GPUs needed, cost",
                       description="Simulate the fleet of EXPERIMENT.yaml's capacity: section (device groups with "
                       "their plans and frame rates, their uplinks, batching GPUs) and write the answer to the "
                       "capacity/ folder of the results directory: the largest fleet per GPU count meeting the p99 "
                       "SLO in every seed, the GPUs the given fleet needs, cost per million inferences, "
                       "percentiles and utilisations per simulated point, plots.", epilog=UNITS_HELP)
    p.add_argument("experiment", metavar="EXPERIMENT.yaml", help="an experiment file with a capacity: section")
    p.add_argument("--out", metavar="DIR", help="results directory (default: output.dir, else results/<file stem>); "
                   "the answer goes to DIR/capacity/")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key, e.g. --set capacity.seeds=5 (repeatable; the value is read as YAML)")
    p.add_argument("--force", action="store_true", help="overwrite existing capacity results")
    _add_format(p)
    p.set_defaults(func=run_capacity)


def run_capacity(args: argparse.Namespace) -> None:
    from pathlib import Path

    from simulator.experiment.capacity_run import default_out_dir, run_capacity as simulate_capacity
    from simulator.experiment.loading import load_experiment

    loaded = load_experiment(args.experiment, args.overrides)
    out_dir = Path(args.out) if args.out else default_out_dir(loaded)
    log = (lambda text: print(text, file=sys.stderr)) if args.format == "table" else None
    output = simulate_capacity(loaded, out_dir, force=args.force, log=log)
    data = output.data
    rows = [{"group": a["group"], "gpus": a["gpus"], "devices": a["devices"], "p99_s": a["p99_s"],
             "gpu_utilisation": a["gpu_utilisation"], "cost_per_million_usd": a["cost_per_million_usd"],
             "path": a["path"]} for a in data["max_devices"]]
    emit(args.format, data, rows, title=f"largest fleet meeting p99 <= {data['slo_p99_s'] * 1e3:g} ms in "
         + (f"every one of {len(data['seeds'])} seeds" if len(data["seeds"]) != 1 else "its one seed")
         + f" ({data['path']} path)",
         footer=f"results: {output.out_dir}/ (summary.md, points.csv, max_devices.csv, plots)")


COMMANDS += [add_capacity]


def add_worker(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="join an experiment's Optuna studies from another process or machine",
                       description="Add Optuna trials, with this worker's own seed, to the study of every sweep cell "
                       "of EXPERIMENT.yaml in a shared storage (the study a `autosplit run` with the same YAML and "
                       "storage uses), until each study holds the optuna budget's trials. Start `autosplit run` "
                       "and any number of workers, on any machines that reach the storage; the run writes the "
                       "results from every worker's trials. A URL's password is never printed (better: leave it "
                       "out of the URL and set PGPASSWORD or ~/.pgpass).")
    p.add_argument("experiment", metavar="EXPERIMENT.yaml", help="the experiment file (the same as the run's)")
    p.add_argument("--storage", metavar="URL", help="postgresql://user@host:5432/db, redis://host:6379/0, or a "
                   "journal file path on a shared file system (default: the YAML's storage)")
    p.add_argument("--seed", type=_seed_type(), help="this worker's sampler seed, 0..2^32-1 (default: a fresh "
                   "random seed, printed)")
    p.add_argument("--cell", type=_whole(0), action="append", metavar="K", help="only sweep cell K (repeatable; "
                   "default every cell, in order)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key, as for `autosplit run` (give the run's overrides too)")
    _add_format(p)
    p.set_defaults(func=run_worker)


def run_worker(args: argparse.Namespace) -> None:
    from simulator.experiment.loading import load_experiment
    from simulator.experiment.worker import join_studies, new_seed

    if args.seed is not None and args.seed < 0:
        raise UserError(f"worker --seed: expected a seed >= 0, got {args.seed}")
    loaded = load_experiment(args.experiment, args.overrides)
    seed = args.seed if args.seed is not None else new_seed()
    rows = join_studies(loaded, args.storage, seed=seed, cells=args.cell)
    emit(args.format, {"seed": seed, "cells": rows}, rows,
         columns=["cell", "study", "seed", "trials_run", "study_trials", "elapsed_s"],
         title=f"worker seed {seed}: {rows[0]['storage'] if rows else ''}")


COMMANDS += [add_worker]

# --- deployment: export a plan, run it over TCP (simulator.deploy) ---------------------------------------
_SCENARIO_REQUIRED = ("edge", "cloud", "uplink", "edge_memory", "max_accuracy_drop", "method")


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a plan as edge.onnx, cloud.onnx and plan.json",
                       description="Cut MODEL.onnx at a plan and write, to --out: edge.onnx (the model's input to "
                       "every crossing tensor; weights quantized at the plan's bits, every edge activation "
                       "fake-quantized as `autosplit accuracy --data` measures it, crossing tensors leaving as "
                       "uint8 codes, or float16 at 16 bits), cloud.onnx (the crossing tensors, through ONNX "
                       "DequantizeLinear, to the outputs, float32) and plan.json (the cut, each crossing tensor's "
                       "name, shape, bits, scale, zero point, and how a request packs into bytes: sub-byte codes "
                       "bit-packed into one stream). The plan is --plan FILE (`autosplit plan --format json` output, "
                       "or an experiment's .csv table with --method/--row), or --method with `plan`'s scenario "
                       "flags. Activation ranges come from --calibration, or the first 128 samples of --data, as "
                       "in `autosplit accuracy`. " + UNITS_HELP)
    _add_model_argument(p)
    p.add_argument("--plan", metavar="PLAN.json", help="the plan: `autosplit plan --format json` output, a JSON list "
                   "of plans, or an experiment table (.csv)")
    p.add_argument("--row", type=_whole(0), help="which plan of a table or list (0-based, after --method's filter)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for edge.onnx, cloud.onnx, plan.json")
    p.add_argument("--force", action="store_true", help="overwrite an exported split already in --out")
    p.add_argument("--data", metavar="FILE.npz", help="labelled data whose first 128 inputs fix activation ranges "
                   "(when --calibration is not given)")
    p.add_argument("--calibration", metavar="FILE.npz", help="inputs that fix activation ranges")
    p.add_argument("--granularity", default="per-channel", choices=["per-channel", "per-tensor"],
                   help="weight quantization granularity (default per-channel)")
    before = {a.dest for a in p._actions}
    _add_scenario_flags(p, required=False)
    p.set_defaults(scenario_defaults={a.dest: a.default for a in p._actions if a.dest not in before})
    _add_format(p)
    p.set_defaults(func=run_export)


def _plan_from_flags(args: argparse.Namespace) -> dict:
    """The best plan of --method for `plan`'s scenario flags (what `autosplit plan --format json` prints)."""
    from simulator.experiment.scenario import build_scenario, uniform_bits_missing
    from simulator.search import run_method

    missing = [f"--{k.replace('_', '-')}" for k in _SCENARIO_REQUIRED if getattr(args, k) is None]
    if missing:
        raise UserError(f"export: give --plan PLAN.json, or --method with the scenario flags (missing: "
                        f"{', '.join(missing)})")
    if args.data is None:
        raise UserError("export --method: give --data FILE.npz: the search needs the model's accuracy, measured")
    config = plan_experiment(args)
    scenario = build_scenario(config, names=_PLAN_CORE_FLAGS)
    skipped = uniform_bits_missing(args.method, scenario)
    if skipped:
        raise UserError(f"--method {skipped.replace(' skipped:', ':')}")
    budget = config.search.budgets[args.method].as_dict() if args.method in config.search.budgets else {}
    best = run_method(args.method, scenario, budget=budget, seed=config.seed).best
    if best is None:
        raise UserError(f"--method {args.method}: no plan meets the memory and accuracy bounds; nothing to export")
    return {**best, "activation_codec": args.activation_codec, "input_codec": args.input_codec}


def run_export(args: argparse.Namespace) -> None:
    from simulator.accuracy.measure import CALIBRATION_SAMPLES, load_npz
    from simulator.deploy import export_split, read_plan

    name = model_name(args)
    if not name.endswith(".onnx"):
        raise UserError(f"export: MODEL must be an .onnx file with weights, got {name!r}")
    if not Path(name).is_file():
        raise UserError(f"export: {name}: no such ONNX file")
    if args.calibration is None and args.data is None:
        raise UserError("export: give --calibration FILE.npz (or --data FILE.npz, whose first 128 inputs are used) "
                        "to fix the activation ranges")
    data_x = _data_flag(args.data)[0] if args.data else None
    if args.calibration:
        calibration_x, calibration_name = load_npz_inputs(args.calibration, "--calibration"), args.calibration
    else:
        calibration_x = data_x[:CALIBRATION_SAMPLES]
        calibration_name = f"{args.data} (first {CALIBRATION_SAMPLES})"
    if args.plan is not None:
        # the scenario flags make a plan; with a plan file they would be silently ignored
        unused = [name for name, default in args.scenario_defaults.items()
                  if name not in ("method", "tier") and getattr(args, name) != default]
        if unused:
            raise UserError(f"export --{unused[0].replace('_', '-')}: the scenario flags make a plan with --method; "
                            "with --plan FILE they are not used (give one or the other)")
        plan = read_plan(args.plan, method=args.method, row=args.row)
    else:
        if args.row is not None:
            raise UserError("--row: picks a plan of a --plan table; give --plan FILE")
        plan = _plan_from_flags(args)
    tier = "calibrated" if args.tier == "reconstruction" else args.tier
    result = export_split(name, plan, args.out, calibration_x, calibration_name, tier, args.granularity,
                          force=args.force)
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


def _data_flag(path: str):
    """(x, y) of --data, a UserError naming the flag."""
    from simulator.accuracy.measure import load_npz

    try:
        return load_npz(path)
    except UserError as exc:
        raise UserError(f"--data: {exc}") from None


def load_npz_inputs(path: str, flag: str):
    """The `x` array of an .npz (float32), a UserError naming the flag otherwise."""
    import numpy as np

    if not Path(path).is_file():
        raise UserError(f"{flag}: {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive.files:
                raise UserError(f"{flag}: {path}: the .npz has no 'x' array")
            return archive["x"].astype(np.float32)
    except (OSError, ValueError) as exc:
        raise UserError(f"{flag}: {path}: not a NumPy .npz file ({exc})") from None


def _port(text: str) -> int:
    return _whole(0, 65535)(text)


def add_serve_cloud(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve-cloud", help="serve an exported split's cloud part over TCP",
                       description="Run cloud.onnx of an exported split (--plan DIR, written by `autosplit "
                       "export`) as a TCP service: each connection states its plan (HELLO, checked against "
                       "plan.json), then sends requests of the plan's packed crossing tensors and gets the model's "
                       "outputs back. Every frame is checked against the plan (kind, plan digest, exact byte "
                       "count) before its body is read; a malformed frame or a client silent for --read-timeout "
                       "gets an ERROR frame and its connection closed, and the server keeps serving. Binds to "
                       "127.0.0.1 unless --host says otherwise. Runs until interrupted (Ctrl-C).")
    p.add_argument("--plan", required=True, metavar="DIR", help="folder written by `autosplit export`")
    p.add_argument("--port", required=True, type=_port, help="TCP port (0: any free port, printed)")
    p.add_argument("--host", default="127.0.0.1", help="IP address to listen on (default 127.0.0.1; 0.0.0.0 for all "
                   "interfaces)")
    p.add_argument("--read-timeout", default="30s", help="longest wait for a client's next frame, e.g. 30s "
                   "(default 30s)")
    p.set_defaults(func=run_serve_cloud)


def run_serve_cloud(args: argparse.Namespace) -> None:
    import ipaddress

    from simulator.deploy.runtime import serve_cloud

    if args.host != "localhost":
        try:
            ipaddress.ip_address(args.host)
        except ValueError:
            raise UserError(f"--host: expected an IP address to listen on (127.0.0.1, 0.0.0.0, ::) or localhost, "
                            f"got {args.host!r}") from None
    serve_cloud(args.plan, args.host, args.port, _seconds_flag(args.read_timeout, "--read-timeout"))


def _seconds_flag(text: str, flag: str) -> float:
    from hardware_models.units import parse_time

    value = parse_time(text, flag)
    if not (value > 0 and math.isfinite(value)) or value > 86400:
        raise UserError(f"{flag}: expected a time > 0 and at most a day, got {text!r}")
    return value


def add_run_edge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run-edge", help="run an exported split's edge part against serve-cloud",
                       description="Run edge.onnx of an exported split (--plan DIR) on every sample of --data, one "
                       "request each (batch 1): quantize and pack the crossing tensors, send them to serve-cloud at "
                       "--connect, receive the outputs. Prints per-request edge compute, bytes on the wire, "
                       "transfer (send call to the cloud's receipt of the last byte), cloud compute and "
                       "end-to-end percentiles, and the top-1 accuracy over the labels. Edge and cloud compute are "
                       "this machine's CPU times with onnxruntime, not the modelled accelerators. A dropped "
                       "connection is re-opened and the request sent again (--retries), then reported. " + UNITS_HELP)
    p.add_argument("--plan", required=True, metavar="DIR", help="folder written by `autosplit export`")
    p.add_argument("--connect", required=True, metavar="HOST:PORT", help="where serve-cloud listens")
    p.add_argument("--data", required=True, metavar="FILE.npz", help="labelled inputs (x, y) as for `accuracy`")
    p.add_argument("--rate", type=_number(0.0, 1e6, low_open=True, what="requests per second"), metavar="R",
                   help="start requests at R per second (default: each as soon as the last is answered)")
    p.add_argument("--limit", type=_whole(1), metavar="N", help="only the first N samples")
    p.add_argument("--timeout", default="30s", help="longest wait for an answer or a connection, e.g. 30s")
    p.add_argument("--retries", type=_whole(0, 100), default=2, help="re-connections per request (default 2)")
    p.add_argument("--uplink", help="uplink rate, e.g. 3Mbps: also print the simulator's transfer_time_s for the "
                   "request's bytes")
    p.add_argument("--rtt", default="0s", help="round-trip time for that prediction (default 0)")
    p.add_argument("--per-request", action="store_true", help="json: include every request's timings")
    _add_format(p)
    p.set_defaults(func=run_run_edge)


def run_run_edge(args: argparse.Namespace) -> None:
    from simulator.accuracy.measure import load_npz
    from simulator.deploy.runtime import run_edge

    host, sep, port_text = args.connect.rpartition(":")
    if not sep or not host:
        raise UserError(f"--connect: expected HOST:PORT, got {args.connect!r}")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise UserError(f"--connect: port {port_text!r} is not 1..65535")
    timeout_s = _seconds_flag(args.timeout, "--timeout")
    link = None
    if args.uplink is not None:
        from simulator.network import Link
        from hardware_models.units import parse_rate, parse_time

        uplink_bps, rtt_s = parse_rate(args.uplink, "--uplink"), parse_time(args.rtt, "--rtt")
        if not (0 < uplink_bps < math.inf) or not (0 <= rtt_s < math.inf):
            raise UserError(f"--uplink/--rtt: expected a rate > 0 and a time >= 0, got {args.uplink!r}, {args.rtt!r}")
        link = Link(uplink_bps=uplink_bps, rtt_s=rtt_s)
    x, y = _data_flag(args.data)
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    result = run_edge(args.plan, host.strip("[]"), port, x, y, args.rate, timeout_s, args.retries,
                      progress=sys.stderr.isatty() and len(x) > 50)
    if link is not None:
        result["predicted_transfer_s"] = float(link.transfer_time_s(result["frame_bytes"]))
    per_request = result.pop("per_request")
    result.pop("predicted_labels")
    if args.format == "json":
        if args.per_request:
            result["per_request"] = per_request
        emit("json", result, [])
        return
    rows = [{"stage": stage, **{k: (v * 1e3 if v is not None else None) for k, v in result[key].items()}}
            for stage, key in (("edge compute", "edge_s"), ("transfer", "transfer_s"), ("cloud compute", "cloud_s"),
                               ("end to end", "end_to_end_s"))]
    if args.format == "csv":
        emit("csv", result, rows)
        return
    print(f"{result['requests']} requests to {args.connect}: {result['payload_bytes']} payload bytes "
          f"({result['frame_bytes']} with the frame header) each, accuracy "
          f"{'n/a' if result['accuracy'] is None else format(result['accuracy'], '.2f') + ' %'}"
          + (f", {result['reconnects']} reconnection(s)" if result["reconnects"] else ""))
    if "predicted_transfer_s" in result:
        print(f"simulator's transfer_time_s for {result['frame_bytes']} bytes: "
              f"{result['predicted_transfer_s'] * 1e3:.3f} ms")
    print("milliseconds per request:")
    print(format_table(rows))


COMMANDS += [add_export, add_serve_cloud, add_run_edge]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="autosplit", description="Split DNN inference between an edge device and a cloud GPU.",
                     epilog=UNITS_HELP)
    parser.add_argument("--version", action="version", version=f"autosplit {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    return parser


def _refuse_empty_values(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """An empty value (`--topology ""`) is a mistake, not "not given"; say which flag has it."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in commands.choices[args.command]._actions:
        value = getattr(args, action.dest, None)
        if value == "" or (isinstance(value, list) and any(v == "" for v in value)):
            name = action.option_strings[0] if action.option_strings else (action.metavar or action.dest)
            raise UserError(f"{args.command} {name}: empty value; see --help for what it expects")


def main(argv: Sequence[str] | None = None) -> int:
    from simulator.runtime import keep_freed_memory

    keep_freed_memory()
    parser = build_parser()
    try:
        args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        _refuse_empty_values(parser, args)
        args.func(args)
    except UserError as exc:  # one line per problem, each starting with "error:"
        print("\n".join(f"error: {line}" for line in str(exc).splitlines() or [""]), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
