"""Plan evaluations per second of the vectorised evaluator (target: >= 200,000/s for ResNet-50 on one core).

    python benchmarks/evaluate_speed.py [--plans 20000] [--model resnet50]

Random plans (every layer's weight and activation bits drawn from the edge's bits, a random prefix cut)
on the paper's setup (eyeriss edge, tpu_v1 cloud, 3 Mbps tcp link, 4 MiB); both memory models. Run it
with one thread (the script sets OMP/OPENBLAS threads to 1 before numpy loads).
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from simulator.evaluate import Scenario, evaluate  # noqa: E402
from simulator.freed_memory import keep_freed_memory  # noqa: E402
from simulator.network.link import Link  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=20000)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    keep_freed_memory()  # as the CLI does
    for memory_model in ("max_layer", "peak_live"):
        scenario = Scenario.build(args.model, "eyeriss", "tpu_v1", Link(3e6, rtt_s=0.04), edge_memory_bytes=4 * 2**20,
                                  memory_model=memory_model, max_accuracy_drop=1.0)
        start = time.perf_counter()
        tables = scenario.tables
        build_s = time.perf_counter() - start
        rng = np.random.default_rng(0)
        L = tables.layers
        w = rng.choice(tables.edge_bit_index, (args.plans, L))
        a = rng.choice(tables.edge_bit_index, (args.plans, L))
        cut = rng.integers(0, L + 1, args.plans)
        evaluate(tables, w[:100], a[:100], cut=cut[:100])  # derived tables, once
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            evaluate(tables, w, a, cut=cut)
            times.append(time.perf_counter() - start)
        best = min(times)
        print(f"{args.model} {memory_model:9s}: {args.plans / best:>10,.0f} plans/s (best of {args.repeats}, "
              f"{args.plans} plans a batch; median {args.plans / np.median(times):,.0f}/s); "
              f"cost tables built in {build_s:.2f} s")


if __name__ == "__main__":
    main()
