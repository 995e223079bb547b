"""Errors of the network models against their oracles, as tables: the analytic TCP model with loss and with
jitter against the segment-level simulation's mean, and the shared uplink's mean waits against the M/M/1,
M/D/1 and processor-sharing closed forms. Run with `python benchmarks/network_accuracy.py` (a few minutes)."""
from __future__ import annotations

import numpy as np

from simulator.network import (
    Link,
    UplinkTraffic,
    lindley_waits_s,
    md1_mean_wait_s,
    mm1_mean_wait_s,
    processor_sharing_mean_sojourn_s,
    simulate_transfer_times_s,
    simulate_uploads_s,
)


def lossy_table(runs: int = 200) -> None:
    print(f"analytic expected time with loss vs simulated mean ({runs} uploads each)")
    print("rate_Mbps  rtt_ms  loss    payload_B  sim_mean_s  sim_stderr  model_s  error")
    errors = []
    for rate, rtt in [(1e6, 0.1), (3e6, 0.04), (10e6, 0.01), (20e6, 0.05), (50e6, 0.03)]:
        for loss in (0.001, 0.01, 0.03):
            link = Link(uplink_bps=rate, rtt_s=rtt, loss_rate=loss)
            for payload in (20_000, 150_528, 1_000_000):
                times = simulate_transfer_times_s(link, payload, runs, seed=1)
                model = float(link.transfer_time_s(payload))
                error = model / times.mean() - 1
                errors.append(error)
                print(f"{rate / 1e6:9g}  {rtt * 1e3:6g}  {loss:5g}  {payload:10,}  {times.mean():10.4f}  "
                      f"{times.std() / np.sqrt(runs):10.4f}  {model:7.4f}  {100 * error:+6.1f}%")
    print(f"max |error| {100 * max(map(abs, errors)):.1f}%, median |error| {100 * np.median(np.abs(errors)):.1f}%\n")


def jitter_table(runs: int = 200) -> None:
    print(f"analytic time with jitter vs simulated mean ({runs} uploads, 10 Mbit/s, RTT 20 ms)")
    print("jitter_ms  payload_B  sim_mean_s  model_s  error")
    for jitter in (0.002, 0.01, 0.03):
        link = Link(uplink_bps=10e6, rtt_s=0.02, jitter_s=jitter)
        for payload in (1000, 14_480, 100_000, 1_000_000):
            times = simulate_transfer_times_s(link, payload, runs, seed=1)
            model = float(link.transfer_time_s(payload))
            print(f"{jitter * 1e3:9g}  {payload:9,}  {times.mean():10.4f}  {model:7.4f}  {100 * (model / times.mean() - 1):+6.1f}%")
    print()


def queueing_table() -> None:
    load, mean_service_s, customers = 0.7, 1e-3, 200_000
    link = Link.ideal(8e6)
    print(f"FIFO mean wait, load {load}, {customers:,} customers (Lindley recursion), vs closed form")
    for name, closed_form in (("M/M/1", mm1_mean_wait_s), ("M/D/1", md1_mean_wait_s)):
        for seed in range(3):
            rng = np.random.default_rng(seed)
            arrivals = np.cumsum(rng.exponential(mean_service_s / load, customers))
            services = (rng.exponential(mean_service_s, customers) if name == "M/M/1"
                        else np.full(customers, mean_service_s))
            waits = lindley_waits_s(arrivals, services)
            expected = closed_form(load / mean_service_s, mean_service_s)
            line = f"{name} seed {seed}: {waits.mean() * 1e3:.4f} ms vs {expected * 1e3:.4f} ms ({100 * (waits.mean() / expected - 1):+.2f}%)"
            if seed == 0:  # the SimPy uplink on the first 20,000 customers of the same sample path
                n = 20_000
                traffic = UplinkTraffic(arrivals[:n], np.zeros(n, dtype=int), services[:n] * 1e6)
                simulated = simulate_uploads_s(link, traffic, "fifo") - services[:n]
                line += f"; SimPy vs Lindley on 20,000: max |diff| {np.max(np.abs(simulated - waits[:n])):.1e} s"
            print(line)
    sojourns = []
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        n = 20_000
        arrivals = np.cumsum(rng.exponential(mean_service_s / 0.5, n))
        services = rng.exponential(mean_service_s, n)
        sojourns.append(simulate_uploads_s(link, UplinkTraffic(arrivals, np.arange(n), services * 1e6), "fair").mean())
    expected = processor_sharing_mean_sojourn_s(0.5 / mean_service_s, mean_service_s)
    print("M/M/1-PS (fair share, SimPy), load 0.5, 3 x 20,000: "
          + ", ".join(f"{100 * (s / expected - 1):+.2f}%" for s in sojourns)
          + f"; pooled {100 * (np.mean(sojourns) / expected - 1):+.2f}%")


if __name__ == "__main__":
    queueing_table()
    print()
    jitter_table()
    lossy_table()
