"""Fleets: the vectorised recursions follow the SimPy reference's sample path through edge, uplink and GPUs;
every request's stage times add up to its latency; the capacity answers behave as their definitions say."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.capacity import (
    STAGES,
    DeviceGroup,
    Fleet,
    Simulation,
    cost_per_million_usd,
    evaluate_point,
    gpus_needed,
    max_devices,
    path_for,
    simulate,
    traffic,
)
from simulator.capacity.reference import simulate_simpy
from simulator.capacity.vectorised import simulate_vectorised
from simulator.network.link import Link

LINK = Link(uplink_bps=20e6, rtt_s=0.01, loss_rate=0.001)


def latency_table(max_batch: int, first_s: float = 0.0005, per_extra_s: float = 0.0001) -> np.ndarray:
    return np.concatenate([[0.0], first_s + per_extra_s * np.arange(max_batch)])


def two_groups(sharing: str = "per_device", devices_per_uplink: int = 1, discipline: str = "fifo") -> Fleet:
    groups = (DeviceGroup("split", 24, edge_s=0.02, payload_bytes=25_000, batch_latency_s=latency_table(8),
                          rate_per_s=30.0, arrival="periodic", jitter_s=0.004, gpus=2),
              DeviceGroup("cloud", 15, edge_s=0.0, payload_bytes=16_000, batch_latency_s=latency_table(8, 0.0006),
                          rate_per_s=10.0, arrival="poisson", gpus=1),
              DeviceGroup("edge-only", 3, edge_s=0.03, payload_bytes=0.0, batch_latency_s=np.zeros(9),
                          rate_per_s=20.0))
    return Fleet(groups, LINK, sharing, devices_per_uplink, discipline, max_wait_s=0.003)


@pytest.mark.parametrize("sharing, per_uplink", [("per_device", 1), ("shared", 6)])
def test_vectorised_fleet_follows_the_simpy_reference_request_by_request(sharing, per_uplink):
    fleet = two_groups(sharing, per_uplink)
    frames = traffic(fleet, 4.0, np.random.default_rng(5))
    reference = simulate_simpy(fleet, frames, 4.0)
    fast = simulate_vectorised(fleet, frames, 4.0)
    for stage in STAGES + ("done_s",):
        np.testing.assert_allclose(getattr(fast, stage), getattr(reference, stage), rtol=0, atol=1e-9, err_msg=stage)
    np.testing.assert_array_equal(fast.batch_size, reference.batch_size)
    np.testing.assert_allclose(fast.gpu_busy_s, reference.gpu_busy_s, rtol=1e-12)
    # the edge at 20 ms x 30 fps queues and the shared links queue: the comparison covers real waits
    assert fast.edge_wait_s.max() > 0 and fast.gpu_wait_s.max() > 0
    if sharing == "shared":
        assert fast.uplink_wait_s.max() > 0


def test_every_request_records_each_stage_and_they_add_up_to_its_latency():
    fleet = two_groups("shared", 6)
    run = simulate(fleet, 5.0, seed=1)
    total = sum(getattr(run, stage) for stage in STAGES)
    np.testing.assert_allclose(total, run.latency_s, rtol=0, atol=1e-9)
    for stage in STAGES:
        assert np.all(getattr(run, stage) >= 0), stage
    edge_only = run.group == 2
    assert np.all(run.gpu_s[edge_only] == 0) and np.all(run.uplink_s[edge_only] == 0)
    assert np.all(run.edge_s[edge_only] == pytest.approx(0.03))


def test_fair_share_uplink_runs_on_the_simpy_path_and_the_recursions_refuse_it():
    fleet = two_groups("shared", 6, "fair")
    assert path_for(fleet, "auto") == "simpy"
    with pytest.raises(ValueError):
        path_for(fleet, "vectorised")
    run = simulate(fleet, 2.0, seed=0)
    assert run.path == "simpy" and np.all(np.isfinite(run.done_s))
    assert path_for(two_groups("shared", 6), "auto") == "vectorised"


def test_periodic_devices_send_at_their_rate_and_poisson_devices_on_average():
    fleet = two_groups()
    frames = traffic(fleet, 20.0, np.random.default_rng(2))
    per_device = np.bincount(frames.device)
    assert np.all(np.abs(per_device[:24] - 600) <= 1)            # 30 fps x 20 s, periodic
    assert per_device[24:39].mean() == pytest.approx(200, rel=0.1)  # 10/s x 20 s, Poisson
    assert np.all(np.diff(frames.arrival_s)[np.diff(frames.device) == 0] >= 0)  # sorted within a device


def gpu_bound_group(devices: int = 10, gpus: int = 1) -> Fleet:
    # one GPU: batch of 8 in 4 ms -> 2,000 requests/s at saturation = 100 devices at 20 fps
    group = DeviceGroup("cams", devices, edge_s=0.001, payload_bytes=5_000,
                        batch_latency_s=np.concatenate([[0.0], np.linspace(0.001, 0.004, 8)]),
                        rate_per_s=20.0, arrival="poisson", gpus=gpus)
    return Fleet((group,), Link(uplink_bps=100e6, rtt_s=0.002), max_wait_s=0.002)


def test_largest_fleet_meeting_the_slo_stops_short_of_gpu_saturation_and_scales_with_gpus():
    simulation = Simulation(duration_s=8.0, warmup_s=1.0, seeds=(0, 1), path="vectorised")
    slo = 0.030
    one = max_devices(gpu_bound_group(), "cams", 1, simulation, slo, start=16)
    two = max_devices(gpu_bound_group(), "cams", 2, simulation, slo, start=32)
    assert 60 <= one.devices < 100                     # below the 100-device saturation, not far below
    assert 1.7 * one.devices <= two.devices < 200
    met = [p for p in one.points if p["devices"] <= one.devices]
    missed = [p for p in one.points if p["devices"] > one.devices]
    assert met and missed
    assert all(p["slo_met"] and p["p99_s"] <= slo for p in met)
    assert all(not p["slo_met"] for p in missed)


def test_a_point_meets_the_slo_only_when_every_seed_does():
    simulation = Simulation(duration_s=4.0, warmup_s=0.5, seeds=(0, 1, 2), path="vectorised")
    point = evaluate_point(gpu_bound_group(40), simulation, slo_p99_s=1.0)["groups"][0]
    assert point["slo_met"] and point["seeds"] == 3
    assert point["p99_s"] >= point["p99_mean_s"]       # the worst seed is reported
    assert point["slo_attainment"] == 1.0
    tight = evaluate_point(gpu_bound_group(40), simulation, slo_p99_s=point["p99_s"] * 0.999)["groups"][0]
    assert not tight["slo_met"]
    assert 0.98 < tight["slo_attainment"] < 1.0       # the worst seed's p99 sits just above the tight SLO
    assert 0.3 < point["gpu_utilisation"] < 0.7        # 800 requests/s on a 2,000/s GPU, batched


def test_gpus_needed_is_the_smallest_pool_that_meets_the_slo():
    simulation = Simulation(duration_s=6.0, warmup_s=1.0, seeds=(0,), path="vectorised")
    rows = gpus_needed(gpu_bound_group(devices=250), simulation, slo_p99_s=0.030)
    assert rows[0]["gpus"] == 3 and rows[0]["slo_met"]  # 5,000 requests/s on 2,000/s GPUs


def test_cost_per_million_inferences_from_the_gpu_hour_price():
    # 2 GPUs at 3 USD/h serving 1,000 requests/s: 6 USD per 3.6 million requests
    assert cost_per_million_usd(2, 3.0, 1000.0) == pytest.approx(6.0 / 3.6)
    assert math.isinf(cost_per_million_usd(1, 3.0, 0.0))


def test_utilisations_equal_offered_load_when_nothing_saturates():
    # batching off: every request holds the GPU 1 ms; 40 devices x 20/s = 800 requests/s -> 0.8 of one GPU;
    # each device's own link carries 20/s x serialisation
    group = DeviceGroup("cams", 40, edge_s=0.001, payload_bytes=5_000, batch_latency_s=np.array([0.0, 0.001]),
                        rate_per_s=20.0, arrival="periodic", gpus=2)
    fleet = Fleet((group,), Link(uplink_bps=10e6, rtt_s=0.002), max_wait_s=0.0)
    point = evaluate_point(fleet, Simulation(duration_s=10.0, warmup_s=1.0, seeds=(0,), path="vectorised"),
                           slo_p99_s=1.0)["groups"][0]
    assert point["gpu_utilisation"] == pytest.approx(800 * 0.001 / 2, rel=0.01)
    assert point["uplink_utilisation"] == pytest.approx(20 * fleet.serialisation_s(5_000), rel=0.01)


def test_a_fleet_whose_uplink_misses_the_slo_gets_no_gpu_count():
    group = DeviceGroup("slow-link", 20, edge_s=0.001, payload_bytes=200_000, batch_latency_s=np.array([0.0, 0.001]),
                        rate_per_s=5.0, gpus=1)
    fleet = Fleet((group,), Link(uplink_bps=10e6, rtt_s=0.002))  # 160 ms of serialisation per frame
    (row,) = gpus_needed(fleet, Simulation(duration_s=4.0, warmup_s=0.5, seeds=(0,), path="vectorised"), 0.05)
    assert row["gpus"] is None and not row["slo_met"]


def test_the_uplink_order_and_the_cloud_order_are_numpys_stable_sorts():
    from simulator.capacity.vectorised import _by_link_then_time, _stable_argsort
    rng = np.random.default_rng(7)
    link = np.repeat(np.arange(300), rng.integers(0, 40, size=300))
    times = [rng.uniform(0, 30, link.size),                    # distinct times
             np.round(rng.uniform(0, 30, link.size), 2),       # many ties
             rng.uniform(0, 30, link.size)]
    times[2][1::2] = times[2][::2][:link.size // 2] + 1e-13    # pairs closer than the float key can tell apart
    for time_s in times:
        np.testing.assert_array_equal(_by_link_then_time(link, time_s), np.lexsort((time_s, link)))
        np.testing.assert_array_equal(_stable_argsort(time_s), np.argsort(time_s, kind="stable"))


def overloaded_groups() -> list[Fleet]:
    gpu = gpu_bound_group(devices=104)                    # 4 % over the GPU's 100-device saturation
    uplink = Fleet((DeviceGroup("raw", 12, edge_s=0.0, payload_bytes=150_000, batch_latency_s=latency_table(8),
                                rate_per_s=15.0, arrival="periodic", jitter_s=0.002),),
                   LINK, "shared", 4, max_wait_s=0.002)   # four cameras' raw frames on one 20 Mbit/s link
    return [gpu, uplink]


@pytest.mark.parametrize("index", [0, 1])
def test_a_miss_is_certain_only_when_the_full_run_misses(index):
    from simulator.capacity.answers import certain_miss
    fleet = overloaded_groups()[index]
    simulation = Simulation(duration_s=16.0, warmup_s=1.0, seeds=(0,), path="vectorised")
    frames = traffic(fleet, simulation.duration_s, np.random.default_rng(0))
    full = evaluate_point(fleet, simulation, slo_p99_s=1.0)["groups"][0]["p99_s"]
    decided = []
    for slo in np.linspace(0.01, 1.5, 16) * full:       # SLOs below, near and above the full run's p99
        early = certain_miss(fleet, frames, simulation, slo)
        if early is not None:
            assert full > slo                             # the oracle: the whole run misses it too
            assert early.duration_s < simulation.duration_s and len(early) < len(frames)
            decided.append(slo)
    assert decided and min(decided) < 0.5 * full          # clear misses are decided early
    # a fleet within its capacities is never cut short
    assert certain_miss(gpu_bound_group(devices=60), frames, simulation, 0.001) is None


def test_stopping_early_keeps_every_answer_of_the_full_search():
    simulation = Simulation(duration_s=8.0, warmup_s=1.0, seeds=(0, 1), path="vectorised")
    fleet, slo = gpu_bound_group(), 0.030
    fast = max_devices(fleet, "cams", 1, simulation, slo, start=16)
    full = {p["devices"]: evaluate_point(fleet.only("cams", devices=p["devices"]), simulation, slo)["groups"][0]
            for p in fast.points}
    for point in fast.points:
        assert point["slo_met"] == full[point["devices"]]["slo_met"]
        if point["slo_met"]:                              # met: every seed ran, the numbers are the full ones
            assert point["seeds"] == 2 and point["p99_s"] == full[point["devices"]]["p99_s"]
        else:                                             # missed: one seed, or cut within it
            assert point["seeds"] == 1
            assert math.isnan(point["p99_s"]) == ("stopped_at_s" in point)
    assert any("stopped_at_s" in p for p in fast.points)
