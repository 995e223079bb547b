"""The capacity simulation's queues against independent oracles: queueing closed forms (M/D/1, M/M/1),
Little's law from a time-averaged monitor, the network package's Lindley recursion, and the SimPy reference
(same sample path); the batching queue conserves requests, also when a batch fills exactly at its timeout."""
from __future__ import annotations

import numpy as np
import pytest
import simpy

from simulator.capacity import batch_schedule, segmented_lindley_waits_s
from simulator.capacity.reference import BatchingServer
from simulator.network.queueing import lindley_waits_s, md1_mean_wait_s, mm1_mean_wait_s

SEEDS = (0, 1, 2)
REQUESTS = 200_000
LOAD = 0.7
SERVICE_S = 0.002


def poisson_arrivals(count: int, rate_per_s: float, rng: np.random.Generator) -> np.ndarray:
    return np.cumsum(rng.exponential(1.0 / rate_per_s, size=count))


def simpy_batching(arrivals_s: np.ndarray, max_batch: int, max_wait_s: float, latency_s: np.ndarray,
                   factors: np.ndarray | None = None):
    """Run the SimPy BatchingServer on given arrival times; per request (start, service, size), the server."""
    env = simpy.Environment()
    start = np.full(arrivals_s.size, np.nan)
    service = np.full(arrivals_s.size, np.nan)
    size = np.zeros(arrivals_s.size, dtype=int)
    done_calls = np.zeros(arrivals_s.size, dtype=int)
    draws = iter(factors) if factors is not None else None

    def finished(request, batch_start, batch_service, batch_size):
        start[request], service[request], size[request] = batch_start, batch_service, batch_size
        done_calls[request] += 1

    server = BatchingServer(env, max_batch, max_wait_s, latency_s, finished,
                            service_factor=(lambda: next(draws)) if draws is not None else None)

    def source():
        for index, time_s in enumerate(arrivals_s.tolist()):
            if time_s > env.now:
                yield env.timeout(time_s - env.now)
            server.put(index)

    env.process(source())
    env.run()
    return start, service, size, done_calls, server, env.now


@pytest.mark.parametrize("seed", SEEDS)
def test_batching_off_with_deterministic_service_reproduces_md1_mean_wait(seed):
    rng = np.random.default_rng(seed)
    rate = LOAD / SERVICE_S
    arrivals = poisson_arrivals(REQUESTS, rate, rng)
    schedule = batch_schedule(arrivals, 1, 0.0, np.array([0.0, SERVICE_S]))
    waits = schedule.start_s[schedule.batch_of_request] - arrivals
    expected = md1_mean_wait_s(rate, SERVICE_S)
    assert waits.mean() == pytest.approx(expected, rel=0.03)
    assert np.all(schedule.size == 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_batching_off_with_exponential_service_reproduces_mm1_mean_wait(seed):
    rng = np.random.default_rng(100 + seed)
    rate = LOAD / SERVICE_S
    arrivals = poisson_arrivals(REQUESTS, rate, rng)
    factors = rng.exponential(1.0, size=REQUESTS)  # one draw per batch = per request with batching off
    schedule = batch_schedule(arrivals, 1, 0.0, np.array([0.0, SERVICE_S]), service_factor=factors)
    waits = schedule.start_s[schedule.batch_of_request] - arrivals
    assert waits.mean() == pytest.approx(mm1_mean_wait_s(rate, SERVICE_S), rel=0.03)


def test_simpy_server_with_batching_off_follows_the_same_sample_path_as_the_recursion():
    rng = np.random.default_rng(7)
    arrivals = poisson_arrivals(5_000, LOAD / SERVICE_S, rng)
    factors = rng.exponential(1.0, size=arrivals.size)
    latency = np.array([0.0, SERVICE_S])
    start, service, size, _, _, _ = simpy_batching(arrivals, 1, 0.0, latency, factors)
    schedule = batch_schedule(arrivals, 1, 0.0, latency, service_factor=factors)
    np.testing.assert_allclose(start, schedule.start_s[schedule.batch_of_request], rtol=0, atol=1e-9)
    np.testing.assert_allclose(service, schedule.service_s[schedule.batch_of_request], rtol=1e-12)


@pytest.mark.parametrize("max_batch, max_wait_s, rate_per_s", [(8, 0.001, 3000.0), (4, 0.0, 1500.0),
                                                              (16, 0.005, 6000.0), (32, 0.002, 200.0)])
def test_simpy_batching_server_and_batch_formation_arithmetic_form_the_same_batches(max_batch, max_wait_s,
                                                                                  rate_per_s):
    rng = np.random.default_rng(max_batch)
    arrivals = poisson_arrivals(4_000, rate_per_s, rng)
    latency = np.concatenate([[0.0], 0.0008 + 0.00012 * np.arange(max_batch)])
    start, service, size, _, _, _ = simpy_batching(arrivals, max_batch, max_wait_s, latency)
    schedule = batch_schedule(arrivals, max_batch, max_wait_s, latency)
    batch = schedule.batch_of_request
    np.testing.assert_allclose(start, schedule.start_s[batch], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(size, schedule.size[batch])
    assert size.max() > 1  # batching really happened


def _check_conservation(arrivals, schedule, max_batch):
    assert schedule.size.sum() == arrivals.size                       # count in = count out
    assert np.all((schedule.size >= 1) & (schedule.size <= max_batch))
    np.testing.assert_array_equal(np.bincount(schedule.batch_of_request), schedule.size)
    assert np.all(np.diff(schedule.batch_of_request) >= 0)            # FIFO: batches take requests in order
    assert np.all(schedule.start_s[schedule.batch_of_request] >= arrivals)  # nobody rides before arriving
    assert np.all(schedule.start_s[1:] >= schedule.end_s[:-1] - 1e-12)  # one batch at a time


def test_batching_queue_conserves_requests_when_a_batch_fills_exactly_at_its_timeout():
    max_batch, max_wait = 4, 0.010
    # the 4th request arrives exactly when the oldest times out; then a lone request whose timeout coincides
    # with the next arrival; then a burst larger than a batch while the server is busy
    arrivals = np.array([0.0, 0.002, 0.005, 0.010, 0.100, 0.110, 0.110, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2])
    latency = np.array([0.0, 0.003, 0.004, 0.005, 0.006])
    schedule = batch_schedule(arrivals, max_batch, max_wait, latency)
    _check_conservation(arrivals, schedule, max_batch)
    # the recursion puts a request arriving at the start instant into the batch
    assert schedule.size[0] == 4 and schedule.start_s[0] == pytest.approx(0.010)
    assert schedule.start_s[1] == pytest.approx(0.110) and schedule.size[1] == 3
    start, _, size, done_calls, server, _ = simpy_batching(arrivals, max_batch, max_wait, latency)
    assert server.arrived == server.served == arrivals.size           # SimPy: whichever event wins the race
    assert np.all(done_calls == 1) and np.all(size <= max_batch) and np.all(start >= arrivals)


@pytest.mark.parametrize("max_batch, max_wait_s", [(1, 0.0), (8, 0.002), (64, 0.02)])
def test_batching_queue_conserves_requests_on_random_traffic(max_batch, max_wait_s):
    rng = np.random.default_rng(max_batch)
    # rounded arrival times make ties between fills and timeouts common
    arrivals = np.round(poisson_arrivals(20_000, 2500.0, rng), 3)
    latency = np.concatenate([[0.0], 0.0003 + 0.00004 * np.arange(max_batch)])
    _check_conservation(arrivals, batch_schedule(arrivals, max_batch, max_wait_s, latency), max_batch)


def test_littles_law_holds_with_the_queue_length_from_a_time_averaged_monitor():
    # a window in mid-run (the queue is not empty at its ends, so the law holds only approximately)
    rng = np.random.default_rng(11)
    arrivals = poisson_arrivals(40_000, 4000.0, rng)
    latency = np.concatenate([[0.0], 0.0005 + 0.0001 * np.arange(16)])
    window_s = (1.0, 9.0)
    env = simpy.Environment()
    start = np.full(arrivals.size, np.nan)
    areas = []

    def finished(request, batch_start, _service, _size):
        start[request] = batch_start

    server = BatchingServer(env, 16, 0.003, latency, finished)

    def source():
        for index, time_s in enumerate(arrivals.tolist()):
            if time_s > env.now:
                yield env.timeout(time_s - env.now)
            server.put(index)

    def monitor():
        for time_s in window_s:
            yield env.timeout(time_s - env.now)
            areas.append(server.queue_area_now())

    env.process(source())
    env.process(monitor())
    env.run()
    length_s = window_s[1] - window_s[0]
    mean_queue = (areas[1] - areas[0]) / length_s            # time average of the waiting line, from the monitor
    inside = (arrivals >= window_s[0]) & (arrivals < window_s[1])
    arrival_rate = inside.sum() / length_s
    mean_wait = float(np.mean(start[inside] - arrivals[inside]))  # per-request records
    assert mean_queue > 1.0                                  # a queue worth measuring
    assert mean_queue == pytest.approx(arrival_rate * mean_wait, rel=0.02)


def test_segmented_lindley_equals_the_single_queue_recursion_per_segment():
    rng = np.random.default_rng(3)
    arrivals, services, segments = [], [], []
    for segment in range(40):
        count = int(rng.integers(1, 300))
        arrivals.append(np.sort(rng.uniform(0, 10.0, count)))
        services.append(rng.exponential(0.03, count))
        segments.append(np.full(count, segment))
    waits = segmented_lindley_waits_s(np.concatenate(arrivals), np.concatenate(services), np.concatenate(segments))
    expected = np.concatenate([lindley_waits_s(a, s) for a, s in zip(arrivals, services)])
    np.testing.assert_allclose(waits, expected, rtol=0, atol=1e-9)
    assert waits.max() > 0


def test_batch_schedule_refuses_unsorted_arrivals_and_a_short_latency_table():
    with pytest.raises(ValueError):
        batch_schedule(np.array([1.0, 0.5]), 1, 0.0, np.array([0.0, 0.1]))
    with pytest.raises(ValueError):
        batch_schedule(np.array([0.0, 1.0]), 4, 0.0, np.array([0.0, 0.1]))
