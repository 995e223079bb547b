"""Capacity planning: fleets of edge devices sharing uplinks and batching cloud GPUs.

`Fleet` / `DeviceGroup` describe the system; `simulate` runs one seeded fleet on the vectorised recursions
(`vectorised.py`, fast) or the SimPy reference (`reference.py`); `answers` turns runs into percentiles,
utilisations, the largest fleet per GPU count at a p99 SLO, the GPUs a fleet needs and the cost per million
inferences; `gpu_batch_latency_s` is a GPU's service time per batch size for a plan's cloud part.
(`simulator.report.capacity_plots` draws the answers.)
"""
from simulator.capacity.answers import (
    CapacitySearch,
    Simulation,
    cost_per_million_usd,
    evaluate_point,
    gpus_needed,
    group_stats,
    max_devices,
    path_for,
    simulate,
)
from simulator.capacity.batch_latency import gpu_batch_latency_s
from simulator.capacity.fleet import DeviceGroup, Fleet, Traffic, traffic
from simulator.capacity.queues import BatchSchedule, batch_schedule, segmented_lindley_waits_s
from simulator.capacity.records import STAGES, FleetRun

__all__ = ["STAGES", "BatchSchedule", "CapacitySearch", "DeviceGroup", "Fleet", "FleetRun", "Simulation", "Traffic",
           "batch_schedule", "cost_per_million_usd", "evaluate_point", "gpu_batch_latency_s", "gpus_needed",
           "group_stats", "max_devices", "path_for", "segmented_lindley_waits_s", "simulate", "traffic"]
