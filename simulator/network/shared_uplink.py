"""N devices behind one cell or access point: uploads share the uplink, FIFO or fair share.

Each upload is a SimPy process: (a new connection's handshake, one RTT, first), then it waits for the shared
transmit stage to serialise its wire bytes (payload plus per-packet framing, divided by 1 - loss for the
expected retransmissions; slow start is not modelled here, the shared queue dominates), then propagates for
RTT / 2 in a separate stage that does not hold the transmitter. Arrivals are periodic (camera frames at a
fixed interval, each device at its own random phase) or Poisson. Latency = upload start to last byte
delivered, in seconds, per upload and summarised per device.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy

from simulator.network.link import Link
from simulator.network.queueing import lindley_waits_s
from simulator.network.stages import make_transmitter, propagate, transmit

DISCIPLINES = ("fifo", "fair")
ARRIVALS = ("periodic", "poisson")


@dataclass(frozen=True)
class UplinkTraffic:
    """Uploads sorted by arrival: when (s), from which device, how many payload bytes."""

    arrival_times_s: np.ndarray
    devices: np.ndarray
    payload_bytes: np.ndarray


def periodic_traffic(devices: int, interval_s: float, duration_s: float, payload_bytes: float,
                     rng: np.random.Generator) -> UplinkTraffic:
    """Every device uploads every `interval_s` from a uniformly drawn phase in [0, interval_s)."""
    _check_traffic(devices, interval_s, duration_s)
    phases = rng.uniform(0.0, interval_s, size=devices)
    per_device = int(np.ceil(duration_s / interval_s))
    times = (phases[:, None] + interval_s * np.arange(per_device)[None, :]).ravel()
    owners = np.repeat(np.arange(devices), per_device)
    keep = times < duration_s
    return _sorted(times[keep], owners[keep], payload_bytes)


def poisson_traffic(devices: int, interval_s: float, duration_s: float, payload_bytes: float,
                    rng: np.random.Generator) -> UplinkTraffic:
    """Every device uploads as a Poisson process with mean inter-arrival time `interval_s`."""
    _check_traffic(devices, interval_s, duration_s)
    count = rng.poisson(devices * duration_s / interval_s)
    times = rng.uniform(0.0, duration_s, size=count)
    owners = rng.integers(0, devices, size=count)
    return _sorted(times, owners, payload_bytes)


def _check_traffic(devices: int, interval_s: float, duration_s: float) -> None:
    if devices < 1:
        raise ValueError(f"devices: expected at least 1, got {devices}")
    if not interval_s > 0:
        raise ValueError(f"interval_s: expected a positive time, got {interval_s:g}")
    if not duration_s > 0:
        raise ValueError(f"duration_s: expected a positive time, got {duration_s:g}")


def _sorted(times: np.ndarray, owners: np.ndarray, payload_bytes: float) -> UplinkTraffic:
    order = np.argsort(times, kind="stable")
    return UplinkTraffic(times[order], owners[order], np.full(times.size, float(payload_bytes)))


# --- SimPy processes ---------------------------------------------------------------------------------------
def upload(env: simpy.Environment, transmitter, flow: object, bits: float, one_way_s: float,
           on_delivered: Callable[[float], None], handshake_s: float = 0.0):
    """Process: one upload through the transmit stage, then the propagation stage; reports its latency."""
    start_s = env.now
    yield from propagate(env, handshake_s)
    yield from transmit(env, transmitter, bits, flow)
    yield from propagate(env, one_way_s)
    on_delivered(env.now - start_s)


def arrivals(env: simpy.Environment, arrival_times_s: np.ndarray, start: Callable[[int], None]):
    """Process: call `start(i)` at each sorted arrival time."""
    for index, time_s in enumerate(arrival_times_s):
        if time_s > env.now:
            yield env.timeout(time_s - env.now)
        start(index)


def simulate_uploads_s(link: Link, traffic: UplinkTraffic, discipline: str = "fifo",
                       trace_offset_s: float = 0.0) -> np.ndarray:
    """Latency of every upload in `traffic` (seconds, in arrival order) on a shared uplink (SimPy)."""
    if discipline not in DISCIPLINES:
        raise ValueError(f"discipline: expected one of {', '.join(DISCIPLINES)}, got {discipline!r}")
    env = simpy.Environment()
    transmitter = make_transmitter(env, discipline, link.uplink_bps, link.trace, trace_offset_s)
    bits = _service_bits(link, traffic)
    latencies = np.full(traffic.arrival_times_s.size, np.nan)
    one_way_s = link.rtt_s / 2.0
    handshake_s = link.rtt_s if link.new_connection else 0.0

    def start(index: int) -> None:
        def record(latency_s: float) -> None:
            latencies[index] = latency_s

        env.process(upload(env, transmitter, int(traffic.devices[index]), float(bits[index]), one_way_s, record,
                           handshake_s))

    env.process(arrivals(env, traffic.arrival_times_s, start))
    env.run()
    return latencies


def fifo_latencies_s(link: Link, traffic: UplinkTraffic) -> np.ndarray:
    """The same latencies as `simulate_uploads_s(..., "fifo")` for a constant-rate link, by the Lindley
    recursion (vectorised, for hundreds of thousands of uploads)."""
    if link.trace is not None or link.new_connection:
        raise ValueError("the Lindley recursion needs a constant-rate link and a persistent connection; "
                         "simulate with SimPy")
    service_s = _service_bits(link, traffic) / link.uplink_bps
    return lindley_waits_s(traffic.arrival_times_s, service_s) + service_s + link.rtt_s / 2.0


def _service_bits(link: Link, traffic: UplinkTraffic) -> np.ndarray:
    """Bits each upload occupies the uplink for: wire bytes with the expected retransmissions."""
    return link.wire_bytes(traffic.payload_bytes) * 8.0 / (1.0 - link.loss_rate)


def latency_summary(traffic: UplinkTraffic, latencies_s: np.ndarray) -> pd.DataFrame:
    """Per device: uploads, mean, p50, p95, p99 and max latency in seconds."""
    frame = pd.DataFrame({"device": traffic.devices, "latency_s": latencies_s})
    grouped = frame.groupby("device")["latency_s"]
    return pd.DataFrame({
        "uploads": grouped.size(),
        "mean_s": grouped.mean(),
        "p50_s": grouped.quantile(0.50),
        "p95_s": grouped.quantile(0.95),
        "p99_s": grouped.quantile(0.99),
        "max_s": grouped.max(),
    }).reset_index()


def simulate_shared_uplink(link: Link, devices: int, payload_bytes: float, interval_s: float, duration_s: float,
                           arrival: str = "periodic", discipline: str = "fifo",
                           seed: int | np.random.Generator = 0) -> tuple[UplinkTraffic, np.ndarray, pd.DataFrame]:
    """`devices` devices each uploading `payload_bytes` every `interval_s` (periodic) or at that mean
    interval (Poisson) for `duration_s`: the traffic, every upload's latency and the per-device summary."""
    if arrival not in ARRIVALS:
        raise ValueError(f"arrival: expected one of {', '.join(ARRIVALS)}, got {arrival!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    make = periodic_traffic if arrival == "periodic" else poisson_traffic
    traffic = make(devices, interval_s, duration_s, payload_bytes, rng)
    latencies = simulate_uploads_s(link, traffic, discipline)
    return traffic, latencies, latency_summary(traffic, latencies)
