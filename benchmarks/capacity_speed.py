"""The capacity simulation's speed.

By phase (default): CPU seconds of `run_capacity` on a capacity example (experiments/capacity_resnet50_wifi.yaml),
split into the plans' search and GPU batch latencies (`build_fleet`), the fleet simulations (`evaluate_point`:
every seed of every point, traffic, queues and statistics; the issue-27 target is under 10 s) and the plots,
with the vectorised runs, the requests simulated and the answers (largest fleet per GPU count, GPUs needed).

Requests per second (`--throughput`): the vectorised recursions on 1,000 devices at 30 frames/s for 10
simulated minutes (18 million requests) and the SimPy reference on a smaller fleet (its per-event cost is the
point), with the same plan numbers (ResNet-50-like: 5 ms edge, 25 kB payload, batching GPUs with max batch 32
and 2 ms max wait).

    python benchmarks/capacity_speed.py [--example PATH]
    python benchmarks/capacity_speed.py --throughput [--devices 1000] [--fps 30] [--minutes 10] [--simpy-devices 50]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from simulator.capacity import DeviceGroup, Fleet, answers, traffic
from simulator.capacity.reference import simulate_simpy
from simulator.capacity.vectorised import simulate_vectorised
from simulator.network.link import Link

EXAMPLE = Path(__file__).resolve().parent.parent / "experiments" / "capacity_resnet50_wifi.yaml"


class Phases:
    """CPU seconds spent inside wrapped functions, by phase (outermost call only)."""

    def __init__(self) -> None:
        self.cpu_s: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.requests = 0
        self.runs = 0
        self._depth = 0

    def wrap(self, phase: str, function: Callable) -> Callable:
        def timed(*args, **kwargs):
            self._depth += 1
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.cpu_s[phase] = self.cpu_s.get(phase, 0.0) + time.process_time() - started
                self.calls[phase] = self.calls.get(phase, 0) + 1
        return timed


def by_phase(example: Path) -> None:
    from simulator.experiment import capacity_run
    from simulator.experiment.loading import load_experiment
    from simulator.report import capacity_plots

    phases = Phases()
    vectorised = answers.simulate_vectorised

    def counted(fleet, frames, duration_s):
        phases.requests += len(frames)
        phases.runs += 1
        return vectorised(fleet, frames, duration_s)

    answers.simulate_vectorised = counted
    answers.evaluate_point = phases.wrap("fleet simulation", answers.evaluate_point)
    capacity_run.evaluate_point = answers.evaluate_point
    capacity_run.build_fleet = phases.wrap("plans (search, GPU batch latencies)", capacity_run.build_fleet)
    for name in ("latency_plot", "utilisation_plot", "breakdown_plot"):
        setattr(capacity_plots, name, phases.wrap("plots", getattr(capacity_plots, name)))
    loaded = load_experiment(example)
    started = time.process_time()
    with tempfile.TemporaryDirectory() as out:
        data = capacity_run.run_capacity(loaded, Path(out)).data
    total = time.process_time() - started
    print(f"run_capacity({example.name}): {total:.1f} CPU-s (load average {os.getloadavg()[0]:.1f})")
    for phase, seconds in phases.cpu_s.items():
        print(f"  {phase:38s} {seconds:6.1f} CPU-s")
    print(f"  {'the rest (tables, JSON, summary)':38s} {total - sum(phases.cpu_s.values()):6.1f} CPU-s")
    print(f"  {len(data['points'])} points, {phases.runs} vectorised runs, {phases.requests:,} requests simulated")
    for row in data["max_devices"]:
        print(f"  max devices: {row['group']}, {row['gpus']} GPU(s): {row['devices']}")
    for row in data["fleet"]:
        print(f"  the fleet as given: {row['group']}, {row['devices']} devices: {row['gpus']} GPU(s)")


def fleet(devices: int, fps: float, gpus: int, sharing: str) -> Fleet:
    # batch latency of a ResNet-50-like suffix on one GPU: 0.53 ms at batch 1, +0.09 ms per extra request
    batch_latency_s = np.concatenate([[0.0], 0.00053 + 0.00009 * np.arange(32)])
    group = DeviceGroup("cameras", devices, edge_s=0.005, payload_bytes=25_000, batch_latency_s=batch_latency_s,
                        rate_per_s=fps, arrival="periodic", jitter_s=0.002, gpus=gpus)
    return Fleet((group,), Link(uplink_bps=20e6, rtt_s=0.01), sharing=sharing,
                 devices_per_uplink=1 if sharing == "per_device" else 5, max_wait_s=0.002)


def timed(run, the_fleet: Fleet, duration_s: float, seed: int = 0) -> tuple[int, float, float]:
    started = time.process_time()
    frames = traffic(the_fleet, duration_s, np.random.default_rng(seed))
    generated = time.process_time()
    result = run(the_fleet, frames, duration_s)
    finished = time.process_time()
    assert np.all(np.isfinite(result.done_s))
    return len(frames), generated - started, finished - generated


def throughput(args: argparse.Namespace) -> None:
    for sharing in ("per_device", "shared"):
        big = fleet(args.devices, args.fps, args.gpus, sharing)
        n, gen_s, sim_s = timed(simulate_vectorised, big, args.minutes * 60.0)
        total = gen_s + sim_s
        print(f"vectorised, {sharing:10s}: {args.devices} devices x {args.fps:g} fps x {args.minutes:g} min = "
              f"{n:,} requests in {total:.1f} CPU-s (arrivals {gen_s:.1f} s + queues {sim_s:.1f} s): "
              f"{n / total:,.0f} requests/s, {total / n * 1e6:.2f} us/request")
    small = fleet(args.simpy_devices, args.fps, 1, "per_device")
    n, gen_s, sim_s = timed(simulate_simpy, small, args.simpy_seconds)
    print(f"simpy,      per_device: {args.simpy_devices} devices x {args.fps:g} fps x {args.simpy_seconds:g} s = "
          f"{n:,} requests in {gen_s + sim_s:.1f} CPU-s: {n / (gen_s + sim_s):,.0f} requests/s, "
          f"{(gen_s + sim_s) / n * 1e6:.1f} us/request")
    n, gen_s, sim_s = timed(simulate_vectorised, small, args.simpy_seconds)
    print(f"vectorised, per_device, same small fleet: {n:,} requests in {gen_s + sim_s:.3f} CPU-s: "
          f"{n / (gen_s + sim_s):,.0f} requests/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, default=EXAMPLE)
    parser.add_argument("--throughput", action="store_true", help="requests per second of the two paths instead")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--simpy-devices", type=int, default=50)
    parser.add_argument("--simpy-seconds", type=float, default=20.0)
    args = parser.parse_args()
    if args.throughput:
        throughput(args)
    else:
        by_phase(args.example)


if __name__ == "__main__":
    main()
