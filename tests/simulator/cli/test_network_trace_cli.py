"""Bandwidth traces (reading, validation, capacity arithmetic) and the `autosplit netsim` command."""
import json

import numpy as np
import pytest

from hardware_models.errors import UserError
from simulator.cli import main
from simulator.network import BandwidthTrace, Link


def test_trace_capacity_is_the_integral_of_the_rate_and_repeats():
    trace = BandwidthTrace(np.array([0.0, 1.0, 3.0]), np.array([2e6, 0.0, 4e6]))  # period 5 s
    assert trace.period_s == 5.0
    assert trace.bits_by(np.array([0.5, 1.0, 2.0, 3.5, 5.0])) == pytest.approx([1e6, 2e6, 2e6, 4e6, 10e6])
    assert trace.bits_by(12.0) == pytest.approx(2 * 10e6 + 2e6)
    assert trace.rate_at(np.array([0.0, 2.0, 4.0, 5.5, 6.0])) == pytest.approx([2e6, 0.0, 4e6, 2e6, 0.0])


def test_time_to_send_inverts_the_capacity_and_skips_outages():
    trace = BandwidthTrace(np.array([0.0, 1.0, 3.0]), np.array([2e6, 0.0, 4e6]))
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 20, 200)
    bits = rng.uniform(0, 5e7, 200)
    ends = starts + trace.time_to_send_s(bits, starts)
    assert trace.bits_by(ends) - trace.bits_by(starts) == pytest.approx(bits, rel=1e-9, abs=1e-3)
    # 3 Mbit from t=0.5: 1 Mbit by t=1, nothing until t=3, then 2 Mbit at 4 Mbit/s
    assert trace.time_to_send_s(3e6, 0.5) == pytest.approx(3.0)


def test_trace_file_with_header_comments_and_units(tmp_path):
    path = tmp_path / "walk.csv"
    path.write_text("# a walk away from the access point\ntime_s,rate_bps\n0, 20Mbps\n1.5, 8Mbps\n3 2000000\n")
    trace = BandwidthTrace.from_file(path)
    assert list(trace.times_s) == [0.0, 1.5, 3.0]
    assert list(trace.rates_bps) == [20e6, 8e6, 2e6]


@pytest.mark.parametrize("text,message", [
    ("", r"empty bandwidth trace"),
    ("time_s,rate_bps\n", r"empty bandwidth trace"),
    ("0,1e6\n2,2e6\n1,3e6\n", r"not increasing: row 3 has 1 s after 2 s"),
    ("0,1e6\n1,-2e6\n", r"negative rate -2e\+06 bit/s at 1 s"),
    ("1,1e6\n2,2e6\n", r"must start at time 0, got 1 s"),
    ("0,0\n1,0\n", r"no capacity"),
    ("0,1e6,5\n", r"expected two columns"),
    ("0,3Mbbs\n", r"unknown unit 'Mbbs'"),
])
def test_bad_trace_files_are_one_line_errors_naming_the_value(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as error:
        BandwidthTrace.from_file(path)
    assert "\n" not in str(error.value) and "bad.csv" in str(error.value)


def netsim(capsys, *args):
    code = main(["netsim", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_netsim_json_has_the_design_keys_and_matches_the_model(capsys):
    code, out, _ = netsim(capsys, "--uplink", "3Mbps", "--rtt", "40ms", "--bytes", "150528", "--runs", "50",
                          "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert {"payload_bytes", "uplink_bps", "rtt_s", "mean_s", "p50_s", "p95_s", "p99_s", "runs"} <= set(data)
    assert data["payload_bytes"] == 150528 and data["uplink_bps"] == 3e6 and data["rtt_s"] == pytest.approx(0.04)
    assert data["runs"] == 50
    assert data["mean_s"] == pytest.approx(Link(uplink_bps=3e6, rtt_s=0.04).transfer_time_s(150528), rel=0.01)


def test_netsim_ideal_link_is_bytes_over_rate(capsys):
    code, out, _ = netsim(capsys, "--uplink", "3Mibps", "--link", "ideal", "--bytes", "147KiB", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["mean_s"] == pytest.approx(147 * 1024 * 8 / (3 * 2**20))


def test_netsim_loss_spreads_the_distribution_and_new_connection_adds_a_round_trip(capsys):
    _, out, _ = netsim(capsys, "--uplink", "3Mbps", "--rtt", "40ms", "--loss", "0.05", "--runs", "60",
                       "--format", "json")
    lossy = json.loads(out)
    assert lossy["p99_s"] > lossy["p50_s"] > 0
    _, out, _ = netsim(capsys, "--uplink", "3Mbps", "--rtt", "40ms", "--new-connection", "--runs", "5",
                       "--format", "json")
    assert json.loads(out)["mean_s"] == pytest.approx(Link(uplink_bps=3e6, rtt_s=0.04).transfer_time_s(150528) + 0.04)


def test_netsim_with_a_trace_and_a_preset(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    trace.write_text("0,2Mbps\n1,6Mbps\n")
    code, out, _ = netsim(capsys, "--trace", str(trace), "--rtt", "20ms", "--runs", "40", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["uplink_bps"] == pytest.approx(4e6)
    assert data["p95_s"] >= data["p50_s"]
    code, out, _ = netsim(capsys, "--preset", "lte", "--runs", "20", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("payload_bytes,")


@pytest.mark.parametrize("args,message", [
    (["--uplink=-3Mbps"], "--uplink: expected a rate in bit/s >= 1 and <= 1e+15, got '-3Mbps'"),
    (["--uplink", "-3Mbps"], "--uplink: expected a rate in bit/s >= 1 and <= 1e+15, got '-3Mbps'"),
    (["--uplink", "3Mbps", "--loss", "1"], "--loss: expected a probability in [0, 1), got '1'"),
    (["--uplink", "3Mbps", "--rtt", "4parsecs"], "--rtt: unknown unit 'parsecs'"),
    (["--rtt", "40ms"], "give --uplink RATE"),
    (["--uplink", "3Mbps", "--runs", "0"], "--runs: expected a whole number 1..1000000, got '0'"),
])
def test_netsim_bad_inputs_exit_2_with_one_line(capsys, args, message):
    code, out, err = netsim(capsys, *args)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_netsim_empty_or_unsorted_trace_exits_2(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = netsim(capsys, "--trace", str(empty))
    assert code == 2 and "empty bandwidth trace" in err
    unsorted = tmp_path / "unsorted.csv"
    unsorted.write_text("0,1e6\n2,1e6\n1,1e6\n")
    code, _, err = netsim(capsys, "--trace", str(unsorted))
    assert code == 2 and "not increasing" in err


def test_run_and_plan_integrate_a_trace_over_start_times_not_only_its_first_second(tmp_path, capsys):
    """Issue 25: 3 Mbit/s for 1 s, then nothing for an hour. A plan's transfer is the mean over upload start
    times, so it waits for the next second of capacity (about an hour on average): far from the constant
    3 Mbit/s answer, and equal to the mean of uploads started at random (the segment simulation's draw)."""
    from simulator.network.link import Link
    from simulator.network.simulation import simulate_transfer_times_s
    from simulator.network.trace import BandwidthTrace

    trace_file = tmp_path / "outage.csv"
    trace_file.write_text("time_s, rate_bps\n0, 3e6\n1, 0\n3600, 0\n")  # 1 s of 3 Mbit/s in every 7199 s
    trace = BandwidthTrace.from_file(trace_file)
    link = Link.ideal(1.0, trace=trace)
    mean = link.transfer_time_s(150_528.0)
    simulated = simulate_transfer_times_s(link, 150_528, 4000, seed=1)
    assert mean == pytest.approx(simulated.mean(), rel=0.05)
    assert mean > 1000.0 and link.transfer_time_s(150_528.0, start_s=0.0) < 1.0

    import pandas as pd
    from support import an_experiment, write_yaml

    latencies = {}
    for name, network in {"constant": {"uplink": "3Mbps", "rtt": "0ms", "link": "ideal"},
                          "traced": {"trace": str(trace_file), "rtt": "0ms", "link": "ideal"}}.items():
        experiment = write_yaml(tmp_path / f"{name}.yaml", an_experiment(
            network=network, search={"methods": ["cloud"]}, output={"plot_formats": []}))
        assert main(["run", str(experiment), "--out", str(tmp_path / name), "--no-progress"]) == 0
        baselines = pd.read_csv(tmp_path / name / "baselines.csv").set_index("method")
        latencies[name] = float(baselines.loc["cloud", "latency_s"])
        summary = (tmp_path / name / "summary.md").read_text()
        assert ("mean over uploads started at 256 instants" in summary) == (name == "traced")
    assert latencies["constant"] < 1.0 and latencies["traced"] > 1000.0
