"""Queueing closed forms and the Lindley recursion: the oracles the shared uplink is checked against, and
a fast exact FIFO path for many customers.

Waits are times in the queue before service starts (seconds); loads are utilisations rho = lambda x E[S].
"""
from __future__ import annotations

import numpy as np


def _check_load(arrival_rate_per_s: float, mean_service_s: float) -> float:
    load = arrival_rate_per_s * mean_service_s
    if not 0 <= load < 1:
        raise ValueError(f"load: expected arrival rate x service time in [0, 1), got {load:g}")
    return load


def mm1_mean_wait_s(arrival_rate_per_s: float, mean_service_s: float) -> float:
    """M/M/1 mean wait in queue: rho / (mu - lambda)."""
    load = _check_load(arrival_rate_per_s, mean_service_s)
    return load * mean_service_s / (1.0 - load)


def md1_mean_wait_s(arrival_rate_per_s: float, service_s: float) -> float:
    """M/D/1 mean wait in queue: rho x S / (2 (1 - rho))."""
    load = _check_load(arrival_rate_per_s, service_s)
    return load * service_s / (2.0 * (1.0 - load))


def mg1_mean_wait_s(arrival_rate_per_s: float, mean_service_s: float, service_second_moment_s2: float) -> float:
    """M/G/1 mean wait in queue (Pollaczek-Khinchine): lambda E[S^2] / (2 (1 - rho))."""
    load = _check_load(arrival_rate_per_s, mean_service_s)
    return arrival_rate_per_s * service_second_moment_s2 / (2.0 * (1.0 - load))


def processor_sharing_mean_sojourn_s(arrival_rate_per_s: float, mean_service_s: float) -> float:
    """M/G/1 processor-sharing mean time in system: E[S] / (1 - rho), whatever the service distribution."""
    load = _check_load(arrival_rate_per_s, mean_service_s)
    return mean_service_s / (1.0 - load)


def lindley_waits_s(arrival_times_s: np.ndarray, service_times_s: np.ndarray) -> np.ndarray:
    """Exact FIFO single-server waits for customers arriving at sorted `arrival_times_s`.

    The Lindley recursion W[n+1] = max(0, W[n] + S[n] - A[n+1]) in closed form: with U the running sum of
    S[n] - A[n+1], W = U - running minimum of U (and of 0), one vectorised pass.
    """
    arrivals = np.asarray(arrival_times_s, dtype=float)
    services = np.asarray(service_times_s, dtype=float)
    if arrivals.shape != services.shape or arrivals.ndim != 1:
        raise ValueError("arrival_times_s and service_times_s must be 1-D arrays of the same length")
    if arrivals.size == 0:
        return arrivals.copy()
    if np.any(np.diff(arrivals) < 0):
        raise ValueError("arrival_times_s must be sorted")
    increments = services[:-1] - np.diff(arrivals)
    running = np.concatenate([[0.0], np.cumsum(increments)])
    return running - np.minimum(np.minimum.accumulate(running), 0.0)
