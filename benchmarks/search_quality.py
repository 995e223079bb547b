"""Search quality: the exact front's time and Optuna's hypervolume against it, over time, on one core.

Scenarios: the Auto-Split paper's setup (resnet50, eyeriss -> tpu_v1, 4 MiB counted with max_layer, raw
payloads, at most 1 point top-1 drop, edge bits {1,2,4,5,6,7,8}) with the realistic tcp link (3 Mbps,
20 ms RTT) and with the paper's ideal link (3 Mibps), and googlenet with 8 MiB on both links. Accuracy: the
zoo proxy (assumed distortions, sensitivities fitted on published PTQ results).

Hypervolume over (latency, accuracy drop), reference point (cloud-only latency, the accuracy-drop bound),
feasible plans only. The exact front is bracketed: `inner` is the hypervolume of its real plans, `outer`
that of its relaxation (see simulator/search/exact.py); the true exact front's lies in between. Optuna's
fraction is given against both (against `outer` it is a guaranteed lower bound).

    nice python benchmarks/search_quality.py [--seconds 60] [--only resnet50-tcp] [--sampler nsga2]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

from hardware_models.registry import load_accelerator  # noqa: E402
from simulator.accuracy import zoo_proxy  # noqa: E402
from simulator.evaluate import Scenario  # noqa: E402
from simulator.graph import load_model  # noqa: E402
from simulator.network.link import Link  # noqa: E402
from simulator.search.exact import ExactFront  # noqa: E402
from simulator.search.optuna_search import OptunaSearch  # noqa: E402

PAPER_BITS = (1, 2, 4, 5, 6, 7, 8)
SCENARIOS = {
    "resnet50-tcp": ("resnet50", 4 * 2**20, Link(uplink_bps=3e6, rtt_s=0.020)),
    "resnet50-ideal": ("resnet50", 4 * 2**20, Link.ideal(3 * 2**20)),
    "googlenet-tcp": ("googlenet", 8 * 2**20, Link(uplink_bps=3e6, rtt_s=0.020)),
    "googlenet-ideal": ("googlenet", 8 * 2**20, Link.ideal(3 * 2**20)),
}
CHECKPOINTS_S = (1, 2, 5, 10, 20, 30, 45, 60)


def scenario(model: str, memory_bytes: float, link: Link) -> Scenario:
    graph = load_model(model)
    return Scenario(graph, load_accelerator("eyeriss"), load_accelerator("tpu_v1"), link,
                    zoo_proxy(model, graph=graph), edge_memory_bytes=memory_bytes, memory_model="max_layer",
                    max_accuracy_drop=1.0, edge_bits=PAPER_BITS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="Optuna's time budget per scenario")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="run only these scenarios")
    parser.add_argument("--sampler", default="nsga2", choices=("nsga2", "tpe"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for name in args.only or SCENARIOS:
        model, memory, link = SCENARIOS[name]
        s = scenario(model, memory, link)
        start = time.perf_counter()
        _ = s.tables
        tables_s = time.perf_counter() - start
        exact = ExactFront().run(s)
        info = exact.info
        inner, outer = info["hypervolume_inner"], info["hypervolume_outer"]
        print(f"== {name}: {model}, {memory / 2**20:g} MiB max_layer, {link.protocol} "
              f"{link.uplink_bps:g} bit/s, rtt {link.rtt_s * 1e3:g} ms (cost tables {tables_s:.1f} s)")
        print(f"exact front: {exact.elapsed_s:.1f} s, epsilon {info['epsilon']:g} "
              f"(abandoned {info['epsilons_abandoned']}), {len(exact.front)} front plans, "
              f"{info['states_kept']} states; hypervolume inner {inner:.6f} outer {outer:.6f} "
              f"(gap {100 * (1 - inner / outer):.3f} %); lowest feasible latency "
              f"{exact.best['latency_s'] * 1e3:.2f} ms" if exact.best else "no feasible plan")
        optuna_result = OptunaSearch(sampler=args.sampler).run(s, budget={"seconds": args.seconds}, seed=args.seed)
        trace = optuna_result.info["hypervolume_trace"]
        print(f"optuna {args.sampler}: {optuna_result.info['trials']} trials in {optuna_result.elapsed_s:.1f} s; "
              f"lowest feasible latency {optuna_result.best['latency_s'] * 1e3:.2f} ms")
        print("  time_s  trials  hypervolume  of_exact_inner  of_exact_outer")
        for checkpoint in CHECKPOINTS_S:
            done = [row for row in trace if row[0] <= checkpoint]
            if not done or checkpoint > args.seconds:
                continue
            t, trials, hv = done[-1]
            print(f"  {checkpoint:6g}  {trials:6d}  {hv:11.6f}  {100 * hv / inner:13.2f}%  {100 * hv / outer:13.2f}%")
        reach = [row for row in trace if row[2] >= 0.98 * outer]
        print("  98% of the outer bound reached after "
              + (f"{reach[0][0]:.1f} s ({reach[0][1]} trials)" if reach else f"never within {args.seconds:g} s"))


if __name__ == "__main__":
    main()
