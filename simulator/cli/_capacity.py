"""`autosplit capacity EXPERIMENT.yaml`: fleet simulation and the capacity answer."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hardware_models.units import UNITS_HELP
from simulator.cli._arguments import add_experiment_arguments, add_format_argument
from simulator.cli._output import emit


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "capacity", help="fleet simulation: devices per GPU at a p99 SLO, GPUs needed, cost",
        description="Simulate the fleet of EXPERIMENT.yaml's capacity: section (device groups with their plans and "
        "frame rates, their uplinks, batching GPUs) and write the answer to the capacity/ folder of the results "
        "directory: the largest fleet per GPU count meeting the p99 SLO in every seed, the GPUs the given fleet "
        "needs, cost per million inferences, percentiles and utilisations per simulated point, plots.",
        epilog=UNITS_HELP)
    add_experiment_arguments(parser)
    parser.add_argument("--force", action="store_true", help="overwrite existing capacity results")
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    # the schema and the fleet simulation load numpy, pandas, simpy and matplotlib: not for --help
    from simulator.experiment.capacity_run import run_capacity
    from simulator.experiment.loading import load_experiment
    from simulator.experiment.settings import default_out_dir

    loaded = load_experiment(args.experiment, args.overrides)
    out_dir = Path(args.out) if args.out else default_out_dir(loaded)
    log = (lambda text: print(text, file=sys.stderr)) if args.format == "table" else None
    output = run_capacity(loaded, out_dir, force=args.force, log=log)
    data = output.data
    rows = [{"group": a["group"], "gpus": a["gpus"], "devices": a["devices"], "p99_s": a["p99_s"],
             "gpu_utilisation": a["gpu_utilisation"], "cost_per_million_usd": a["cost_per_million_usd"],
             "path": a["path"]} for a in data["max_devices"]]
    emit(args.format, data, rows, title=f"largest fleet meeting p99 <= {data['slo_p99_s'] * 1e3:g} ms in "
         + (f"every one of {len(data['seeds'])} seeds" if len(data["seeds"]) != 1 else "its one seed")
         + f" ({data['path']} path)",
         footer=f"results: {output.out_dir}/ (summary.md, points.csv, max_devices.csv, plots)")
