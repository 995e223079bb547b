"""Auto-Split's activation allocation: the paper's per-layer Lagrangian against one bit-width per plan.

The paper's setup (resnet50, eyeriss -> tpu_v1, 4 MiB counted with max_layer, raw payloads, edge bits
{1,2,4,5,6,7,8}, the paper's ideal link at 1/3/10/20 Mibps, at most 1 point of top-1 lost) with the zoo proxy,
at both ends of the accuracy interval the bound can apply to. Prints, per allocation: the chosen plan's
latency, its ratio to cloud-only, its cut, the bits of the tensors it sends, its drop, and the solutions listed.

    python benchmarks/autosplit_activations.py
"""
from __future__ import annotations

from simulator.evaluate import Scenario
from simulator.network.link import Link
from simulator.search.autosplit import AutoSplit
from simulator.search.baselines import CloudOnly


def main() -> None:
    print(f"{'uplink':>8} {'bound end':>11} {'allocation':>10} {'latency ms':>10} {'vs cloud':>8} {'cut':>4} "
          f"{'edge activation bits':>22} {'drop pt':>7} {'expected':>8} {'solutions':>9}")
    for mibps in (1, 3, 10, 20):
        for confidence in ("pessimistic", "expected"):
            scenario = Scenario.build("resnet50", "eyeriss", "tpu_v1", Link.ideal(mibps * 2**20),
                                      edge_memory_bytes=4 * 2**20, memory_model="max_layer", max_accuracy_drop=1.0,
                                      edge_bits=(1, 2, 4, 5, 6, 7, 8), accuracy_confidence=confidence)
            cloud = CloudOnly().run(scenario).best["latency_s"]
            for allocation in ("lagrangian", "uniform"):
                method = AutoSplit(allocation)
                result = method.run(scenario)
                best = result.best
                bits = ",".join(map(str, best["activation_bits"])) or "-"
                print(f"{mibps:>5}Mib {confidence:>11} {allocation:>10} {best['latency_s'] * 1e3:10.1f} "
                      f"{best['latency_s'] / cloud:8.3f} {best['cut_index']:>4} {bits[:22]:>22} "
                      f"{best['accuracy_drop']:7.2f} {best['accuracy_expected']:8.2f} {result.info['solutions']:>9}")


if __name__ == "__main__":
    main()
