"""The vectorised recursions of the fleet's queues: FIFO stages by Lindley's recursion, one per device or per
shared link at once, and the dynamic-batching GPU queue by batch-formation arithmetic.

All times are in seconds. A FIFO stage's wait is exact (the same sample path as a SimPy FIFO resource); the
batching queue follows the same rule as `reference.BatchingServer`: a batch starts when the server is free
and either `max_batch` requests are waiting or the oldest has waited `max_wait_s`, and takes every waiting
request up to `max_batch` (a request arriving exactly at the start time is in the batch).
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np


def segmented_lindley_waits_s(arrival_times_s: np.ndarray, service_times_s: np.ndarray,
                              segment: np.ndarray) -> np.ndarray:
    """FIFO waits of many independent single-server queues at once.

    Customers are sorted by (`segment`, arrival time); each segment (a device's edge accelerator, a link)
    is its own queue, empty at its first customer. Lindley's recursion in closed form per segment: with U the
    running sum of S[n] - A[n+1] since the segment began, W = U - min(0, running minimum of U), the running
    minimum restarted at each segment by shifting later segments below earlier ones.
    """
    arrivals = np.asarray(arrival_times_s, dtype=float)
    services = np.asarray(service_times_s, dtype=float)
    segment = np.asarray(segment)
    n = arrivals.size
    if n == 0:
        return arrivals.copy()
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(segment[1:], segment[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    lengths = np.diff(first, append=n)
    increments = np.empty(n)
    np.subtract(arrivals[1:], arrivals[:-1], out=increments[1:])
    np.subtract(services[:-1], increments[1:], out=increments[1:])
    increments[first] = 0.0
    running = np.cumsum(increments)
    running -= np.repeat(running[first], lengths)  # U restarts at 0 at each segment's first customer
    span = float(running.max() - running.min()) + 1.0
    shift = np.repeat(-np.arange(first.size) * span, lengths)  # every later segment lies entirely below
    minimum = running + shift
    np.minimum.accumulate(minimum, out=minimum)
    minimum -= shift
    np.minimum(minimum, 0.0, out=minimum)
    running -= minimum
    return np.maximum(running, 0.0, out=running)  # rounding of the shift never goes below 0


@dataclass(frozen=True)
class BatchSchedule:
    """Batches of one batching server: start (s), size and service time (s) of each, in order; and for each
    request (in arrival order) the batch it rode in."""

    start_s: np.ndarray
    size: np.ndarray
    service_s: np.ndarray
    batch_of_request: np.ndarray

    @property
    def end_s(self) -> np.ndarray:
        return self.start_s + self.service_s

    @property
    def busy_s(self) -> float:
        return float(self.service_s.sum())


def batch_schedule(arrival_times_s: np.ndarray, max_batch: int, max_wait_s: float,
                   batch_latency_s: np.ndarray, service_factor: np.ndarray | None = None) -> BatchSchedule:
    """Dynamic batching of requests arriving at sorted `arrival_times_s` at one server.

    `batch_latency_s[b]` is the service time of a batch of b requests (index 0 unused); `service_factor`, one
    per batch in order, multiplies it (e.g. exponential draws for an M/M/1 check). A batch's start is
    max(server free, min(oldest + max_wait_s, arrival of the max_batch-th waiting request)); its size is the
    number of requests arrived by then, at most max_batch. One pass over the batches (not the requests):
    each costs a binary search and a few float operations.
    """
    arrivals = np.asarray(arrival_times_s, dtype=float)
    n = arrivals.size
    if max_batch < 1:
        raise ValueError(f"max_batch: expected at least 1, got {max_batch}")
    if max_wait_s < 0:
        raise ValueError(f"max_wait_s: expected a time >= 0 s, got {max_wait_s:g}")
    latency = np.asarray(batch_latency_s, dtype=float)
    if latency.size < max_batch + 1:
        raise ValueError(f"batch_latency_s: expected entries for batch sizes 1..{max_batch}")
    if n and np.any(np.diff(arrivals) < 0):
        raise ValueError("arrival_times_s must be sorted")
    times = arrivals.tolist()
    table = latency.tolist()
    factors = None if service_factor is None else np.asarray(service_factor, dtype=float).tolist()
    starts: list[float] = []
    sizes: list[int] = []
    services: list[float] = []
    free = -np.inf
    i = 0
    last = n - 1
    while i < n:
        oldest = times[i]
        ready = oldest + max_wait_s
        full = i + max_batch - 1
        if full <= last and times[full] < ready:
            ready = times[full]
        start = free if free > ready else ready
        stop = i + max_batch if i + max_batch < n else n
        j = bisect_right(times, start, i + 1, stop)
        size = j - i
        service = table[size] if factors is None else table[size] * factors[len(sizes)]
        starts.append(start)
        sizes.append(size)
        services.append(service)
        free = start + service
        i = j
    size_array = np.array(sizes, dtype=np.int64)
    return BatchSchedule(np.array(starts), size_array, np.array(services),
                         np.repeat(np.arange(size_array.size), size_array))
