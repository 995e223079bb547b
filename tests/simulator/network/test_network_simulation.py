"""The segment-level SimPy simulation against the analytic model, and its randomness."""
import numpy as np
import pytest
import simpy

from simulator.network import BandwidthTrace, DelayLine, Link, TcpUpload, Transmitter, simulate_transfer_times_s

LINKS = [
    Link(uplink_bps=1e6, rtt_s=0.1),
    Link(uplink_bps=3e6, rtt_s=0.04),
    Link(uplink_bps=20e6, rtt_s=0.15),
    Link(uplink_bps=50e6, rtt_s=0.03, new_connection=True),
    Link(uplink_bps=10e6, rtt_s=0.08, window_open=True),
    Link(uplink_bps=3e6, rtt_s=5e-5, shaper_burst_bytes=3028),
    Link(uplink_bps=0.25e6, rtt_s=0.03, mtu_bytes=247, header_bytes=40, framing_bytes=14),
]
PAYLOADS = [1, 1448, 14_480, 14_481, 150_528, 1_000_000]


@pytest.mark.parametrize("link", LINKS, ids=lambda l: f"{l.uplink_bps:g}bps-{l.rtt_s:g}s")
def test_simulation_without_randomness_agrees_with_the_analytic_model_within_1_percent(link):
    for payload in PAYLOADS:
        simulated = simulate_transfer_times_s(link, payload, runs=1)[0]
        assert simulated == pytest.approx(link.transfer_time_s(payload), rel=0.01), payload


def test_simulation_follows_a_bandwidth_trace_like_the_analytic_model():
    # rates stay above zero: an outage longer than the retransmission timeout makes real TCP (and the
    # simulation) time out, which the analytic model does not represent
    trace = BandwidthTrace(np.array([0.0, 0.4, 0.9, 1.5]), np.array([3e6, 1e6, 8e6, 0.5e6]))
    link = Link(uplink_bps=1.0, rtt_s=0.04, trace=trace)
    for start_s in (0.0, 0.35, 1.2, 2.5):
        for payload in (14_480, 150_528, 600_000):
            simulated = simulate_transfer_times_s(link, payload, runs=1, start_s=start_s)[0]
            assert simulated == pytest.approx(link.transfer_time_s(payload, start_s=start_s), rel=0.01)


def test_same_seed_same_times_other_seed_other_times():
    link = Link(uplink_bps=3e6, rtt_s=0.04, loss_rate=0.02, jitter_s=0.01)
    first = simulate_transfer_times_s(link, 150_528, runs=30, seed=7)
    assert np.array_equal(first, simulate_transfer_times_s(link, 150_528, runs=30, seed=7))
    assert not np.array_equal(first, simulate_transfer_times_s(link, 150_528, runs=30, seed=8))


def test_jitter_slows_uploads_about_as_the_analytic_approximation_says():
    base = Link(uplink_bps=10e6, rtt_s=0.02)
    jittery = base.replace(jitter_s=0.01)
    for payload in (1000, 100_000):
        times = simulate_transfer_times_s(jittery, payload, runs=200, seed=1)
        assert times.min() >= simulate_transfer_times_s(base, payload, runs=1)[0] - 1e-12
        assert times.max() <= base.transfer_time_s(payload) + 0.01 * 8  # at most J per round trip and at the end
        assert times.mean() == pytest.approx(jittery.transfer_time_s(payload), rel=0.10)


def test_lost_segments_are_retransmitted_and_the_upload_completes():
    env = simpy.Environment()
    link = Link(uplink_bps=3e6, rtt_s=0.04, loss_rate=0.05)
    upload = TcpUpload(env, link, 300_000, np.random.default_rng(0))
    env.process(upload.start())
    env.run(until=upload.finished)
    assert upload.received.all()
    assert upload.retransmissions > 0
    assert upload.transmissions == upload.n_segments + upload.retransmissions
    lossless = simulate_transfer_times_s(link.replace(loss_rate=0.0), 300_000, runs=1)[0]
    assert upload.finished.value > lossless


def test_a_lost_last_segment_waits_for_the_retransmission_timeout():
    link = Link(uplink_bps=10e6, rtt_s=0.02, loss_rate=0.3)
    times = simulate_transfer_times_s(link, 1000, runs=200, seed=2)  # one segment: no duplicate ACKs possible
    lossless = Link(uplink_bps=10e6, rtt_s=0.02).transfer_time_s(1000)
    delayed = times[times > lossless + 1e-9]
    assert delayed.size > 0
    assert delayed.min() == pytest.approx(lossless + 0.02 + 0.2, rel=1e-6)  # RTT + rto_min


def test_transmitter_serialises_in_order_and_propagation_does_not_hold_it():
    env = simpy.Environment()
    transmitter = Transmitter(env, rate_bps=1e6)
    delivered = []
    line = DelayLine(env, 0.5, lambda item: delivered.append((item, env.now)))
    for name in "abc":
        transmitter.send(1e5).callbacks.append(lambda _e, name=name: line.put(name))
    env.run()
    # each 0.1 s to serialise, back to back; the 0.5 s flight overlaps the next transmissions
    assert delivered == [("a", pytest.approx(0.6)), ("b", pytest.approx(0.7)), ("c", pytest.approx(0.8))]


def test_delay_line_with_jitter_never_reorders():
    env = simpy.Environment()
    out = []
    line = DelayLine(env, 0.01, out.append, jitter_s=0.05, rng=np.random.default_rng(0))

    def feed():
        for i in range(200):
            line.put(i)
            yield env.timeout(0.001)

    env.process(feed())
    env.run()
    assert out == list(range(200))


@pytest.mark.parametrize("uplink_bps,rtt_s,payload", [(3e6, 0.04, 150_528), (1e6, 0.01, 20_000),
                                                      (10e6, 0.1, 1_000_000)])
@pytest.mark.slow
def test_analytic_model_agrees_with_the_simulation_up_to_the_loss_the_search_accepts(uplink_bps, rtt_s, payload):
    """Issue 14: within MAX_ANALYTIC_LOSS the search's closed form stays within 30% of the simulated mean (at
    0.2 it is 0.66x of it, at 0.3 5x off: the schema refuses those losses for plan and run)."""
    from simulator.experiment.schema import MAX_ANALYTIC_LOSS

    for loss in (0.01, 0.05, MAX_ANALYTIC_LOSS):
        link = Link(uplink_bps=uplink_bps, rtt_s=rtt_s, loss_rate=loss)
        simulated = simulate_transfer_times_s(link, payload, runs=100, seed=1).mean()
        assert 0.7 <= float(link.transfer_time_s(payload)) / simulated <= 1.3, loss
