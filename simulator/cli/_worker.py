"""`autosplit worker EXPERIMENT.yaml`: add Optuna trials to an experiment's shared studies."""
from __future__ import annotations

import argparse

from simulator.cli._arguments import add_experiment_arguments, add_format_argument
from simulator.cli._output import emit
from simulator.cli._values import seed_number, whole


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker", help="join an experiment's Optuna studies from another process or machine",
        description="Add Optuna trials, with this worker's own seed, to the study of every sweep cell of "
        "EXPERIMENT.yaml in a shared storage (the study a `autosplit run` with the same YAML, --set overrides and "
        "storage uses), until each study holds the optuna budget's trials. Start `autosplit run` and any number of "
        "workers, on any machines that reach the storage; the run writes the results from every worker's trials. "
        "A URL's password is never printed (better: leave it out of the URL and set PGPASSWORD or ~/.pgpass).")
    add_experiment_arguments(parser, out=False)
    parser.add_argument("--storage", metavar="URL", help="postgresql://user@host:5432/db, redis://host:6379/0, or a "
                        "journal file path on a shared file system (default: the YAML's storage)")
    parser.add_argument("--seed", type=seed_number, help="this worker's sampler seed, 0..2^32-1 (default: a fresh "
                        "random seed, printed)")
    parser.add_argument("--cell", type=whole(0), action="append", metavar="K", help="only sweep cell K (repeatable; "
                        "default every cell, in order)")
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from simulator.experiment.loading import load_experiment  # loads the schema, numpy, pandas: not for --help
    from simulator.experiment.worker import join_studies, new_seed

    loaded = load_experiment(args.experiment, args.overrides)
    seed = args.seed if args.seed is not None else new_seed()
    rows = join_studies(loaded, args.storage, seed=seed, cells=args.cell)
    emit(args.format, {"seed": seed, "cells": rows}, rows,
         columns=["cell", "study", "seed", "trials_run", "study_trials", "elapsed_s"],
         title=f"worker seed {seed}: {rows[0]['storage'] if rows else ''}")
