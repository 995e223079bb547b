"""What counting only the split layer's output (the Auto-Split paper's released code) does to the best split.

    python benchmarks/payload_counting.py [--model resnet50] [--bits 8]

Paper setup (eyeriss -> tpu_v1, ideal 3 Mibps link, 4 MiB `max_layer`), every layer at --bits: for every
prefix cut that fits memory, latency with the chain payload (the last edge layer's output only) and with every
crossing tensor (autosplit's), relative to cloud-only.
"""
from __future__ import annotations

import argparse

import numpy as np

from simulator.evaluate import Scenario, evaluate
from simulator.network.link import Link


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--bits", type=int, default=8)
    args = parser.parse_args()
    link = Link.ideal(3 * 2**20)
    s = Scenario.build(args.model, "eyeriss", "tpu_v1", link, edge_memory_bytes=4 * 2**20, memory_model="max_layer",
                       max_accuracy_drop=1.0, edge_bits=(1, 2, 4, 5, 6, 7, 8))
    t = s.tables
    L = t.layers
    index = int(np.flatnonzero(t.bits == args.bits)[0])
    cuts = np.arange(L + 1)
    plans = np.full((L + 1, L), index)
    ev = evaluate(t, plans, plans, cut=cuts)
    cloud = ev.latency_s[0]
    chain = np.array([t.input_payload_bytes] + [t.tensor_elements[t.inputs + k - 1] * args.bits / 8
                                                 for k in range(1, L + 1)])
    chain[-1] = 0.0
    chain_latency = ev.edge_s + np.asarray(link.transfer_time_s(np.maximum(chain, 1))) * (chain > 0) + ev.cloud_s
    fits = ev.edge_memory_bytes <= s.edge_memory_bytes
    k = int(np.argmin(np.where(fits, chain_latency, np.inf)))
    best = int(np.argmin(np.where(fits, ev.latency_s, np.inf)))
    print(f"{args.model}, every layer at {args.bits} bits, ideal 3 Mibps, 4 MiB:")
    print(f"  chain counting picks cut {k} (after {t.names[k - 1] if k else 'nothing'}): {chain[k]:,.0f} B, "
          f"{chain_latency[k] / cloud:.3f} x cloud-only")
    print(f"  that cut really sends {ev.payload_bytes[k]:,.0f} B: {ev.latency_s[k] / cloud:.3f} x cloud-only")
    print(f"  counting every crossing tensor, the best cut is {best}: {ev.latency_s[best] / cloud:.3f} x cloud-only")


if __name__ == "__main__":
    main()
