"""The fleet in SimPy, the reference the vectorised recursions are tested against.

Each frame is a process: it queues for its device's edge accelerator (a SimPy resource), computes for the
plan's edge time, is serialised by its link's transmit stage (`simulator.network.stages`: FIFO or fair
share, one per device or per shared access point), propagates for the rest of its transfer in a separate
stage, and joins one GPU's batching queue (round robin over its group's pool in order of arrival at the
cloud). A `BatchingServer` keeps a time-averaged monitor of its queue length (for Little's law).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import simpy

from simulator.capacity.fleet import Fleet, Traffic
from simulator.capacity.records import FleetRun
from simulator.network.stages import make_transmitter, propagate, transmit


class BatchingServer:
    """One GPU with a dynamic batcher: a batch starts when the GPU is free and either `max_batch` requests
    wait or the oldest has waited `max_wait_s`; it takes the waiting requests (at most `max_batch`) and holds
    the GPU for `batch_latency_s[size]` seconds (times `service_factor()` when given). `on_done(request,
    start_s, service_s, size)` is called for each request when its batch ends.

    Monitors: `queue_area` (integral of the queue length over time, request-seconds), `arrived`, `served`.
    """

    def __init__(self, env: simpy.Environment, max_batch: int, max_wait_s: float, batch_latency_s,
                 on_done: Callable[[Any, float, float, int], None],
                 service_factor: Callable[[], float] | None = None) -> None:
        self.env = env
        self.max_batch = int(max_batch)
        self.max_wait_s = float(max_wait_s)
        self.batch_latency_s = np.asarray(batch_latency_s, dtype=float)
        self.on_done = on_done
        self.service_factor = service_factor
        self.queue: deque[tuple[object, float]] = deque()
        self.queue_area = 0.0
        self.arrived = 0
        self.served = 0
        self.busy_s = 0.0
        self._last_change_s = 0.0
        self._wakeup = env.event()
        env.process(self._serve())

    def _account(self) -> None:
        now = self.env.now
        self.queue_area += len(self.queue) * (now - self._last_change_s)
        self._last_change_s = now

    def queue_area_now(self) -> float:
        """The monitor's integral of the queue length from time 0 to now (request-seconds)."""
        self._account()
        return self.queue_area

    def put(self, request: object) -> None:
        """A request joins the queue now."""
        self._account()
        self.queue.append((request, self.env.now))
        self.arrived += 1
        if not self._wakeup.triggered:
            self._wakeup.succeed()

    def _wait_for_arrival(self):
        self._wakeup = self.env.event()
        return self._wakeup

    def _serve(self):
        env = self.env
        while True:
            while not self.queue:
                yield self._wait_for_arrival()
            deadline = self.queue[0][1] + self.max_wait_s
            while len(self.queue) < self.max_batch and env.now < deadline:
                arrival = self._wait_for_arrival()
                yield env.timeout(deadline - env.now) | arrival
            self._account()
            size = min(len(self.queue), self.max_batch)
            batch = [self.queue.popleft()[0] for _ in range(size)]
            start = env.now
            service = float(self.batch_latency_s[size])
            if self.service_factor is not None:
                service *= self.service_factor()
            self.busy_s += service
            yield env.timeout(service)
            self.served += size
            for request in batch:
                self.on_done(request, start, service, size)


def simulate_simpy(fleet: Fleet, traffic: Traffic, duration_s: float) -> FleetRun:
    """Every request of `traffic` through the SimPy model of the fleet (see the module docstring)."""
    env = simpy.Environment()
    groups = fleet.groups
    n = len(traffic)
    out = {name: np.zeros(n) for name in ("edge_wait_s", "edge_s", "uplink_wait_s", "uplink_s", "gpu_wait_s",
                                          "gpu_s", "done_s", "at_cloud")}
    batch_size = np.zeros(n, dtype=np.int64)
    edges: dict[int, simpy.Resource] = {}
    links: dict[int, object] = {}
    link_of = fleet.link_of_device(traffic.device)

    def finished(request: int, start: float, service: float, size: int) -> None:
        out["gpu_wait_s"][request] = start - out["at_cloud"][request]
        out["gpu_s"][request] = service
        out["done_s"][request] = env.now
        batch_size[request] = size

    pools = [[BatchingServer(env, g.max_batch, fleet.max_wait_s, g.batch_latency_s, finished)
              for _ in range(g.gpus)] for g in groups]
    sent = [0] * len(groups)
    ser_of_group = [fleet.serialisation_s(g.payload_bytes) for g in groups]
    after_of_group = [fleet.after_serialisation_s(g.payload_bytes) for g in groups]
    rate = fleet.link.uplink_bps

    def frame(request: int):
        group = int(traffic.group[request])
        device = int(traffic.device[request])
        plan = groups[group]
        arrived = env.now
        edge = edges.get(device) or edges.setdefault(device, simpy.Resource(env, capacity=1))
        with edge.request() as slot:
            yield slot
            out["edge_wait_s"][request] = env.now - arrived
            yield env.timeout(plan.edge_s)
        out["edge_s"][request] = plan.edge_s
        ser = ser_of_group[group]
        if ser <= 0:
            out["done_s"][request] = env.now
            return
        link_id = int(link_of[request])
        transmitter = links.get(link_id)
        if transmitter is None:
            transmitter = links[link_id] = make_transmitter(env, fleet.discipline if fleet.sharing == "shared"
                                                            else "fifo", rate)
        ready = env.now
        yield from transmit(env, transmitter, ser * rate, flow=device)
        out["uplink_wait_s"][request] = env.now - ready - ser
        yield from propagate(env, after_of_group[group])
        out["uplink_s"][request] = ser + after_of_group[group]
        out["at_cloud"][request] = env.now
        pool = pools[group]
        pool[sent[group] % len(pool)].put(request)
        sent[group] += 1

    order = np.argsort(traffic.arrival_s, kind="stable")

    def source():
        for request in order.tolist():
            time_s = traffic.arrival_s[request]
            if time_s > env.now:
                yield env.timeout(time_s - env.now)
            env.process(frame(request))

    env.process(source())
    env.run()
    gpu_busy = np.array([sum(server.busy_s for server in pool) for pool in pools])
    uplink_busy = float(sum(ser_of_group[int(k)] for k in traffic.group)) if n else 0.0
    run = FleetRun("simpy", duration_s, traffic.arrival_s, traffic.group, traffic.device, out["edge_wait_s"],
                   out["edge_s"], out["uplink_wait_s"], out["uplink_s"], out["gpu_wait_s"], out["gpu_s"], batch_size,
                   out["done_s"], gpu_busy, uplink_busy, len(links))
    run.extra["servers"] = pools
    return run
