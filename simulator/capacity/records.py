"""What a fleet simulation returns, whichever path ran it: every request's time in every stage, plus the
busy time of every GPU pool and uplink."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STAGES = ("edge_wait_s", "edge_s", "uplink_wait_s", "uplink_s", "gpu_wait_s", "gpu_s")


@dataclass
class FleetRun:
    """Per request (in `Traffic` order): arrival, group, device and the seconds spent in each stage of
    STAGES (waits are queueing; `uplink_s` is serialisation plus what follows it; `gpu_s` is its batch's
    service), the size of its batch and when it finished. `gpu_busy_s[g]`: summed batch service of group g's
    pool; `uplink_busy_s`: summed serialisation on all links; `path`: "vectorised" or "simpy"."""

    path: str
    duration_s: float
    arrival_s: np.ndarray
    group: np.ndarray
    device: np.ndarray
    edge_wait_s: np.ndarray
    edge_s: np.ndarray
    uplink_wait_s: np.ndarray
    uplink_s: np.ndarray
    gpu_wait_s: np.ndarray
    gpu_s: np.ndarray
    batch_size: np.ndarray
    done_s: np.ndarray
    gpu_busy_s: np.ndarray
    uplink_busy_s: float
    links: int
    extra: dict = field(default_factory=dict)

    @property
    def latency_s(self) -> np.ndarray:
        return self.done_s - self.arrival_s

    def __len__(self) -> int:
        return self.arrival_s.size
