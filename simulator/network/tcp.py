"""Analytic TCP upload time: what one tensor upload costs on a `Link`, vectorised over payload sizes.

Without loss the model follows the sender round by round (slow start doubles the window every round trip):
round k sends min(window, remaining) segments back to back at the bottleneck rate, and the next round starts
when the first ACK of this round is back (its first segment serialised + one RTT) or when the bottleneck has
finished this round, whichever is later. The last byte arrives RTT / 2 after it was serialised, plus
jitter: a round's first ACK carries the mean jitter J / 2, the last packet the expected maximum of the
draws of the packets just before it, which may not overtake each other (an approximation; the tests report
its error). A new connection adds one RTT of handshake before the first data segment. A token-bucket
shaper's burst lets its first bytes through without waiting.

With loss p the expected time is an approximation in the spirit of Cardwell, Savage & Anderson (2000,
"Modeling TCP latency"): slow start until the first loss (expected (1 - (1-p)^d)(1-p)/p + 1 of the d
segments), then mean-field congestion-avoidance rounds with selective ACKs (a round with a loss halves the
window, one without grows it by a segment; every packet is sent 1 / (1 - p) times), plus a timeout when one
of the last three segments is lost and one RTT when another segment of the last window is. The tests
report its error against the segment-level simulation.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import simpy

from simulator.network.link_models import LinkModel
from simulator.network.simulation import TcpUpload

if TYPE_CHECKING:  # the model reads a Link's fields; the Link looks its model up by protocol
    from simulator.network.link import Link

_MAX_ROUNDS = 64


class TcpLink(LinkModel):
    """TCP over the link: per-packet headers and framing, slow start, loss (`protocol: tcp`, the default)."""

    name = "tcp"
    loss_bounded = True  # the analytic model agrees with the simulation up to limits.MAX_ANALYTIC_LOSS

    def packet_overhead_bytes(self, link: Link) -> int:
        return link.header_bytes + link.framing_bytes

    def wire_bytes(self, link: Link, payload_bytes: np.ndarray) -> np.ndarray:
        payload = np.asarray(payload_bytes, dtype=float)
        return payload + link.segments(payload) * self.packet_overhead_bytes(link)

    def transfer_time_s(self, link: Link, payload_bytes: np.ndarray, start_s: float) -> np.ndarray:
        """The round model above (an empty payload takes no time)."""
        payload = np.asarray(payload_bytes, dtype=float)
        time = _tcp_time_s(link, payload.ravel(), start_s).reshape(payload.shape)
        return np.where(payload > 0, time, 0.0)

    def simulate_upload_s(self, link: Link, payload_bytes: int, rng: np.random.Generator, start_s: float) -> float:
        """The segment-level SimPy simulation of one upload (`simulation.TcpUpload`)."""
        env = simpy.Environment()
        upload = TcpUpload(env, link, int(payload_bytes), rng, trace_offset_s=start_s)
        env.process(upload.start())
        env.run(until=upload.finished)
        return float(env.now)  # the time `finished` fired: the receiver holds every byte


def _train_jitter_s(link: Link, segments: np.ndarray) -> np.ndarray:
    """Expected extra delay of the last of `segments` packets sent back to back, one serialisation time s
    apart, when each is delayed by a uniform [0, J] draw but none may overtake another: the expected maximum
    of U_k - k s over the packets, integral over [0, J] of 1 - prod_k min(1, (x + k s) / J)."""
    if link.jitter_s == 0:
        return np.zeros(segments.shape)
    jitter = link.jitter_s
    spacing_s = (link.mss_bytes + link.packet_overhead_bytes) * 8.0 / link.uplink_bps
    reach = int(min(np.ceil(jitter / spacing_s), 10_000))  # packets further back cannot hold the last one up
    x = (np.arange(256) + 0.5) / 256 * jitter
    log_cdf = np.log(np.clip((x[None, :] + spacing_s * np.arange(reach)[:, None]) / jitter, 1e-300, 1.0))
    by_length = np.concatenate([[0.0], jitter - np.mean(np.exp(np.cumsum(log_cdf, axis=0)), axis=1) * jitter])
    return by_length[np.clip(segments, 1, reach).astype(int)]


def _tcp_time_s(link: Link, payload: np.ndarray, start_s: float) -> np.ndarray:
    segments = link.segments(payload)
    wire_bits = link.wire_bytes(payload) * 8.0
    one_way_s = link.rtt_s / 2.0 + _train_jitter_s(link, segments)
    first_data_s = start_s + (link.rtt_s if link.new_connection else 0.0)
    loss = link.loss_rate
    if loss == 0:
        return _slow_start_rounds_s(link, segments, wire_bits, first_data_s) - start_s + one_way_s
    survive = (1.0 - loss) ** segments
    slow_start_segments = np.minimum(segments, (1.0 - survive) * (1.0 - loss) / loss + 1.0)
    fraction = np.divide(slow_start_segments, segments, out=np.ones_like(segments), where=segments > 0)
    slow_start_end_s = _slow_start_rounds_s(link, slow_start_segments, wire_bits * fraction / (1.0 - loss),
                                            first_data_s)
    window = slow_start_segments / 2.0 + link.initial_window_segments / 2.0  # Cardwell's E[W_ss] (gamma = 2)
    # slow start goes on for the round trip that detection takes, doubling the window the loss then halves
    end_s = _congestion_avoidance_rounds_s(link, segments - slow_start_segments, window, slow_start_end_s)
    # a loss among the last three segments gets too few duplicate ACKs and waits for a timeout; a loss
    # elsewhere in the last window is repaired by fast retransmit about one RTT later
    tail = np.minimum(segments, 3.0)
    tail_loss = 1.0 - (1.0 - loss) ** tail
    last_window = np.clip(np.minimum(window, segments) - tail, 0.0, None)
    window_loss = (1.0 - tail_loss) * (1.0 - (1.0 - loss) ** last_window)
    timeout_s = link.rtt_s + link.rto_min_s
    return end_s - start_s + tail_loss * timeout_s + window_loss * link.rtt_s + one_way_s


def _congestion_avoidance_rounds_s(link: Link, segments: np.ndarray, window: np.ndarray,
                                   start_s: np.ndarray) -> np.ndarray:
    """Mean-field rounds of congestion avoidance with selective ACKs: each round sends the window
    (retransmissions included) and lasts max(its serialisation, one segment + RTT); a round with a loss
    halves the window (fast retransmit, no timeout in mid-transfer), one without grows it by a segment."""
    loss = link.loss_rate
    segment_bits = (link.mss_bytes + link.packet_overhead_bytes) * 8.0
    now = start_s.copy()
    remaining = segments.astype(float).copy()
    window = np.maximum(window, 2.0)
    last_byte_sent = start_s.copy()
    while True:
        active = remaining > 1e-9
        if not active.any():
            return last_byte_sent
        sending = np.minimum(window, remaining)
        serialise = link.serialisation_time_s(sending * segment_bits / (1.0 - loss), now)
        last_byte_sent = np.where(active, now + serialise, last_byte_sent)
        round_s = np.maximum(serialise, link.serialisation_time_s(segment_bits, now) + link.rtt_s
                             + link.jitter_s / 2.0)
        lossy = 1.0 - (1.0 - loss) ** sending
        now = np.where(active, now + round_s, now)
        window = np.where(active, lossy * np.maximum(window / 2.0, 2.0) + (1.0 - lossy) * (window + 1.0), window)
        remaining = np.where(active, remaining - sending, remaining)


def _slow_start_rounds_s(link: Link, segments: np.ndarray, wire_bits: np.ndarray, start_s: float) -> np.ndarray:
    """Time the last of `segments` (carrying `wire_bits`) leaves the bottleneck, sent in slow-start rounds."""
    segment_bits = (link.mss_bytes + link.packet_overhead_bytes) * 8.0
    now = np.full(segments.shape, start_s)
    remaining_segments = segments.astype(float).copy()
    remaining_bits = wire_bits.astype(float).copy()
    credit_bits = np.full(segments.shape, link.shaper_burst_bytes * 8.0)
    window = np.full(segments.shape, np.inf if link.window_open else float(link.initial_window_segments))
    last_byte_sent = np.full(segments.shape, start_s)
    for _ in range(_MAX_ROUNDS):
        active = remaining_segments > 1e-9
        if not active.any():
            return last_byte_sent
        sending = np.minimum(window, remaining_segments)
        last_round = sending >= remaining_segments - 1e-9
        bits = np.where(last_round, remaining_bits, sending * segment_bits)
        free = np.minimum(credit_bits, bits)
        round_end = now + link.serialisation_time_s(bits - free, now)
        first_segment_bits = np.maximum(np.minimum(segment_bits, bits) - free, 0.0)
        # a round's first segment follows a pause and is rarely held up by the one before: mean jitter
        first_ack = now + link.serialisation_time_s(first_segment_bits, now) + link.rtt_s + link.jitter_s / 2.0
        last_byte_sent = np.where(active & last_round, round_end, last_byte_sent)
        credit_bits = np.where(active, credit_bits - free, credit_bits)
        remaining_segments = np.where(active, remaining_segments - sending, remaining_segments)
        remaining_bits = np.where(active, remaining_bits - bits, remaining_bits)
        now = np.where(active, np.maximum(round_end, first_ack), now)
        window = window * 2.0
    raise RuntimeError("TCP round model did not converge")  # pragma: no cover - 64 doublings cover any payload
