"""The analytic link model: framing, slow start, handshake, ideal link, energy, presets and bad inputs."""
import math
import re

import numpy as np
import pytest

from hardware_models.errors import UserError
from simulator.network import BandwidthTrace, Link, load_link, preset_names, simulate_transfer_times_s
from simulator.network.presets import PRESET_DIR


def kurose_slow_start_s(payload_bytes, rate_bps, rtt_s, mss=1448, overhead=66, initial_window=10):
    """Textbook slow-start latency (Kurose & Ross, 'Computer Networking', section 3.7) for an object of whole
    segments: serialisation + one-way delay + the stall after window k, max(0, S/R + RTT - w_k S/R)."""
    segments = payload_bytes // mss
    segment_s = (mss + overhead) * 8 / rate_bps
    total = segments * segment_s + rtt_s / 2
    sent, window = 0, initial_window
    while sent + window < segments:
        total += max(0.0, segment_s + rtt_s - window * segment_s)
        sent += window
        window *= 2
    return total


def test_wire_bytes_add_headers_and_framing_per_packet():
    link = Link(uplink_bps=3e6)
    payload = np.array([0, 1, 1448, 1449, 150528])
    packets = np.array([0, 1, 1, 2, 104])
    assert np.array_equal(link.wire_bytes(payload), payload + packets * (52 + 14))
    assert link.mss_bytes == 1448


def test_ideal_link_is_bytes_over_rate_with_the_papers_mebibit():
    link = load_link("paper-3mbps")
    assert link.protocol == "ideal" and link.uplink_bps == 3 * 2**20
    payload = np.array([1000.0, 150528.0, 2e6])
    assert np.allclose(link.transfer_time_s(payload), payload * 8 / (3 * 2**20))
    assert np.array_equal(link.wire_bytes(payload), payload)


def test_transfer_time_is_vectorised_over_any_array_shape():
    link = Link(uplink_bps=5e6, rtt_s=0.05, loss_rate=0.01)
    payload = np.array([[0, 1000, 20_000], [150_528, 1_000_000, 3_000_000]])
    times = link.transfer_time_s(payload)
    assert times.shape == payload.shape
    assert np.allclose(times, [[link.transfer_time_s(float(p)) for p in row] for row in payload])
    assert times[0, 0] == 0.0
    assert isinstance(link.transfer_time_s(1000), float)


@pytest.mark.parametrize("rate_bps,rtt_s", [(1e6, 0.1), (3e6, 0.04), (20e6, 0.1), (50e6, 0.3)])
def test_slow_start_stalls_match_the_textbook_formula(rate_bps, rtt_s):
    link = Link(uplink_bps=rate_bps, rtt_s=rtt_s)
    for segments in (1, 10, 11, 30, 100, 700):
        payload = segments * 1448
        assert link.transfer_time_s(payload) == pytest.approx(kurose_slow_start_s(payload, rate_bps, rtt_s), rel=1e-9)


def test_new_connection_costs_exactly_one_round_trip_more():
    link = Link(uplink_bps=3e6, rtt_s=0.04)
    payload = np.array([500, 20_000, 150_528, 1e6])
    fresh = link.replace(new_connection=True).transfer_time_s(payload)
    assert np.allclose(fresh - link.transfer_time_s(payload), 0.04)


def test_an_open_window_removes_the_slow_start_stalls_only():
    link = Link(uplink_bps=20e6, rtt_s=0.1)
    warm = link.replace(window_open=True)
    small = 10 * 1448  # fits in the initial window: nothing to save
    assert warm.transfer_time_s(small) == pytest.approx(link.transfer_time_s(small))
    big = 1_000_000
    assert warm.transfer_time_s(big) == pytest.approx(float(link.wire_bytes(big)) * 8 / 20e6 + 0.05)
    assert warm.transfer_time_s(big) < link.transfer_time_s(big) - 0.2


def test_time_grows_with_payload_rtt_and_loss_and_falls_with_rate():
    payload = np.linspace(0, 2e6, 41)
    base = Link(uplink_bps=5e6, rtt_s=0.05)
    assert np.all(np.diff(base.transfer_time_s(payload)) >= 0)
    assert np.all(base.replace(rtt_s=0.1).transfer_time_s(payload)[1:] > base.transfer_time_s(payload)[1:])
    assert np.all(base.replace(uplink_bps=10e6).transfer_time_s(payload)[1:] < base.transfer_time_s(payload)[1:])
    assert np.all(base.replace(loss_rate=0.02).transfer_time_s(payload)[1:] > base.transfer_time_s(payload)[1:])


def test_lossy_expected_time_is_within_10_percent_of_the_simulated_mean():
    """The loss model is an approximation (Cardwell et al. style); at a moderate bandwidth-delay product its
    error against 400 simulated uploads is a few percent (see the note for the full grid)."""
    link = Link(uplink_bps=3e6, rtt_s=0.04, loss_rate=0.01)
    simulated = simulate_transfer_times_s(link, 150_528, runs=400, seed=3)
    assert link.transfer_time_s(150_528) == pytest.approx(simulated.mean(), rel=0.10)


def test_shaper_burst_lets_the_first_bytes_through_at_once():
    link = Link(uplink_bps=1e6, rtt_s=0.0)
    shaped = link.replace(shaper_burst_bytes=3028)
    payload = 200_000
    assert link.transfer_time_s(payload) - shaped.transfer_time_s(payload) == pytest.approx(3028 * 8 / 1e6)


def test_downlink_returns_the_result_at_the_downlink_rate():
    link = Link(uplink_bps=1e6, downlink_bps=10e6, rtt_s=0.02)
    result = 4000
    assert link.downlink_time_s(result) == pytest.approx(
        Link(uplink_bps=10e6, rtt_s=0.02).transfer_time_s(result))


def test_radio_energy_is_wire_bits_times_energy_per_bit():
    link = load_link("lte")
    payload = np.array([1000.0, 150_528.0])
    expected = link.wire_bytes(payload) * 8 * link.radio_energy_j_per_bit / (1 - link.loss_rate)
    assert np.allclose(link.radio_energy_j(payload), expected)
    assert link.radio_energy_j_per_bit == pytest.approx(0.67e-6)


def test_a_trace_replaces_the_rate_and_the_link_reports_its_mean():
    trace = BandwidthTrace(np.array([0.0, 1.0]), np.array([2e6, 6e6]))
    link = Link(uplink_bps=1.0, trace=trace)
    assert link.uplink_bps == pytest.approx(4e6)
    ideal = Link.ideal(1.0, trace=trace)
    # 3 Mbit from t=0.5: 1 Mbit at 2 Mbit/s (0.5 s), then 2 Mbit at 6 Mbit/s (1/3 s)
    assert ideal.transfer_time_s(3e6 / 8, start_s=0.5) == pytest.approx(0.5 + 1 / 3)


@pytest.mark.parametrize("fields,message", [
    ({"uplink_bps": -3e6}, r"uplink_bps: .*-3e\+06"),
    ({"uplink_bps": 0.0}, r"uplink_bps: .*got 0"),
    ({"uplink_bps": 1e6, "loss_rate": 1.0}, r"loss_rate: .*got 1"),
    ({"uplink_bps": 1e6, "loss_rate": -0.1}, r"loss_rate: .*got -0.1"),
    ({"uplink_bps": 1e6, "rtt_s": -0.01}, r"rtt_s: .*got -0.01"),
    ({"uplink_bps": 1e6, "protocol": "udp"}, r"protocol: .*'udp'"),
    ({"uplink_bps": 1e6, "mtu_bytes": 40}, r"mtu_bytes: .*got 40"),
])
def test_bad_link_values_are_one_line_errors_naming_the_value(fields, message):
    with pytest.raises(UserError, match=message) as error:
        Link(**fields)
    assert "\n" not in str(error.value)


def test_every_preset_loads_and_cites_a_source_or_says_assumption():
    names = preset_names()
    assert {"ble", "3g", "lte", "5g", "wifi", "paper-1mbps", "paper-3mbps", "paper-10mbps", "paper-20mbps"} <= set(names)
    for name in names:
        link = load_link(name)
        assert link.uplink_bps > 0 and link.name == name
        for line in (PRESET_DIR / f"{name}.yaml").read_text().splitlines():
            if re.match(r"^(uplink|downlink|rtt|loss|radio_energy_per_bit|mtu|framing|header):", line):
                assert re.search(r"#\s*(source|assumption)", line), f"{name}: {line}"


def test_paper_presets_use_the_papers_1024_based_megabit():
    for mbps in (1, 3, 10, 20):
        assert load_link(f"paper-{mbps}mbps").uplink_bps == mbps * 2**20


def test_preset_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "net.yaml"
    bad.write_text("uplink: 3Mbps\nrtts: 40ms\n")
    with pytest.raises(UserError, match=r"net.yaml: rtts: unknown key \(did you mean 'rtt'\?\)"):
        load_link(str(bad))
    bad.write_text("uplink: 3Mbps\nloss: 1.5\n")
    with pytest.raises(UserError, match=r"net.yaml: loss_rate: .*1.5"):
        load_link(str(bad))
    with pytest.raises(UserError, match="unknown network 'ltee'.*did you mean 'lte'"):
        load_link("ltee")


def test_a_preset_can_name_a_trace_file_next_to_it(tmp_path):
    (tmp_path / "walk.csv").write_text("time_s,rate_bps\n0,1Mbps\n1,3Mbps\n")
    (tmp_path / "walk.yaml").write_text("trace: walk.csv\nrtt: 20ms\n")
    link = load_link(str(tmp_path / "walk.yaml"))
    assert link.trace is not None and link.uplink_bps == pytest.approx(2e6) and math.isclose(link.rtt_s, 0.02)


def test_a_network_preset_names_the_key_the_user_wrote(tmp_path):
    bad = tmp_path / "net.yaml"
    bad.write_text("uplink: 3Mbps\nlink: udp\n")
    with pytest.raises(UserError, match=r"net.yaml: link: expected one of tcp, ideal, got 'udp'"):
        load_link(str(bad))
    bad.write_text("uplink: fast\n")
    with pytest.raises(UserError, match=r"net.yaml: uplink: expected a rate"):
        load_link(str(bad))
