"""A network link between the edge device and the cloud: rates, round-trip time, framing, loss, radio energy.

`Link` is a small immutable description; what its `protocol` does with a payload is the registered link model
of that name (`link_models.py`): `tcp` (`tcp.py`: analytic, and `simulation.py`: SimPy, segment level) and
`ideal`, the Auto-Split paper's model (payload bits / rate, no framing, no round trip, no slow start), both
registered here. `Link.transfer_time_s` is the analytic model the search loop calls, vectorised over numpy
arrays of payload sizes.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hardware_models.errors import UserError
from simulator.network.link_models import IdealLink, LinkModel, link_model, register_link_model
from simulator.network.tcp import TcpLink
from simulator.network.trace import BandwidthTrace

register_link_model(TcpLink())
register_link_model(IdealLink())
TRACE_STARTS = 256  # upload start instants a trace-aware transfer time averages over (error O(1/256) of the period)

# IPv4 (20) + TCP (20) + the timestamps option Linux sends on every segment (12)
IPV4_TCP_TIMESTAMPS_HEADER_BYTES = 52
# Ethernet II header as a Linux qdisc counts a packet (no preamble, FCS or inter-frame gap)
ETHERNET_HEADER_BYTES = 14


@dataclass(frozen=True)
class Link:
    """An uplink (and its downlink) as TCP sees it.

    uplink_bps: bottleneck rate of the uplink in bit/s (the trace's mean when `trace` is given).
    rtt_s: base round-trip time in seconds (propagation and processing, no queueing).
    protocol: a registered link model: "tcp" (framing, handshake option, slow start, loss) or "ideal"
        (bytes / rate).
    mtu_bytes, header_bytes, framing_bytes: IP packet size, TCP/IP header bytes per packet (options included),
        link-layer framing bytes per packet that the bottleneck also serialises.
    loss_rate: probability that a packet is lost on the uplink (retransmitted by TCP), in [0, 1).
    initial_window_segments: TCP's initial congestion window (10 since RFC 6928).
    new_connection: each upload opens a new connection (one extra RTT for the handshake).
    window_open: the persistent connection's window is already open (frequent uploads, no slow start);
        by default each upload restarts from the initial window, as Linux does after an idle period.
    jitter_s: extra one-way delay per packet, uniform in [0, jitter_s] (order preserved).
    downlink_bps: rate of the return path for the result (None: same as the uplink).
    radio_energy_j_per_bit: energy the edge radio spends per transmitted bit on the wire.
    shaper_burst_bytes: a token-bucket shaper's bucket, full at the start of an upload (0 for a radio link).
    rto_min_s: TCP's minimum retransmission timeout (Linux: 200 ms), used for losses at the tail.
    trace: a bandwidth trace replacing the constant uplink rate.
    """

    uplink_bps: float
    rtt_s: float = 0.0
    protocol: str = "tcp"
    mtu_bytes: int = 1500
    header_bytes: int = IPV4_TCP_TIMESTAMPS_HEADER_BYTES
    framing_bytes: int = ETHERNET_HEADER_BYTES
    loss_rate: float = 0.0
    initial_window_segments: int = 10
    new_connection: bool = False
    window_open: bool = False
    jitter_s: float = 0.0
    downlink_bps: float | None = None
    radio_energy_j_per_bit: float = 0.0
    shaper_burst_bytes: float = 0.0
    rto_min_s: float = 0.2
    trace: BandwidthTrace | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        if self.trace is not None:
            object.__setattr__(self, "uplink_bps", self.trace.mean_rate_bps)
        _check(self.uplink_bps > 0 and math.isfinite(self.uplink_bps), "uplink_bps",
               f"expected a positive rate in bit/s, got {self.uplink_bps:g}")
        _check(self.rtt_s >= 0 and math.isfinite(self.rtt_s), "rtt_s", f"expected a time >= 0 s, got {self.rtt_s:g}")
        link_model(self.protocol)  # a UserError naming the registered ones
        _check(self.header_bytes >= 0, "header_bytes", f"expected >= 0, got {self.header_bytes}")
        _check(self.framing_bytes >= 0, "framing_bytes", f"expected >= 0, got {self.framing_bytes}")
        _check(self.mtu_bytes > self.header_bytes, "mtu_bytes",
               f"expected more than the {self.header_bytes} header bytes, got {self.mtu_bytes}")
        _check(0 <= self.loss_rate < 1, "loss_rate", f"expected a probability in [0, 1), got {self.loss_rate:g}")
        _check(self.initial_window_segments >= 1, "initial_window_segments",
               f"expected at least 1 segment, got {self.initial_window_segments}")
        _check(self.jitter_s >= 0, "jitter_s", f"expected a time >= 0 s, got {self.jitter_s:g}")
        if self.downlink_bps is not None:
            _check(self.downlink_bps > 0, "downlink_bps", f"expected a positive rate in bit/s, got {self.downlink_bps:g}")
        _check(self.radio_energy_j_per_bit >= 0, "radio_energy_j_per_bit",
               f"expected an energy >= 0 J/bit, got {self.radio_energy_j_per_bit:g}")
        _check(self.shaper_burst_bytes >= 0, "shaper_burst_bytes", f"expected >= 0, got {self.shaper_burst_bytes:g}")
        _check(self.rto_min_s > 0, "rto_min_s", f"expected a positive time, got {self.rto_min_s:g}")

    # --- construction ------------------------------------------------------------------------------------
    @classmethod
    def ideal(cls, uplink_bps: float, **fields: Any) -> Link:
        """The paper's link: payload bits / rate (its Mbps is 2**20 bit/s: pass 3 * 2**20 for '3 Mbps')."""
        return cls(uplink_bps=uplink_bps, protocol="ideal", **fields)

    def replace(self, **changes: Any) -> Link:
        """A copy with some fields changed (validated again)."""
        if "trace" not in changes and "uplink_bps" in changes:
            changes["trace"] = None
        return dataclasses.replace(self, **changes)

    @property
    def model(self) -> LinkModel:
        """What `protocol` does with a payload (the registered link model of that name)."""
        return link_model(self.protocol)

    # --- sizes -------------------------------------------------------------------------------------------
    @property
    def mss_bytes(self) -> int:
        """TCP payload bytes per full segment."""
        return self.mtu_bytes - self.header_bytes

    @property
    def packet_overhead_bytes(self) -> int:
        """Bytes the bottleneck serialises per packet besides the payload (0 for an ideal link)."""
        return self.model.packet_overhead_bytes(self)

    def segments(self, payload_bytes: np.ndarray | float) -> np.ndarray:
        """Packets needed for `payload_bytes` (0 for an empty payload)."""
        return np.ceil(np.asarray(payload_bytes, dtype=float) / self.mss_bytes)

    def wire_bytes(self, payload_bytes: np.ndarray | float) -> np.ndarray:
        """Bytes the uplink serialises for a payload: payload plus per-packet headers and framing."""
        return self.model.wire_bytes(self, np.asarray(payload_bytes, dtype=float))

    # --- time and energy ---------------------------------------------------------------------------------
    def transfer_time_s(self, payload_bytes: np.ndarray | float, start_s: float | None = None) -> np.ndarray | float:
        """Seconds from the start of an upload of `payload_bytes` until its last byte has arrived.

        Vectorised over numpy arrays of payload sizes (a float for a number); `start_s` places the upload in
        the bandwidth trace. With a trace and no `start_s`: the mean over uploads started at TRACE_STARTS
        instants spread evenly over the trace's period (stratified midpoints), i.e. the expected time of an
        upload starting at a random moment: what `run` and `plan` minimise, and what netsim simulates.
        """
        if self.trace is None or start_s is not None:
            return self._started_at_s(payload_bytes, start_s or 0.0)
        payload = np.asarray(payload_bytes, dtype=float)
        sizes, where = np.unique(payload, return_inverse=True)  # a search's payloads take few distinct sizes
        starts = (np.arange(TRACE_STARTS) + 0.5) / TRACE_STARTS * self.trace.period_s
        mean = np.mean([np.asarray(self._started_at_s(sizes, float(s))) for s in starts], axis=0)
        times = mean[where].reshape(payload.shape)
        return float(times) if np.ndim(payload_bytes) == 0 else times

    def _started_at_s(self, payload_bytes: np.ndarray | float, start_s: float) -> np.ndarray | float:
        """The model's time of uploads started at `start_s` (same shape as `payload_bytes`)."""
        payload = np.asarray(payload_bytes, dtype=float)
        if np.any(payload < 0) or not np.all(np.isfinite(payload)):
            raise ValueError("payload_bytes must be finite and >= 0")
        time = self.model.transfer_time_s(self, payload, start_s)
        return float(time) if np.ndim(payload_bytes) == 0 else time

    def downlink_time_s(self, result_bytes: np.ndarray | float) -> np.ndarray | float:
        """Seconds to return a result of `result_bytes` to the device over the downlink."""
        downlink = self.replace(uplink_bps=self.downlink_bps or self.uplink_bps, shaper_burst_bytes=0.0,
                                new_connection=False)
        return downlink.transfer_time_s(result_bytes)

    def radio_energy_j(self, payload_bytes: np.ndarray | float) -> np.ndarray:
        """Joules the edge radio spends transmitting a payload (wire bits x energy per bit, retransmissions included)."""
        retransmission_factor = 1.0 / (1.0 - self.loss_rate)
        return self.wire_bytes(payload_bytes) * 8.0 * self.radio_energy_j_per_bit * retransmission_factor

    def serialisation_time_s(self, bits: np.ndarray | float, start_s: np.ndarray | float = 0.0) -> np.ndarray:
        """Seconds the uplink needs to put `bits` on the wire from `start_s` (trace-aware)."""
        if self.trace is not None:
            return self.trace.time_to_send_s(bits, start_s)
        return np.asarray(bits, dtype=float) / self.uplink_bps


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise UserError(message, key)
