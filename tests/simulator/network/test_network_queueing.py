"""The shared uplink against queueing theory: M/M/1 and M/D/1 waits, processor sharing, and sample paths.

SimPy at 200,000 customers x 3 seeds x 2 models would take about a minute here, so the SimPy uplink is held
to the exact Lindley recursion on the same sample path (20,000 customers, to 1e-9 s), and the vectorised
recursion carries the full 200,000-customer runs against the closed forms.
"""
import numpy as np
import pytest

from simulator.network import (
    BandwidthTrace,
    Link,
    UplinkTraffic,
    fifo_latencies_s,
    lindley_waits_s,
    md1_mean_wait_s,
    mm1_mean_wait_s,
    processor_sharing_mean_sojourn_s,
    simulate_shared_uplink,
    simulate_uploads_s,
)

LOAD = 0.7
MEAN_SERVICE_S = 1e-3
LINK = Link.ideal(8e6)  # 1 payload byte = 1 microsecond of service, no framing, no propagation


def poisson_customers(n, seed, service):
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(MEAN_SERVICE_S / LOAD, n))
    services = rng.exponential(MEAN_SERVICE_S, n) if service == "M" else np.full(n, MEAN_SERVICE_S)
    return arrivals, services


@pytest.mark.parametrize("service", ["M", "D"])
def test_simpy_fifo_uplink_follows_the_lindley_recursion_exactly(service):
    arrivals, services = poisson_customers(20_000, seed=11, service=service)
    traffic = UplinkTraffic(arrivals, np.zeros(arrivals.size, dtype=int), services * 1e6)
    simulated = simulate_uploads_s(LINK, traffic, "fifo")
    assert np.max(np.abs(simulated - fifo_latencies_s(LINK, traffic))) < 1e-9
    assert np.allclose(simulated - services, lindley_waits_s(arrivals, services), atol=1e-9)


@pytest.mark.parametrize("service,closed_form", [("M", mm1_mean_wait_s), ("D", md1_mean_wait_s)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_wait_matches_the_closed_form_within_3_percent(service, closed_form, seed):
    arrivals, services = poisson_customers(200_000, seed=seed, service=service)
    waits = lindley_waits_s(arrivals, services)
    expected = closed_form(LOAD / MEAN_SERVICE_S, MEAN_SERVICE_S)
    assert waits.mean() == pytest.approx(expected, rel=0.03)


def test_lindley_recursion_equals_the_step_by_step_definition():
    rng = np.random.default_rng(5)
    arrivals = np.cumsum(rng.exponential(1.0, 500))
    services = rng.exponential(0.9, 500)
    expected = np.zeros(500)
    for n in range(1, 500):
        expected[n] = max(0.0, expected[n - 1] + services[n - 1] - (arrivals[n] - arrivals[n - 1]))
    assert np.allclose(lindley_waits_s(arrivals, services), expected)


def test_fair_share_mean_sojourn_matches_processor_sharing():
    """M/M/1-PS: E[T] = E[S] / (1 - rho); at load 0.5 over 3 x 20,000 customers."""
    load, n = 0.5, 20_000
    sojourns = []
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        arrivals = np.cumsum(rng.exponential(MEAN_SERVICE_S / load, n))
        services = rng.exponential(MEAN_SERVICE_S, n)
        traffic = UplinkTraffic(arrivals, np.arange(n), services * 1e6)  # every upload its own flow
        sojourns.append(simulate_uploads_s(LINK, traffic, "fair").mean())
    expected = processor_sharing_mean_sojourn_s(load / MEAN_SERVICE_S, MEAN_SERVICE_S)
    assert np.mean(sojourns) == pytest.approx(expected, rel=0.03)


def test_fair_share_splits_the_rate_between_backlogged_devices():
    # a 1 MB upload from device 0 at t=0 and a 100 kB one from device 1 at t=0.1 s on 8 Mbit/s
    traffic = UplinkTraffic(np.array([0.0, 0.1]), np.array([0, 1]), np.array([1e6, 1e5]))
    fair = simulate_uploads_s(LINK, traffic, "fair")
    fifo = simulate_uploads_s(LINK, traffic, "fifo")
    assert fifo == pytest.approx([1.0, 1.0])           # the small one waits for the big one
    assert fair == pytest.approx([1.1, 0.2])           # both at 4 Mbit/s while both are backlogged


def test_a_device_alone_sees_serialisation_plus_half_the_rtt():
    link = Link(uplink_bps=10e6, rtt_s=0.04)
    traffic, latencies, summary = simulate_shared_uplink(link, devices=1, payload_bytes=50_000, interval_s=0.1,
                                                         duration_s=2.0, seed=0)
    assert np.allclose(latencies, float(link.wire_bytes(50_000)) * 8 / 10e6 + 0.02)
    assert summary.loc[0, "uploads"] == 20


@pytest.mark.parametrize("arrival", ["periodic", "poisson"])
def test_more_devices_behind_one_uplink_means_longer_tails(arrival):
    link = Link(uplink_bps=20e6, rtt_s=0.02)
    p99 = []
    for devices in (2, 8, 14):
        _, latencies, summary = simulate_shared_uplink(link, devices, 30_000, interval_s=0.2, duration_s=20.0,
                                                       arrival=arrival, seed=3)
        assert len(summary) == devices and summary["uploads"].sum() == latencies.size
        p99.append(np.percentile(latencies, 99))
    assert p99[0] < p99[1] < p99[2]


def test_fair_share_protects_a_light_device_from_a_heavy_one():
    link = Link(uplink_bps=10e6, rtt_s=0.0)
    times = np.arange(0.0, 10.0, 0.5)
    arrivals = np.concatenate([times, times + 0.01])
    owners = np.concatenate([np.zeros(times.size, int), np.ones(times.size, int)])
    sizes = np.concatenate([np.full(times.size, 400_000.0), np.full(times.size, 10_000.0)])
    order = np.argsort(arrivals, kind="stable")
    traffic = UplinkTraffic(arrivals[order], owners[order], sizes[order])
    light = traffic.devices == 1
    fifo = simulate_uploads_s(link, traffic, "fifo")
    fair = simulate_uploads_s(link, traffic, "fair")
    assert fair[light].mean() < fifo[light].mean() / 5


def test_shared_transmitter_follows_a_bandwidth_trace():
    trace = BandwidthTrace(np.array([0.0, 1.0]), np.array([1e6, 4e6]))
    link = Link.ideal(1.0, trace=trace)
    traffic = UplinkTraffic(np.array([0.5]), np.array([0]), np.array([250_000.0]))  # 2 Mbit
    for discipline in ("fifo", "fair"):
        # 0.5 Mbit in the first 0.5 s, the other 1.5 Mbit at 4 Mbit/s
        assert simulate_uploads_s(link, traffic, discipline)[0] == pytest.approx(0.5 + 0.375)


def test_loss_and_a_new_connection_lengthen_every_shared_upload_as_expected():
    link = Link(uplink_bps=10e6, rtt_s=0.04)
    traffic = UplinkTraffic(np.array([0.0, 1.0]), np.array([0, 1]), np.array([50_000.0, 50_000.0]))
    base = simulate_uploads_s(link, traffic)
    serialise = float(link.wire_bytes(50_000)) * 8 / 10e6
    assert simulate_uploads_s(link.replace(loss_rate=0.2), traffic) == pytest.approx(base + serialise * 0.25)
    assert simulate_uploads_s(link.replace(new_connection=True), traffic) == pytest.approx(base + 0.04)
    assert fifo_latencies_s(link.replace(loss_rate=0.2), traffic) == pytest.approx(base + serialise * 0.25)
