"""What the evaluator asks of a link: the time, the bytes on the wire and the radio energy of an upload.

`Link` (tcp or ideal) is the implementation autosplit ships; anything with these three methods, vectorised
over numpy arrays of payload sizes in bytes, can stand in for it in a `Scenario`.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np


class TransferModel(Protocol):
    """An uplink from the edge device to the cloud, as the plan evaluation sees it (SI units)."""

    def transfer_time_s(self, payload_bytes: np.ndarray) -> np.ndarray | float:
        """Seconds from the start of each upload until its last byte has arrived."""
        ...

    def wire_bytes(self, payload_bytes: np.ndarray) -> np.ndarray:
        """Bytes the uplink serialises for each payload (framing and headers included)."""
        ...

    def radio_energy_j(self, payload_bytes: np.ndarray) -> np.ndarray:
        """Joules the edge radio spends sending each payload."""
        ...
