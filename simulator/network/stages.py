"""SimPy building blocks of a link: a transmit stage (FIFO or fair share) and a propagation stage.

A packet or a whole upload is first serialised by a transmitter at the link rate (the only shared, queued
part), then travels for the one-way delay in a separate propagation stage that never holds the transmitter.
`send(bits, flow)` returns a SimPy event that fires, in simulated seconds, when the last bit has been put on
the wire; a process yields it, a callback-driven model attaches to it. Used by the segment-level TCP
simulation, the shared uplink and (later) fleets of devices.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from simulator.network.trace import BandwidthTrace


class Transmitter:
    """Transmit stage serving one job at a time, first come first served, at `rate_bps` (or a trace).

    `trace_offset_s` is the trace time at simulated time 0. `burst_bits` is a token-bucket shaper's credit,
    spent on the first bits sent (the bucket is full at the start; its refill during idle gaps is ignored).
    """

    def __init__(self, env: simpy.Environment, rate_bps: float, trace: BandwidthTrace | None = None,
                 trace_offset_s: float = 0.0, burst_bits: float = 0.0) -> None:
        self.env = env
        self.rate_bps = float(rate_bps)
        self.trace = trace
        self.trace_offset_s = float(trace_offset_s)
        self.burst_bits = float(burst_bits)
        self.busy = False
        self._queue: deque[tuple[float, simpy.Event]] = deque()

    def send(self, bits: float, flow: Any = None) -> simpy.Event:
        """An event that fires when `bits` have been serialised (after the jobs queued before them)."""
        done = self.env.event()
        self._queue.append((bits, done))
        if not self.busy:
            self._start_next()
        return done

    def serialisation_time_s(self, bits: float) -> float:
        """Seconds to put `bits` on the wire from now (shaper credit first, then the rate or trace)."""
        free = min(self.burst_bits, bits)
        self.burst_bits -= free
        bits -= free
        if self.trace is not None:
            return float(self.trace.time_to_send_s(bits, self.env.now + self.trace_offset_s))
        return bits / self.rate_bps

    def _start_next(self) -> None:
        if not self._queue:
            self.busy = False
            return
        self.busy = True
        bits, done = self._queue.popleft()
        self.env.timeout(self.serialisation_time_s(bits)).callbacks.append(lambda _event: self._finish(done))

    def _finish(self, done: simpy.Event) -> None:
        done.succeed(self.env.now)
        self._start_next()


class FairShareTransmitter:
    """Transmit stage shared equally by the backlogged flows (processor sharing, per-packet round robin's
    fluid limit); each flow's own jobs are served in order. Same `send` interface as `Transmitter`."""

    def __init__(self, env: simpy.Environment, rate_bps: float, trace: BandwidthTrace | None = None,
                 trace_offset_s: float = 0.0) -> None:
        self.env = env
        self.rate_bps = float(rate_bps)
        self.trace = trace
        self.trace_offset_s = float(trace_offset_s)
        self._flows: dict[Any, deque[list]] = {}  # flow -> deque of [remaining_bits, done event, size_bits]
        self._last_update_s = 0.0
        self._version = 0

    @property
    def busy(self) -> bool:
        return bool(self._flows)

    def send(self, bits: float, flow: Any = None) -> simpy.Event:
        done = self.env.event()
        self._advance()
        self._flows.setdefault(flow, deque()).append([float(bits), done, max(float(bits), 1.0)])
        self._schedule()
        return done

    def _capacity_bits(self, start_s: float, end_s: float) -> float:
        if self.trace is None:
            return (end_s - start_s) * self.rate_bps
        t0, t1 = start_s + self.trace_offset_s, end_s + self.trace_offset_s
        return float(self.trace.bits_by(t1) - self.trace.bits_by(t0))

    def _advance(self) -> None:
        """Give every backlogged flow its share of the capacity since the last update."""
        now = self.env.now
        if self._flows and now > self._last_update_s:
            share = self._capacity_bits(self._last_update_s, now) / len(self._flows)
            for queue in self._flows.values():
                queue[0][0] -= share
        self._last_update_s = now

    def _schedule(self) -> None:
        self._version += 1
        if not self._flows:
            return
        target = min(self._flows, key=lambda flow: self._flows[flow][0][0])
        needed_bits = max(self._flows[target][0][0], 0.0) * len(self._flows)
        if self.trace is None:
            delay = needed_bits / self.rate_bps
        else:
            delay = float(self.trace.time_to_send_s(needed_bits, self.env.now + self.trace_offset_s))
        version = self._version
        self.env.timeout(delay).callbacks.append(lambda _event: self._complete(version, target))

    def _complete(self, version: int, target: Any) -> None:
        if version != self._version:
            return  # superseded by a later arrival or completion
        self._advance()
        # the target job is done by construction; others finishing at the same time within rounding too
        done = [f for f, queue in self._flows.items() if f == target or queue[0][0] <= 1e-9 * queue[0][2]]
        for flow in done:
            queue = self._flows[flow]
            queue.popleft()[1].succeed(self.env.now)
            if not queue:
                del self._flows[flow]
        self._schedule()


def make_transmitter(env: simpy.Environment, discipline: str, rate_bps: float,
                     trace: BandwidthTrace | None = None, trace_offset_s: float = 0.0):
    """A `Transmitter` ("fifo") or `FairShareTransmitter` ("fair")."""
    if discipline == "fifo":
        return Transmitter(env, rate_bps, trace, trace_offset_s)
    if discipline == "fair":
        return FairShareTransmitter(env, rate_bps, trace, trace_offset_s)
    raise ValueError(f"discipline: expected 'fifo' or 'fair', got {discipline!r}")


class DelayLine:
    """Propagation stage: delivers each item `delay_s` (+ uniform jitter in [0, jitter_s]) after it enters,
    in the order it entered, by calling `deliver(item)`. Holds nothing while items are in flight."""

    def __init__(self, env: simpy.Environment, delay_s: float, deliver: Callable[[Any], None],
                 jitter_s: float = 0.0, rng: np.random.Generator | None = None) -> None:
        if jitter_s > 0 and rng is None:
            raise ValueError("a DelayLine with jitter needs a numpy Generator")
        self.env = env
        self.delay_s = float(delay_s)
        self.jitter_s = float(jitter_s)
        self.deliver = deliver
        self.rng = rng
        self._last_due_s = -np.inf
        self._last_event: simpy.Event | None = None  # the event the last item rides on

    def put(self, item: Any) -> None:
        jitter = self.rng.uniform(0.0, self.jitter_s) if self.rng is not None and self.jitter_s > 0 else 0.0
        delay = self.delay_s + jitter
        now = self.env.now
        last = self._last_event
        if last is None or last.processed or now + delay > self._last_due_s:
            due = max(now + delay, self._last_due_s)
            last = self._last_event = self.env.timeout(due - now)
            self._last_due_s = now + (due - now)  # the time SimPy schedules
        # an item held behind the previous one rides on the same event: same time, delivered after it
        last.callbacks.append(lambda _event: self.deliver(item))


def transmit(env: simpy.Environment, transmitter, bits: float, flow: Any = None):
    """Process step: wait until `bits` of `flow` have been serialised by `transmitter`."""
    yield transmitter.send(bits, flow)


def propagate(env: simpy.Environment, delay_s: float):
    """Process step: travel for `delay_s` seconds (no transmitter held)."""
    if delay_s > 0:
        yield env.timeout(delay_s)
