"""Speed of the network models: simulated TCP segments per second (SimPy), analytic transfer times per
second (vectorised, what the search loop uses), shared-uplink uploads per second and Lindley customers per
second. Prints one line per figure; run with `python benchmarks/netsim_speed.py`."""
from __future__ import annotations

import time

import numpy as np

from simulator.network import (
    Link,
    lindley_waits_s,
    simulate_shared_uplink,
    simulate_transfer_times_s,
)


def best_of(repeats: int, run) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    payload = 150_528
    for name, link, runs in [
        ("no loss", Link(uplink_bps=3e6, rtt_s=0.04, jitter_s=1e-9), 100),  # tiny jitter: no shortcut, every run simulated
        ("loss 1%", Link(uplink_bps=3e6, rtt_s=0.04, loss_rate=0.01), 100),
        ("loss 1%, 20 Mbit/s, 1 MB", Link(uplink_bps=20e6, rtt_s=0.05, loss_rate=0.01), 20),
    ]:
        size = payload if runs == 100 else 1_000_000
        segments = int(link.segments(size)) * runs
        seconds = best_of(3, lambda link=link, size=size, runs=runs: simulate_transfer_times_s(link, size, runs, seed=0))
        print(f"SimPy TCP ({name}): {segments / seconds:,.0f} segments/s "
              f"({runs} uploads of {size:,} B in {seconds:.3f} s)")

    link = Link(uplink_bps=3e6, rtt_s=0.04, loss_rate=0.01)
    payloads = np.random.default_rng(0).uniform(1e3, 2e6, 100_000)
    seconds = best_of(3, lambda: link.transfer_time_s(payloads))
    print(f"analytic transfer_time_s (loss 1%): {payloads.size / seconds:,.0f} payloads/s (100,000 in {seconds:.3f} s)")
    lossless = Link(uplink_bps=3e6, rtt_s=0.04)
    seconds = best_of(3, lambda: lossless.transfer_time_s(payloads))
    print(f"analytic transfer_time_s (no loss): {payloads.size / seconds:,.0f} payloads/s")

    shared = Link(uplink_bps=20e6, rtt_s=0.02)
    for discipline in ("fifo", "fair"):
        start = time.perf_counter()
        traffic, latencies, _ = simulate_shared_uplink(shared, devices=20, payload_bytes=30_000, interval_s=0.3,
                                                        duration_s=200.0, arrival="poisson", discipline=discipline)
        seconds = time.perf_counter() - start
        print(f"SimPy shared uplink ({discipline}, 20 devices, load "
              f"{20 * float(shared.wire_bytes(30_000)) * 8 / 0.3 / 20e6:.2f}): "
              f"{latencies.size / seconds:,.0f} uploads/s ({latencies.size:,} in {seconds:.2f} s)")

    rng = np.random.default_rng(0)
    arrivals = np.cumsum(rng.exponential(1 / 0.7, 1_000_000))
    services = rng.exponential(1.0, arrivals.size)
    seconds = best_of(3, lambda: lindley_waits_s(arrivals, services))
    print(f"Lindley recursion (vectorised): {arrivals.size / seconds:,.0f} customers/s")


if __name__ == "__main__":
    main()
