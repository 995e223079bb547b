"""`autosplit run EXPERIMENT.yaml`: every method in every sweep cell, written to a results directory."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hardware_models.units import UNITS_HELP
from simulator.cli._arguments import add_experiment_arguments, add_format_argument
from simulator.cli._output import emit


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run an experiment YAML: every method, sweeps, tables, plots, summary",
        description="Validate EXPERIMENT.yaml, run every search method in every sweep cell and write the results "
        "directory (results/<file stem>/ unless --out): config.resolved.yaml, plans.parquet and plans.csv, "
        "pareto.csv, baselines.csv, timings.csv, summary.md and plots. Files are written under temporary names and "
        "renamed, so a killed run never leaves half a file. See experiments/README.md for every key, "
        "`autosplit schema` for the JSON Schema.", epilog=UNITS_HELP)
    add_experiment_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="validate and print the work plan; run nothing, write nothing")
    parser.add_argument("--storage", metavar="URL", help="Optuna storage: a journal file path or an RDB URL "
                        "(overrides the YAML's storage)")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--force", action="store_true", help="overwrite an existing results directory")
    again.add_argument("--resume", action="store_true", help="continue an interrupted run in its results directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    # the schema and the runner load numpy, pandas, optuna and matplotlib: not for --help
    from simulator.experiment.loading import load_experiment
    from simulator.experiment.runner import run_experiment, work_plan
    from simulator.experiment.settings import default_out_dir

    loaded = load_experiment(args.experiment, args.overrides)
    out_dir = Path(args.out) if args.out else default_out_dir(loaded)
    if args.dry_run:
        plan = work_plan(loaded, out_dir, args.storage or loaded.config.storage)
        rows = [{"cell": c["cell"], "model": c["model"], "edge": c["edge"], "cloud": c["cloud"],
                 "uplink_bps": c["uplink_bps"], "rtt_s": c["rtt_s"], "link": c["link"],
                 "edge_memory_bytes": c["edge_memory_limit_bytes"], "max_accuracy_drop": c["max_accuracy_drop"]}
                for c in plan.cells]
        methods = ", ".join(m["method"] + (f" {m['budget']}" if m["budget"] else "") for m in plan.methods)
        emit(args.format, plan.to_json(), rows, title=f"{loaded.source}: {len(rows)} cell(s) x {len(plan.methods)} "
             f"method(s) = {plan.runs} runs -> {out_dir}" + (" (exists)" if plan.out_dir_exists else ""),
             footer="".join(f"note: cell {n['cell']}: {n['note']}\n" for n in plan.skipped)
             + f"methods: {methods}\nseed {plan.seed}; "
             + ("reproducible (trial budgets)" if plan.reproducible else "NOT reproducible (a seconds budget)")
             + "; dry run: nothing was run or written")
        return
    if args.no_progress:
        from simulator.accuracy.measure import show_progress  # loads numpy: not for --help

        show_progress(False)  # the measurements' bar too
    output = run_experiment(loaded, out_dir, force=args.force, resume=args.resume, storage=args.storage,
                            argv=list(sys.argv[1:]), show_progress=False if args.no_progress else None)
    baselines = output.baselines
    # the expected accuracy, and the end of its interval the bound judged (the low end by default)
    rows = [{"cell": r["cell"], "method": r["method"], "latency_s": r["latency_s"],
             "accuracy_expected": r.get("accuracy_expected", r["accuracy"]), "accuracy_at_bound": r["accuracy"],
             "edge_energy_j": r["edge_energy_j"], "feasible": r["feasible"]} for r in baselines.to_dict("records")]
    emit(args.format, {"out_dir": str(output.out_dir), "files": [p.name for p in output.files], "plans": rows}, rows,
         title="chosen plan per method (cell: see summary.md)",
         footer=f"results: {output.out_dir}/ (summary.md, baselines.csv, pareto.csv, plans.parquet, plots)")
