"""Capacity answers from fleet simulations: latency percentiles, utilisations and SLO attainment per group;
the largest fleet per GPU count that meets a p99 SLO in every seed; the GPUs a fleet needs; the cost per
million inferences from a GPU-hour price.

Statistics count the requests that arrive after the warm-up and before the end of the simulated duration
(each followed to completion). A point meets the SLO when its p99 is at most the SLO in every seed: the
stated confidence is "all of `seeds` independent runs", and each point keeps its worst seed's p99. The
capacity search needs only each point's verdict: its points stop at the first seed that misses, or within
that seed as soon as the miss is certain (`certain_miss`); a point that meets the SLO runs every seed.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simulator.capacity.fleet import DeviceGroup, Fleet, Traffic, traffic
from simulator.capacity.records import STAGES, FleetRun
from simulator.capacity.reference import simulate_simpy
from simulator.capacity.vectorised import simulate_vectorised

PATHS = ("vectorised", "simpy", "auto")


@dataclass(frozen=True)
class Simulation:
    """How each point is simulated: duration and warm-up (s), seeds, path ("vectorised", "simpy" or "auto":
    vectorised unless the fleet needs SimPy, i.e. a fair-share uplink)."""

    duration_s: float = 60.0
    warmup_s: float = 5.0
    seeds: tuple[int, ...] = (0, 1, 2)
    path: str = "auto"

    def __post_init__(self) -> None:
        if not self.duration_s > self.warmup_s >= 0:
            raise ValueError(f"duration ({self.duration_s:g} s) must exceed the warm-up ({self.warmup_s:g} s)")
        if not self.seeds:
            raise ValueError("seeds: expected at least one")
        if self.path not in PATHS:
            raise ValueError(f"path: expected one of {', '.join(PATHS)}, got {self.path!r}")


def path_for(fleet: Fleet, path: str) -> str:
    """The path a fleet takes: the vectorised recursions unless it has a fair-share link (or SimPy is asked)."""
    if path == "auto":
        return "simpy" if fleet.sharing == "shared" and fleet.discipline == "fair" else "vectorised"
    if path == "vectorised" and fleet.sharing == "shared" and fleet.discipline == "fair":
        raise ValueError("path: the vectorised recursions model FIFO links; use simpy (or auto) for fair share")
    return path


def simulate(fleet: Fleet, duration_s: float, seed: int, path: str = "auto", frames: Traffic | None = None) -> FleetRun:
    """One seeded run of `fleet` for `duration_s` on the chosen path (`frames`: the seed's traffic, if drawn)."""
    if frames is None:
        frames = traffic(fleet, duration_s, np.random.default_rng(seed))
    run = simulate_simpy if path_for(fleet, path) == "simpy" else simulate_vectorised
    return run(fleet, frames, duration_s)


def group_stats(fleet: Fleet, run: FleetRun, warmup_s: float, slo_p99_s: float | None = None) -> list[dict]:
    """Per group: requests, throughput, p50/p95/p99/mean latency, mean time per stage, GPU and uplink
    utilisation over the measured window (after the warm-up); with an SLO, the fraction of requests within it."""
    window = run.duration_s - warmup_s
    measured = run.arrival_s >= warmup_s
    alone = len(fleet.groups) == 1  # every request is the one group's: no masks by group
    rows = []
    for index, group in enumerate(fleet.groups):
        mine = measured if alone else measured & (run.group == index)
        latency = run.done_s[mine] - run.arrival_s[mine]
        requests = int(np.count_nonzero(mine))
        row = {"group": group.name, "devices": group.devices, "gpus": group.gpus, "path": run.path,
               "requests": requests, "throughput_per_s": float(requests) / window}
        if latency.size:
            p50, p95, p99 = np.percentile(latency, [50, 95, 99])
            row.update(p50_s=float(p50), p95_s=float(p95), p99_s=float(p99), mean_s=float(latency.mean()))
            for stage in STAGES:
                row["mean_" + stage] = float(getattr(run, stage)[mine].mean())
            row["mean_batch"] = float(run.batch_size[mine].mean())
            if slo_p99_s is not None:
                row["slo_attainment"] = float((latency <= slo_p99_s).mean())  # fraction of requests within it
        else:
            row.update(p50_s=math.nan, p95_s=math.nan, p99_s=math.nan, mean_s=math.nan)
        # busy time inside the window: each request carries 1/size of its batch's overlap with the window
        everyone = slice(None) if alone else run.group == index
        end = run.done_s[everyone]
        overlap = np.clip(np.minimum(end, run.duration_s) - np.maximum(end - run.gpu_s[everyone], warmup_s), 0.0, None)
        busy = (overlap / np.maximum(run.batch_size[everyone], 1)).sum()
        row["gpu_utilisation"] = float(busy / (window * group.gpus))
        rows.append(row)
    serialised = np.array([fleet.serialisation_s(g.payload_bytes) for g in fleet.groups])
    if len(run) and run.links:
        # serialisation intervals on the links inside the window, over all links (FIFO: exact; fair share:
        # each upload's serialisation placed at the end of its stay, the same total)
        ser = serialised[run.group]
        start = run.arrival_s + run.edge_wait_s + run.edge_s + run.uplink_wait_s
        overlap = np.clip(np.minimum(start + ser, run.duration_s) - np.maximum(start, warmup_s), 0.0, None)
        for row in rows:
            row["uplink_utilisation"] = float(overlap.sum() / (window * run.links))
    return rows


def evaluate_point(fleet: Fleet, simulation: Simulation, slo_p99_s: float, *, stop_at_miss: bool = False,
                   decide_only: bool = False) -> dict:
    """One fleet over every seed: per group, the worst seed's percentiles (and the seeds' mean), utilisations
    and whether every seed met the SLO; the fleet meets it when every group does. With `stop_at_miss`, the
    seeds stop at the first that misses the SLO (the answer is known; `seeds` says how many ran). With
    `decide_only` (one group), an overloaded point may stop within its first seed, as soon as the miss is
    certain (`certain_miss`): its row then has no percentiles and `stopped_at_s` says when it stopped."""
    per_seed: list[list[dict]] = []
    stopped_at_s = None
    for seed in simulation.seeds:
        frames = traffic(fleet, simulation.duration_s, np.random.default_rng(seed))
        early = None
        if (decide_only and not per_seed and len(fleet.groups) == 1
                and path_for(fleet, simulation.path) == "vectorised"):
            early = certain_miss(fleet, frames, simulation, slo_p99_s)
        if early is not None:  # a row's keys, none of its numbers
            stopped_at_s = early.duration_s
            rows = [{key: value if key in ("group", "devices", "gpus", "path") else math.nan
                     for key, value in row.items()}
                    for row in group_stats(fleet, early, simulation.warmup_s, slo_p99_s)]
        else:
            rows = group_stats(fleet, simulate(fleet, simulation.duration_s, seed, simulation.path, frames),
                               simulation.warmup_s, slo_p99_s)
        per_seed.append(rows)
        if stopped_at_s is not None or (stop_at_miss and not all(
                _met(group, row, slo_p99_s) for group, row in zip(fleet.groups, rows))):
            break
    groups = []
    for index, group in enumerate(fleet.groups):
        seeds = pd.DataFrame([rows[index] for rows in per_seed])
        row = {key: seeds[key].iloc[0] for key in ("group", "devices", "gpus", "path")}
        for key in seeds.columns:
            if key in row or seeds[key].dtype == object:
                continue
            row[key] = float(seeds[key].mean())
        for key in ("p50_s", "p95_s", "p99_s"):
            row[key] = float(seeds[key].max())
            row[key.replace("_s", "_mean_s")] = float(seeds[key].mean())
        if "slo_attainment" in seeds:
            row["slo_attainment"] = float(seeds["slo_attainment"].min())  # the worst seed, like the percentiles
        row["seeds"] = len(per_seed)
        row["slo_met"] = bool(group.devices == 0 or (seeds["p99_s"] <= slo_p99_s).all())
        if stopped_at_s is not None:
            row["stopped_at_s"] = stopped_at_s
        groups.append(row)
    return {"groups": groups, "slo_met": all(g["slo_met"] for g in groups)}


def certain_miss(fleet: Fleet, frames: Traffic, simulation: Simulation, slo_p99_s: float) -> FleetRun | None:
    """For one group loading its edge, uplink or GPUs past their capacity: the run of the seed's first
    seconds (the warm-up plus an eighth of the measured window) when it proves the seed's p99 over the SLO,
    else None.

    The frames that arrive before the cut are simulated alone. A later frame cannot change an earlier frame's
    uplink departure when that frame left its edge before the cut (FIFO), nor its batch when the batch started
    before the cut; so those requests' latencies (or, for the first, the lower bound to the cloud) are the full
    run's. When more measured requests than 1 % of the full run's exceed the SLO, both order statistics that
    the p99 interpolates between do."""
    (group,) = fleet.groups
    window = simulation.duration_s - simulation.warmup_s
    if not _overloaded(fleet, group):
        return None
    cut = simulation.warmup_s + window / 8
    measured = int(np.count_nonzero(frames.arrival_s >= simulation.warmup_s))
    if measured == 0:
        return None
    needed = measured - math.floor(0.99 * (measured - 1)) + 1
    run = simulate_vectorised(fleet, _before(frames, cut), cut)
    edge_done = run.arrival_s + run.edge_wait_s + run.edge_s
    at_cloud = edge_done + run.uplink_wait_s + run.uplink_s
    safe = cut - 1e-6  # far above the rounding of the shorter run's sums
    over = slo_p99_s * (1 + 1e-9)
    late = (((edge_done < safe) & (at_cloud - run.arrival_s > over))
            | ((at_cloud + run.gpu_wait_s < safe) & (run.latency_s > over)))
    late &= run.arrival_s >= simulation.warmup_s
    return run if int(np.count_nonzero(late)) >= needed else None


def _overloaded(fleet: Fleet, group: DeviceGroup) -> bool:
    """Whether the group offers its edge, its (busiest) uplink or its GPU pool at full batches more work per
    second than they do."""
    per_link = min(fleet.devices_per_uplink, group.devices) if fleet.sharing == "shared" else 1
    full = group.batch_latency_s[group.max_batch]
    return bool(group.edge_s * group.rate_per_s > 1
                or fleet.serialisation_s(group.payload_bytes) * group.rate_per_s * per_link > 1
                or (group.payload_bytes > 0 and group.devices * group.rate_per_s * full / group.max_batch > group.gpus))


def _before(frames: Traffic, cut_s: float) -> Traffic:
    """The frames that arrive before `cut_s` (still sorted by device and time)."""
    early = frames.arrival_s < cut_s
    return Traffic(frames.arrival_s[early], frames.device[early], frames.group[early])


def _met(group: DeviceGroup, row: dict, slo_p99_s: float) -> bool:
    """Whether one seed's row of `group` meets the SLO (as `evaluate_point` decides it over the seeds)."""
    return bool(group.devices == 0 or row["p99_s"] <= slo_p99_s)


@dataclass
class CapacitySearch:
    """The largest number of devices of one group that `gpus` GPUs serve within the SLO, and every point
    simulated on the way (a doubling bracket, then bisection to `relative_tolerance`)."""

    group: str
    gpus: int
    devices: int
    points: list[dict] = field(default_factory=list)


def max_devices(fleet: Fleet, group: str, gpus: int, simulation: Simulation, slo_p99_s: float, *,
                start: int = 1, limit: int = 100_000, relative_tolerance: float = 0.02) -> CapacitySearch:
    """Largest N (0 if even one device misses) such that N devices of `group` alone on `gpus` GPUs meet the
    p99 SLO in every seed. Assumes that a fleet that misses the SLO also misses it with more devices. A point
    stops at its first seed that misses, or within it once the miss is certain (`evaluate_point`): only the
    answer is needed; except one device alone, whose p99 the answer reports."""
    points: list[dict] = []
    memo: dict[int, bool] = {}

    def ok(n: int) -> bool:
        if n not in memo:
            result = evaluate_point(fleet.only(group, devices=n, gpus=gpus), simulation, slo_p99_s,
                                    stop_at_miss=n > 1, decide_only=n > 1)
            points.append(result["groups"][0])
            memo[n] = result["slo_met"]
        return memo[n]

    low, high = 0, None
    n = min(max(1, start), limit)
    while True:
        if ok(n):
            low = n
            if n == limit:
                break
            n = min(2 * n, limit)
        else:
            high = n
            break
    if high is None:
        return CapacitySearch(group, gpus, low, points)
    if low == 0 and high > 1:
        if ok(1):
            low = 1
        else:
            return CapacitySearch(group, gpus, 0, points)
    while high - low > max(1, int(relative_tolerance * low)):
        middle = (low + high) // 2
        if ok(middle):
            low = middle
        else:
            high = middle
    return CapacitySearch(group, gpus, low, points)


def gpus_needed(fleet: Fleet, simulation: Simulation, slo_p99_s: float, max_gpus: int = 64) -> list[dict]:
    """Per group, the fewest GPUs in its pool with which the whole fleet (every group at its size, sharing the
    uplinks) meets the SLO: pools of the groups that miss it grow by one GPU at a time. A group whose miss is
    not the GPUs' doing (pool under half busy and GPU queueing under a tenth of the SLO: the edge or the
    uplink is too slow) or that still misses with `max_gpus` gets None."""
    counts = {g.name: 1 for g in fleet.groups}
    given_up: set[str] = set()
    while True:
        current = dataclasses.replace(fleet, groups=tuple(g.with_(gpus=counts[g.name]) for g in fleet.groups))
        result = evaluate_point(current, simulation, slo_p99_s)
        missing = [row for row in result["groups"] if not row["slo_met"] and row["group"] not in given_up]
        if not missing:
            break
        for row in missing:
            name = row["group"]
            gpu_limited = row.get("gpu_utilisation", 0.0) >= 0.5 or row.get("mean_gpu_wait_s", 0.0) >= 0.1 * slo_p99_s
            if counts[name] >= max_gpus or not gpu_limited:
                given_up.add(name)
            else:
                counts[name] += 1
    return [{"group": row["group"], "devices": row["devices"],
             "gpus": None if row["group"] in given_up else counts[row["group"]], "p99_s": row["p99_s"],
             "gpu_utilisation": row.get("gpu_utilisation"), "slo_met": row["slo_met"], "path": row["path"]}
            for row in result["groups"]]


def cost_per_million_usd(gpus: int, gpu_hour_usd: float, requests_per_s: float) -> float:
    """Dollars per million inferences when `gpus` GPUs at `gpu_hour_usd` each serve `requests_per_s`."""
    if requests_per_s <= 0:
        return math.inf
    return gpus * gpu_hour_usd / 3600.0 / requests_per_s * 1e6
