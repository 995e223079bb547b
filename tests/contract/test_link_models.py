"""The contract every registered link model keeps, on links with and without round trips, loss, jitter,
a shaper and a bandwidth trace: times and wire bytes are finite, grow with the payload, never beat the
bottleneck's serialisation of the payload, and a deterministic link's simulated upload agrees with its
analytic time."""
from __future__ import annotations

import json

import numpy as np
import pytest
from support import an_experiment

from hardware_models.errors import UserError
from simulator.cli import main
from simulator.experiment.scenario import build_link
from simulator.experiment.validated import validate
from simulator.network import (
    BandwidthTrace,
    IdealLink,
    Link,
    link_model_names,
    register_link_model,
    simulate_upload_s,
    unregister_link_model,
)

PAYLOADS = np.array([0.0, 1.0, 100.0, 1460.0, 1461.0, 20_000.0, 150_528.0, 2e6])
LINKS = {
    "plain": {"uplink_bps": 3e6},
    "rtt": {"uplink_bps": 20e6, "rtt_s": 0.04},
    "loss": {"uplink_bps": 10e6, "rtt_s": 0.02, "loss_rate": 0.02},
    "jitter": {"uplink_bps": 10e6, "rtt_s": 0.02, "jitter_s": 0.005},
    "new connection": {"uplink_bps": 5e6, "rtt_s": 0.03, "new_connection": True},
    "trace": {"trace": BandwidthTrace(np.array([0.0, 0.5]), np.array([2e6, 8e6])),
              "uplink_bps": 5e6, "rtt_s": 0.01},
}
CASES = [(model, name) for model in link_model_names() for name in LINKS]


def _link(model: str, name: str) -> Link:
    return Link(protocol=model, **LINKS[name])


@pytest.mark.parametrize("model, name", CASES)
def test_times_are_finite_zero_for_nothing_and_grow_with_the_payload(model, name):
    times = np.asarray(_link(model, name).transfer_time_s(PAYLOADS))
    assert times.shape == PAYLOADS.shape and np.all(np.isfinite(times))
    assert times[0] == 0.0 and np.all(np.diff(times) >= -1e-12)


@pytest.mark.parametrize("model, name", CASES)
def test_no_upload_beats_the_bottleneck(model, name):
    link = _link(model, name)
    slowest_bps = link.trace.rates_bps.max() if link.trace is not None else link.uplink_bps
    assert np.all(np.asarray(link.transfer_time_s(PAYLOADS)) >= PAYLOADS * 8.0 / slowest_bps * (1 - 1e-9))


@pytest.mark.parametrize("model, name", CASES)
def test_wire_bytes_hold_the_payload_and_grow_with_it(model, name):
    link = _link(model, name)
    wire = np.asarray(link.wire_bytes(PAYLOADS))
    assert np.all(wire >= PAYLOADS) and np.all(np.diff(wire) >= 0)
    # the per-packet overhead the model declares is what the wire carries beyond the payload
    assert wire[-1] - PAYLOADS[-1] == pytest.approx(link.segments(PAYLOADS[-1]) * link.packet_overhead_bytes)
    assert link.radio_energy_j(PAYLOADS[-1]) == 0.0  # no radio energy given


@pytest.mark.parametrize("model", link_model_names())
def test_a_scalar_payload_gives_a_number(model):
    assert isinstance(_link(model, "rtt").transfer_time_s(1000.0), float)


@pytest.mark.parametrize("model", link_model_names())
@pytest.mark.parametrize("payload", [1.0, 1460.0, 150_528.0])
def test_a_deterministic_link_s_simulated_upload_agrees_with_its_analytic_time(model, payload):
    link = _link(model, "rtt")
    simulated = simulate_upload_s(link, int(payload), np.random.default_rng(0))
    assert simulated == pytest.approx(link.transfer_time_s(payload), rel=0.01)


class _HalfRate(IdealLink):
    """A toy model: the ideal link at half its rate (say, a half-duplex radio)."""

    name = "half-rate"

    def transfer_time_s(self, link, payload_bytes, start_s):
        return 2.0 * super().transfer_time_s(link, payload_bytes, start_s)


def test_a_registered_link_model_is_a_link_protocol_until_unregistered(capsys):
    register_link_model(_HalfRate())
    try:
        assert "half-rate" in link_model_names()
        link = Link(uplink_bps=8e6, protocol="half-rate")
        assert link.transfer_time_s(1e6) == pytest.approx(2.0)  # 8e6 bits at 4 Mbit/s
        experiment = an_experiment(network={"uplink": "8Mbps", "link": "half-rate"})
        assert build_link(validate(experiment, "half.yaml").network).protocol == "half-rate"
        assert main(["netsim", "--uplink", "8Mbps", "--link", "half-rate", "--bytes", "1MB", "--format", "json"]) == 0
        simulated = json.loads(capsys.readouterr().out)
        assert simulated["model_s"] == pytest.approx(2.0) and simulated["p99_s"] == pytest.approx(2.0)
    finally:
        unregister_link_model("half-rate")
    with pytest.raises(UserError, match="protocol: expected one of tcp, ideal, got 'half-rate'"):
        Link(uplink_bps=8e6, protocol="half-rate")
    with pytest.raises(UserError, match="network.link: unknown link model 'half-rate'; expected one of tcp, ideal"):
        validate(experiment, "half.yaml")
