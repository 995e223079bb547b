"""Every method on the Auto-Split paper's setup, as a markdown table (the comparison of issue 7).

    python benchmarks/paper_comparison.py [--model resnet50] [--memory 4MiB] [--link tcp|ideal]
        [--input-codec raw|jpeg] [--activation-codec raw|entropy] [--optuna-seconds 60]

Setup: eyeriss edge (bits 1,2,4,5,6,7,8), tpu_v1 cloud at 16 bits, 3 Mbps uplink (tcp: 3e6 bit/s, 20 ms RTT,
persistent connection; ideal: 3 Mibps = 3 x 2^20 bit/s, bytes / rate, the paper's), `max_layer` memory, at
most 1 point top-1 drop. Latencies are also given relative to CLOUD16 (the paper's normalisation).
"""
from __future__ import annotations

import argparse

from hardware_models.units import parse_bytes
from simulator.evaluate import Scenario
from simulator.network.link import Link
from simulator.search import METHODS, run_method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--memory", default="4MiB")
    parser.add_argument("--link", choices=["tcp", "ideal"], default="tcp")
    parser.add_argument("--input-codec", default="raw")
    parser.add_argument("--activation-codec", default="raw")
    parser.add_argument("--optuna-seconds", type=float, default=60.0)
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    link = Link.ideal(3 * 2**20) if args.link == "ideal" else Link(3e6, rtt_s=0.02)
    scenario = Scenario.build(args.model, "eyeriss", "tpu_v1", link, edge_memory_bytes=parse_bytes(args.memory),
                              memory_model="max_layer", max_accuracy_drop=1.0, edge_bits=(1, 2, 4, 5, 6, 7, 8),
                              input_codec=args.input_codec, activation_codec=args.activation_codec)
    rows = []
    for name in args.methods.split(","):
        budget = {"seconds": args.optuna_seconds} if name == "optuna" else None
        result = run_method(name, scenario, budget=budget, seed=0)
        rows.append((name, result.best, result.elapsed_s))
    cloud = next(b for n, b, _ in rows if n == "cloud")["latency_s"]
    u8 = next((b for n, b, _ in rows if n == "edge-u8"), None)
    print(f"{args.model}, eyeriss -> tpu_v1, {args.link} link 3 Mbps, {args.memory} ({scenario.memory_model}), "
          f"codecs {args.input_codec}/{args.activation_codec}, <= 1 point drop\n")
    print("| method | cut | latency ms | / CLOUD16 | / U8 | edge ms | transfer ms | cloud ms | top-1 % | drop | "
          "memory MiB | energy mJ | payload B | feasible | search s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, best, elapsed in rows:
        if best is None:
            print(f"| {name} | - | no plan meets the bounds |")
            continue
        b = best["breakdown"]
        cut = "DAG" if best["cut_index"] is None else best["cut_index"]
        versus_u8 = f"{best['latency_s'] / u8['latency_s']:.3f}" if u8 else "-"
        print(f"| {name} | {cut} | {best['latency_s'] * 1e3:.1f} | {best['latency_s'] / cloud:.3f} | {versus_u8} | "
              f"{b['edge_s'] * 1e3:.1f} | {b['transfer_s'] * 1e3:.1f} | {b['cloud_s'] * 1e3:.1f} | "
              f"{best['accuracy']:.2f} | {best['accuracy_drop']:.2f} | {best['edge_memory_bytes'] / 2**20:.2f} | "
              f"{best['edge_energy_j'] * 1e3:.2f} | {best['payload_bytes']:.0f} | {best['feasible']} | {elapsed:.1f} |")


if __name__ == "__main__":
    main()
