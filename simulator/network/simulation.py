"""Segment-level SimPy simulation of one TCP upload over a `Link`, for transfer-time distributions.

The sender keeps a congestion window (slow start from the initial window, +1 segment per ACKed segment,
then +1/cwnd per ACK above ssthresh), puts segments into the uplink's transmit stage, and each serialised
segment then propagates for RTT / 2 (+ jitter) unless the radio lost it. The receiver ACKs every segment it
gets (selectively, as with SACK); ACKs come back after RTT / 2 and are not rate-limited. A segment is declared
lost when three segments sent after it have been ACKed (fast retransmit: ssthresh = cwnd / 2 once per
window) or when nothing was ACKed for a retransmission timeout (RTT + rto_min, doubling on repeats; the
window falls to 1). The upload ends when the receiver holds every byte.

Without loss or jitter the result matches `tcp.transfer_time_s` (the round model); the tests hold them to 1%.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import simpy

from simulator.network.stages import DelayLine, Transmitter

if TYPE_CHECKING:  # the upload reads a Link's fields; a Link's TCP model runs the upload
    from simulator.network.link import Link

_DUPLICATE_THRESHOLD = 3


class TcpUpload:
    """One upload of `payload_bytes` on `link` inside `env`; `finished` fires with the completion time."""

    def __init__(self, env: simpy.Environment, link: Link, payload_bytes: int, rng: np.random.Generator,
                 trace_offset_s: float = 0.0) -> None:
        self.env = env
        self.link = link
        self.rng = rng
        self.finished = env.event()
        mss = link.mss_bytes
        self.n_segments = max(1, math.ceil(payload_bytes / mss))
        last = payload_bytes - (self.n_segments - 1) * mss
        self.segment_bits = np.full(self.n_segments, (mss + link.packet_overhead_bytes) * 8.0)
        self.segment_bits[-1] = (last + link.packet_overhead_bytes) * 8.0
        self.uplink = Transmitter(env, link.uplink_bps, link.trace, trace_offset_s, link.shaper_burst_bytes * 8.0)
        self.forward = DelayLine(env, link.rtt_s / 2.0, self._receive, link.jitter_s, rng)
        self.backward = DelayLine(env, link.rtt_s / 2.0, self._on_ack)
        self.received = np.zeros(self.n_segments, dtype=bool)
        self.received_count = 0
        self.acked = np.zeros(self.n_segments, dtype=bool)
        self.outstanding: dict[int, int] = {}  # segment -> sequence number of its latest transmission
        self.retransmit_queue: list[int] = []
        self.next_new_segment = 0
        self.transmissions = 0
        self.cwnd = float("inf") if link.window_open else float(link.initial_window_segments)
        self.ssthresh = float("inf")
        self.recovery_until = -1  # transmissions up to this sequence number belong to the current recovery
        self.rto_s = link.rtt_s + link.rto_min_s
        self.rto_deadline_s = math.inf
        self.retransmissions = 0

    # --- sender ------------------------------------------------------------------------------------------
    def start(self):
        """Process: optional handshake, then the first window, then the retransmission timer."""
        if self.link.new_connection:
            yield self.env.timeout(self.link.rtt_s)
        self._fill_window()
        while not self.finished.triggered:
            wait = self.rto_deadline_s - self.env.now
            if wait > 0:
                yield self.env.timeout(wait) | self.finished
                continue
            self._on_timeout()

    def _send(self, segment: int) -> None:
        self.transmissions += 1
        self.outstanding[segment] = self.transmissions
        if self.rto_deadline_s == math.inf:
            self.rto_deadline_s = self.env.now + self.rto_s
        lost = self.link.loss_rate > 0 and self.rng.random() < self.link.loss_rate
        sequence = self.transmissions
        sent = self.uplink.send(self.segment_bits[segment])
        if not lost:
            sent.callbacks.append(lambda _event: self.forward.put((segment, sequence)))

    def _fill_window(self) -> None:
        while len(self.outstanding) < self.cwnd:
            while self.retransmit_queue and self.acked[self.retransmit_queue[0]]:
                self.retransmit_queue.pop(0)
            if self.retransmit_queue:
                self.retransmissions += 1
                self._send(self.retransmit_queue.pop(0))
            elif self.next_new_segment < self.n_segments:
                self.next_new_segment += 1
                self._send(self.next_new_segment - 1)
            else:
                break

    def _on_ack(self, ack: tuple[int, int]) -> None:
        segment, sequence = ack
        if self.finished.triggered or self.acked[segment]:
            return
        self.acked[segment] = True
        self.outstanding.pop(segment, None)
        self.rto_s = self.link.rtt_s + self.link.rto_min_s
        self.rto_deadline_s = self.env.now + self.rto_s if self.outstanding else math.inf
        self.cwnd += 1.0 if self.cwnd < self.ssthresh else 1.0 / self.cwnd
        # the dict is in transmission order (a segment is re-inserted only after being declared lost)
        lost = []
        for s, q in self.outstanding.items():
            if q > sequence - _DUPLICATE_THRESHOLD:
                break
            lost.append(s)
        for s in lost:
            if self.outstanding[s] > self.recovery_until:
                self.ssthresh = max(len(self.outstanding) / 2.0, 2.0)
                self.cwnd = self.ssthresh
                self.recovery_until = self.transmissions
            del self.outstanding[s]
            self.retransmit_queue.append(s)
        self._fill_window()

    def _on_timeout(self) -> None:
        self.ssthresh = max(len(self.outstanding) / 2.0, 2.0)
        self.cwnd = 1.0
        self.recovery_until = self.transmissions
        self.retransmit_queue = sorted(set(self.retransmit_queue) | set(self.outstanding))
        self.outstanding.clear()
        self.rto_s *= 2.0
        self.rto_deadline_s = math.inf
        self._fill_window()

    # --- receiver ----------------------------------------------------------------------------------------
    def _receive(self, packet: tuple[int, int]) -> None:
        segment, _sequence = packet
        if not self.received[segment]:
            self.received[segment] = True
            self.received_count += 1
            if self.received_count == self.n_segments:
                self.finished.succeed(self.env.now)
        self.backward.put(packet)


def simulate_upload_s(link: Link, payload_bytes: int, rng: np.random.Generator, start_s: float = 0.0) -> float:
    """Seconds one simulated upload takes (from its start until the receiver holds every byte), as the link's
    model simulates it (TCP: `TcpUpload`; ideal: its analytic time)."""
    if payload_bytes <= 0:
        return 0.0
    return link.model.simulate_upload_s(link, int(payload_bytes), rng, start_s)


def simulate_transfer_times_s(link: Link, payload_bytes: int, runs: int, seed: int | np.random.Generator = 0,
                              start_s: float | None = None) -> np.ndarray:
    """Transfer times of `runs` independent uploads (seconds).

    With a bandwidth trace each upload starts at a uniformly drawn point of the trace unless `start_s` is
    given. A link without loss, jitter or trace is deterministic: it is simulated once and repeated.
    """
    if runs < 1:
        raise ValueError(f"runs: expected at least 1, got {runs}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    deterministic = link.loss_rate == 0 and link.jitter_s == 0 and (link.trace is None or start_s is not None)
    if deterministic:
        return np.full(runs, simulate_upload_s(link, payload_bytes, rng, start_s or 0.0))
    if start_s is None and link.trace is not None:
        starts = rng.uniform(0.0, link.trace.period_s, size=runs)
    else:
        starts = np.full(runs, start_s or 0.0)
    return np.array([simulate_upload_s(link, payload_bytes, rng, float(s)) for s in starts])

