"""Optuna against the exact front, per cell of every example experiment and at the paper's two points.

For each cell: the exact front's hypervolume (its real plans; reference: cloud-only latency and the
accuracy-drop bound), Optuna's without and with its warm start (and their fraction of exact's), the front
points Optuna found beyond its seeds and whether exact's front has a point no seed dominates (where it must
find one), Optuna's CPU and wall seconds, and the sampler used. Then the paper's two points (resnet50,
eyeriss -> tpu_v1, 4 MiB max_layer, 1 point: 1 Mbps pessimistic and 3 Mbps expected): the chosen plan's
latency against exact's. Targets (issue 23): >= 99% of exact's hypervolume without warm start, within 5%
of exact's latency, <= 10 CPU-s per cell at the default budget.

    PYTHONPATH=. python benchmarks/optuna_vs_exact.py [experiments/x.yaml ...] [--sampler nsga2] [--trials N]
"""
from __future__ import annotations

import argparse
import glob
import time

import numpy as np

from simulator.experiment.loading import load_experiment
from simulator.experiment.scenario import build_scenario
from simulator.search.exact import ExactFront
from simulator.search.optuna_search import DEFAULT_TRIALS, OptunaSearch, hypervolume_reference
from simulator.search.pareto import hypervolume_2d, nondominated

PAPER_POINTS = {"1 Mbps, pessimistic": ["network.uplink=1Mbps"],
                "3 Mbps, expected": ["network.uplink=3Mbps", "constraints.accuracy_confidence=expected"]}


def feasible_points(result) -> np.ndarray:
    plans = result.plans[result.plans["feasible"]]
    return plans[["latency_s", "accuracy_drop"]].to_numpy(float)


def compare(scenario, sampler: str, trials: int, seed: int, objectives: tuple[str, ...]) -> dict:
    """Exact against Optuna (with the cell's objectives) without and with its warm start on one scenario."""
    tables = scenario.tables
    reference = hypervolume_reference(tables)
    exact = ExactFront().run(scenario)
    exact_points = feasible_points(exact)
    exact_hv = hypervolume_2d(exact_points, reference)
    row = {"exact_hv": exact_hv, "exact_best_s": exact.best["latency_s"] if exact.best else None}
    for warm in (False, True):
        cpu, wall = time.process_time(), time.perf_counter()
        result = OptunaSearch(sampler=sampler, warm_start=warm, objectives=objectives).run(scenario, {"trials": trials}, seed)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        hv = hypervolume_2d(feasible_points(result), reference)
        tag = "warm" if warm else "cold"
        row.update({f"{tag}_hv": hv, f"{tag}_fraction": hv / exact_hv if exact_hv > 0 else 1.0,
                    f"{tag}_cpu_s": cpu, f"{tag}_wall_s": wall, f"{tag}_sampler": result.info["sampler"],
                    f"{tag}_best_s": result.best["latency_s"] if result.best else None})
        if warm:
            row["beyond_seeds"] = result.info.get("front_points_beyond_warm_start", 0)
            seeds = OptunaSearch().warm_start_plans(tables, seed)
            ev = seeds.evaluate(tables)
            seed_points = np.column_stack([ev.latency_s, ev.accuracy_drop])[ev.feasible]
            front = exact_points[nondominated(exact_points)] if len(exact_points) else exact_points
            undominated = [not (seed_points <= p).all(1).any() for p in front]
            row["exact_beyond_seeds"] = int(np.sum(undominated))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="*", help="experiment YAMLs (default: experiments/*.yaml)")
    parser.add_argument("--sampler", default="auto", help="nsga2, tpe, gp or auto (the default)")
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-paper", action="store_true", help="skip the paper's two points")
    args = parser.parse_args()
    header = (f"{'example':<28} {'cell':>4} {'sampler':>7} {'exact HV':>10} {'cold HV %':>9} {'warm HV %':>9} "
              f"{'beyond':>6} {'needed':>6} {'cold CPU s':>10} {'wall s':>7} {'warm CPU s':>10}")
    print(header)
    worst = 1.0
    for path in args.experiments or sorted(glob.glob("experiments/*.yaml")):
        loaded = load_experiment(path)
        for cell in loaded.cells:
            scenario = build_scenario(cell.config)
            row = compare(scenario, args.sampler, args.trials, args.seed, tuple(cell.config.search.optuna.objectives))
            worst = min(worst, row["cold_fraction"])
            print(f"{path.split('/')[-1]:<28} {cell.index:>4} {row['cold_sampler']:>7} {row['exact_hv']:>10.4g} "
                  f"{100 * row['cold_fraction']:>9.2f} {100 * row['warm_fraction']:>9.2f} {row['beyond_seeds']:>6} "
                  f"{row['exact_beyond_seeds']:>6} {row['cold_cpu_s']:>10.2f} {row['cold_wall_s']:>7.2f} "
                  f"{row['warm_cpu_s']:>10.2f}", flush=True)
    print(f"worst cold fraction of exact's hypervolume: {100 * worst:.2f}%")
    if args.no_paper:
        return
    print(f"\npaper setup (experiments/paper_resnet50.yaml, one cell)\n{'point':<22} {'exact s':>8} {'optuna s':>9} "
          f"{'ratio':>6} {'cold CPU s':>10}")
    for point, overrides in PAPER_POINTS.items():
        loaded = load_experiment("experiments/paper_resnet50.yaml", overrides + ["sweep={}"])
        scenario = build_scenario(loaded.cells[0].config)
        row = compare(scenario, args.sampler, args.trials, args.seed, ("latency", "accuracy_drop"))
        print(f"{point:<22} {row['exact_best_s']:>8.4f} {row['cold_best_s']:>9.4f} "
              f"{row['cold_best_s'] / row['exact_best_s']:>6.3f} {row['cold_cpu_s']:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
