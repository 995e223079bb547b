"""A fleet: groups of edge devices (each group one plan and one frame rate), the uplink they share or not,
and a pool of batching GPUs per group. Plain values in SI units; `traffic` draws every device's frames.

A plan, as the fleet sees it, is the edge time per frame, the payload it uploads and the GPU's service time
for a batch of b of its requests (`batch_latency_s[b]`: the cloud suffix at batch b plus the host-to-device
copy of b payloads). Groups do not share GPUs (each runs its own suffix model); they may share uplinks.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from simulator.network.link import Link

ARRIVALS = ("periodic", "poisson")
SHARING = ("per_device", "shared")
DISCIPLINES = ("fifo", "fair")


@dataclass(frozen=True)
class DeviceGroup:
    """Devices running one plan.

    edge_s: edge compute time per frame; payload_bytes: what one frame uploads (0: edge-only, no cloud);
    batch_latency_s: GPU service time of a batch of b requests at index b (index 0 is 0); rate_per_s: frames
    per second per device; arrival: "periodic" (each device at its own random phase, plus a uniform jitter
    in [0, jitter_s]) or "poisson"; gpus: GPUs in this group's pool.
    """

    name: str
    devices: int
    edge_s: float
    payload_bytes: float
    batch_latency_s: np.ndarray
    rate_per_s: float
    arrival: str = "periodic"
    jitter_s: float = 0.0
    gpus: int = 1
    plan: dict = field(default_factory=dict, compare=False)  # where the numbers came from (for the report)

    def __post_init__(self) -> None:
        if self.devices < 0:
            raise ValueError(f"{self.name}: devices: expected >= 0, got {self.devices}")
        if self.gpus < 1:
            raise ValueError(f"{self.name}: gpus: expected at least 1, got {self.gpus}")
        if not self.rate_per_s > 0:
            raise ValueError(f"{self.name}: rate_per_s: expected a positive rate, got {self.rate_per_s:g}")
        if self.arrival not in ARRIVALS:
            raise ValueError(f"{self.name}: arrival: expected one of {', '.join(ARRIVALS)}, got {self.arrival!r}")
        if self.edge_s < 0 or self.payload_bytes < 0 or self.jitter_s < 0:
            raise ValueError(f"{self.name}: edge_s, payload_bytes and jitter_s must be >= 0")

    @property
    def max_batch(self) -> int:
        return len(self.batch_latency_s) - 1

    def with_(self, **changes) -> DeviceGroup:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Fleet:
    """Device groups, their uplink and the batching rule of every GPU.

    sharing: "per_device" (each device its own link, e.g. its own 5G connection) or "shared" (consecutive
    devices, `devices_per_uplink` at a time, behind one access point or cell, served FIFO or fair share);
    max_wait_s: how long a GPU's batcher holds its oldest request waiting for more.
    """

    groups: tuple[DeviceGroup, ...]
    link: Link
    sharing: str = "per_device"
    devices_per_uplink: int = 1
    discipline: str = "fifo"
    max_wait_s: float = 0.0

    def __post_init__(self) -> None:
        if self.sharing not in SHARING:
            raise ValueError(f"sharing: expected one of {', '.join(SHARING)}, got {self.sharing!r}")
        if self.discipline not in DISCIPLINES:
            raise ValueError(f"discipline: expected one of {', '.join(DISCIPLINES)}, got {self.discipline!r}")
        if self.devices_per_uplink < 1:
            raise ValueError(f"devices_per_uplink: expected at least 1, got {self.devices_per_uplink}")
        if self.max_wait_s < 0:
            raise ValueError(f"max_wait_s: expected a time >= 0 s, got {self.max_wait_s:g}")
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"group names must be unique, got {names}")

    @property
    def devices(self) -> int:
        return sum(g.devices for g in self.groups)

    def only(self, name: str, devices: int | None = None, gpus: int | None = None) -> Fleet:
        """This fleet with one group alone (optionally resized): what a per-group capacity search simulates."""
        group = next(g for g in self.groups if g.name == name)
        changes = {k: v for k, v in (("devices", devices), ("gpus", gpus)) if v is not None}
        return dataclasses.replace(self, groups=(group.with_(**changes),))

    # --- per-request constants of the uplink ---------------------------------------------------------------
    def serialisation_s(self, payload_bytes: float) -> float:
        """Seconds an upload holds its link: wire bytes with the expected retransmissions, at the link rate."""
        link = self.link
        if payload_bytes <= 0:
            return 0.0
        return float(link.wire_bytes(payload_bytes)) * 8.0 / (1.0 - link.loss_rate) / link.uplink_bps

    def after_serialisation_s(self, payload_bytes: float) -> float:
        """Seconds from the last bit serialised to the last byte delivered. A device's own link: the rest of
        the analytic TCP transfer time (round trips of slow start, propagation); a shared link: RTT / 2, as
        `simulator.network.shared_uplink` models it."""
        if payload_bytes <= 0:
            return 0.0
        if self.sharing == "shared":
            return self.link.rtt_s / 2.0
        total = float(self.link.transfer_time_s(payload_bytes))
        return max(total - self.serialisation_s(payload_bytes), 0.0)

    def link_of_device(self, device: np.ndarray) -> np.ndarray:
        """Which uplink each (global) device index uses."""
        return device if self.sharing == "per_device" else device // self.devices_per_uplink


@dataclass(frozen=True)
class Traffic:
    """Every frame of a fleet, sorted by (device, time): arrival time (s), device (global index), group index."""

    arrival_s: np.ndarray
    device: np.ndarray
    group: np.ndarray

    def __len__(self) -> int:
        return self.arrival_s.size


def traffic(fleet: Fleet, duration_s: float, rng: np.random.Generator) -> Traffic:
    """Frames of every device in [0, duration_s): periodic (random phase, uniform jitter) or Poisson."""
    if not duration_s > 0:
        raise ValueError(f"duration_s: expected a positive time, got {duration_s:g}")
    times, devices, groups = [], [], []
    first_device = 0
    for index, group in enumerate(fleet.groups):
        n = group.devices
        if n == 0:
            continue
        interval = 1.0 / group.rate_per_s
        if group.arrival == "periodic":
            per_device = int(np.ceil(duration_s / interval)) + 1
            grid = rng.uniform(0.0, interval, size=(n, 1)) + interval * np.arange(per_device)[None, :]
            if group.jitter_s > 0:
                grid = grid + rng.uniform(0.0, group.jitter_s, size=grid.shape)
                if group.jitter_s >= 0.5 * interval:  # below, frames a period apart cannot swap
                    grid.sort(axis=1)
        else:
            mean = duration_s * group.rate_per_s
            per_device = int(mean + 8.0 * np.sqrt(mean) + 16)
            grid = np.cumsum(rng.exponential(interval, size=(n, per_device)), axis=1)
        keep = grid < duration_s
        times.append(grid[keep])
        row = np.broadcast_to(np.arange(first_device, first_device + n)[:, None], grid.shape)
        devices.append(row[keep])
        groups.append(np.full(int(keep.sum()), index, dtype=np.int32))
        first_device += n
    if not times:
        return Traffic(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32))
    if len(times) == 1:  # one group: its arrays as they are
        return Traffic(times[0], devices[0].astype(np.int64, copy=False), groups[0])
    return Traffic(np.concatenate(times), np.concatenate(devices).astype(np.int64, copy=False), np.concatenate(groups))
