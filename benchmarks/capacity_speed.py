"""Requests simulated per second by the capacity simulation's two paths.

Vectorised recursions: 1,000 devices at 30 frames/s for 10 simulated minutes (18 million requests, target:
under 60 s on one core). SimPy reference: a smaller fleet (its per-event cost is the point). Both with the
same plan numbers (ResNet-50-like: 5 ms edge, 25 kB payload over a per-device 20 Mbit/s link, batching
GPUs with max batch 32 and 2 ms max wait).

    python benchmarks/capacity_speed.py [--devices 1000] [--fps 30] [--minutes 10] [--simpy-devices 50]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from simulator.capacity import DeviceGroup, Fleet, traffic
from simulator.capacity.reference import simulate_simpy
from simulator.capacity.vectorised import simulate_vectorised
from simulator.network.link import Link


def fleet(devices: int, fps: float, gpus: int, sharing: str) -> Fleet:
    # batch latency of a ResNet-50-like suffix on one GPU: 0.53 ms at batch 1, +0.09 ms per extra request
    batch_latency_s = np.concatenate([[0.0], 0.00053 + 0.00009 * np.arange(32)])
    group = DeviceGroup("cameras", devices, edge_s=0.005, payload_bytes=25_000, batch_latency_s=batch_latency_s,
                        rate_per_s=fps, arrival="periodic", jitter_s=0.002, gpus=gpus)
    return Fleet((group,), Link(uplink_bps=20e6, rtt_s=0.01), sharing=sharing,
                 devices_per_uplink=1 if sharing == "per_device" else 5, max_wait_s=0.002)


def timed(run, the_fleet: Fleet, duration_s: float, seed: int = 0) -> tuple[int, float, float]:
    started = time.perf_counter()
    frames = traffic(the_fleet, duration_s, np.random.default_rng(seed))
    generated = time.perf_counter()
    result = run(the_fleet, frames, duration_s)
    finished = time.perf_counter()
    assert np.all(np.isfinite(result.done_s))
    return len(frames), generated - started, finished - generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--simpy-devices", type=int, default=50)
    parser.add_argument("--simpy-seconds", type=float, default=20.0)
    args = parser.parse_args()

    for sharing in ("per_device", "shared"):
        big = fleet(args.devices, args.fps, args.gpus, sharing)
        n, gen_s, sim_s = timed(simulate_vectorised, big, args.minutes * 60.0)
        total = gen_s + sim_s
        print(f"vectorised, {sharing:10s}: {args.devices} devices x {args.fps:g} fps x {args.minutes:g} min = "
              f"{n:,} requests in {total:.1f} s (arrivals {gen_s:.1f} s + queues {sim_s:.1f} s): "
              f"{n / total:,.0f} requests/s, {total / n * 1e6:.2f} us/request")
    small = fleet(args.simpy_devices, args.fps, 1, "per_device")
    n, gen_s, sim_s = timed(simulate_simpy, small, args.simpy_seconds)
    print(f"simpy,      per_device: {args.simpy_devices} devices x {args.fps:g} fps x {args.simpy_seconds:g} s = "
          f"{n:,} requests in {gen_s + sim_s:.1f} s: {n / (gen_s + sim_s):,.0f} requests/s, "
          f"{(gen_s + sim_s) / n * 1e6:.1f} us/request")
    n, gen_s, sim_s = timed(simulate_vectorised, small, args.simpy_seconds)
    print(f"vectorised, per_device, same small fleet: {n:,} requests in {gen_s + sim_s:.3f} s: "
          f"{n / (gen_s + sim_s):,.0f} requests/s")


if __name__ == "__main__":
    main()
