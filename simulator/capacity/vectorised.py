"""The fleet as vectorised recursions: each device's edge accelerator and each uplink is a FIFO queue
(Lindley's recursion for all of them at once; a device's own link that is never busy when a frame is ready
reduces to the closed-form transfer time), each GPU a dynamic-batching queue (batch-formation arithmetic,
one step per batch). Requests are load-balanced over a group's GPUs round robin in order of arrival at the
cloud. The same sample path as `reference.simulate_simpy` for FIFO links; fair share needs SimPy.
"""
from __future__ import annotations

import numpy as np

from simulator.capacity.fleet import Fleet, Traffic
from simulator.capacity.queues import batch_schedule, segmented_lindley_waits_s
from simulator.capacity.records import FleetRun


def simulate_vectorised(fleet: Fleet, traffic: Traffic, duration_s: float) -> FleetRun:
    """Every request of `traffic` through edge, uplink and GPU; see the module docstring."""
    if fleet.sharing == "shared" and fleet.discipline != "fifo":
        raise ValueError("the vectorised path models FIFO links; fair share runs on the SimPy path")
    groups = fleet.groups
    g = traffic.group
    n = len(traffic)
    edge_of_group = np.array([x.edge_s for x in groups])
    ser_of_group = np.array([fleet.serialisation_s(x.payload_bytes) for x in groups])
    after_of_group = np.array([fleet.after_serialisation_s(x.payload_bytes) for x in groups])

    # edge: one FIFO per device; traffic is sorted by (device, time)
    edge_s = edge_of_group[g]
    edge_wait = segmented_lindley_waits_s(traffic.arrival_s, edge_s, traffic.device)
    edge_done = traffic.arrival_s + edge_wait + edge_s

    # uplink: one FIFO per link, in order of readiness on that link
    ser = ser_of_group[g]
    link = fleet.link_of_device(traffic.device)
    if fleet.sharing == "per_device":
        order = None  # a device's frames leave its edge in order: already sorted by (link, time)
        uplink_wait = segmented_lindley_waits_s(edge_done, ser, link)
    else:  # (links stay in order: `link` is sorted, so link[order] is link)
        order = _by_link_then_time(link, edge_done)
        uplink_wait = np.empty(n)
        uplink_wait[order] = segmented_lindley_waits_s(edge_done[order], ser[order] if len(groups) > 1 else ser,
                                                       link)
    sending = ser > 0
    if sending.all():
        uplink_s = ser + after_of_group[g]
    else:
        uplink_s = np.where(sending, ser + after_of_group[g], 0.0)
        uplink_wait = np.where(sending, uplink_wait, 0.0)
    at_cloud = edge_done + uplink_wait + uplink_s

    # GPUs: per group, round robin over its pool in order of arrival at the cloud
    gpu_wait = np.zeros(n)
    gpu_s = np.zeros(n)
    batch_size = np.zeros(n, dtype=np.int64)
    gpu_busy = np.zeros(len(groups))
    alone = len(groups) == 1 and bool(sending.all())  # one group, every request to the cloud
    for index, group in enumerate(groups):
        if alone:
            members = _stable_argsort(at_cloud)
        else:
            members = np.flatnonzero((g == index) & sending)
            members = members[_stable_argsort(at_cloud[members])]
        if members.size == 0:
            continue
        for gpu in range(group.gpus):
            mine = members[gpu::group.gpus]
            if mine.size == 0:
                continue
            arrivals = at_cloud[mine]
            schedule = batch_schedule(arrivals, group.max_batch, fleet.max_wait_s, group.batch_latency_s)
            gpu_wait[mine] = np.repeat(schedule.start_s, schedule.size) - arrivals
            if not alone:
                gpu_s[mine] = np.repeat(schedule.service_s, schedule.size)
            batch_size[mine] = np.repeat(schedule.size, schedule.size)
            gpu_busy[index] += schedule.busy_s
    if alone:  # a batch's service is the group's latency at its size
        gpu_s = np.asarray(groups[0].batch_latency_s, dtype=float)[batch_size]
    done = at_cloud + gpu_wait + gpu_s
    links = 1 + int(np.count_nonzero(np.diff(link))) if n else 0  # traffic is sorted by device, so by link
    return FleetRun("vectorised", duration_s, traffic.arrival_s, g, traffic.device, edge_wait, edge_s, uplink_wait,
                    uplink_s, gpu_wait, gpu_s, batch_size, done, gpu_busy, float(ser.sum()), links)


def _by_link_then_time(link: np.ndarray, time_s: np.ndarray) -> np.ndarray:
    """`np.lexsort((time_s, link))` (by link, then time, ties in index order) in one sort of a float key:
    link x a power of two above every time, plus the time. Rounding can only merge two nearly equal times of
    one link, which the check below catches (then the lexsort runs)."""
    if link.size == 0:
        return np.zeros(0, dtype=np.int64)
    scale = 2.0 ** np.ceil(np.log2(max(float(time_s.max()), 0.0) + 1.0))
    order = np.argsort(link * scale + time_s, kind="stable")
    same_link = link[order[1:]] == link[order[:-1]]
    if time_s.min() >= 0 and np.all(np.diff(time_s[order])[same_link] >= 0):
        return order
    return np.lexsort((time_s, link))


def _stable_argsort(values: np.ndarray) -> np.ndarray:
    """`np.argsort(values, kind="stable")`: a quicksort's order is the same permutation when no two values are
    equal (checked), and costs half as much."""
    order = np.argsort(values)
    if np.all(np.diff(values[order]) > 0):
        return order
    return np.argsort(values, kind="stable")
