"""The link models by name: what a `Link`'s `protocol` does with a payload, one implementation per protocol.

A link model answers, from a `Link`'s fields (rates, RTT, MTU, loss, trace), the bytes a payload puts on the
wire, the analytic transfer time the search minimises (vectorised over payload sizes) and one simulated
upload (what `autosplit netsim` draws its distributions from). `ideal` (the Auto-Split paper's bytes / rate)
lives here; `tcp` (framing, slow start, loss) in `tcp.py`; `link.py` registers both. A new model is one
`LinkModel` subclass and one `register_link_model` call; `Link(protocol=NAME)` then uses it.
"""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import numpy as np

from hardware_models.errors import UserError, suggest

if TYPE_CHECKING:  # a model reads a Link's fields; the Link looks its model up here
    from simulator.network.link import Link


class LinkModel(abc.ABC):
    """How a protocol carries a payload over a `Link` (SI units: bytes, seconds)."""

    name: str
    # whether `transfer_time_s` stops agreeing with `simulate_upload_s` at high loss (the search then bounds it)
    loss_bounded: bool = False

    @abc.abstractmethod
    def packet_overhead_bytes(self, link: Link) -> int:
        """Bytes the bottleneck serialises per packet besides the payload."""

    @abc.abstractmethod
    def wire_bytes(self, link: Link, payload_bytes: np.ndarray) -> np.ndarray:
        """Bytes the uplink serialises for each payload."""

    @abc.abstractmethod
    def transfer_time_s(self, link: Link, payload_bytes: np.ndarray, start_s: float) -> np.ndarray:
        """Seconds from the start of each upload (at `start_s` in the link's trace) until its last byte has
        arrived; `payload_bytes` is finite and >= 0."""

    def simulate_upload_s(self, link: Link, payload_bytes: int, rng: np.random.Generator, start_s: float) -> float:
        """Seconds one simulated upload of `payload_bytes` > 0 takes; by default the analytic time (a model
        without randomness)."""
        return float(self.transfer_time_s(link, np.asarray(float(payload_bytes)), start_s))


class IdealLink(LinkModel):
    """The Auto-Split paper's link: payload bits / rate (trace-aware), no framing, no round trip, no slow start."""

    name = "ideal"

    def packet_overhead_bytes(self, link: Link) -> int:
        return 0

    def wire_bytes(self, link: Link, payload_bytes: np.ndarray) -> np.ndarray:
        return np.asarray(payload_bytes, dtype=float)

    def transfer_time_s(self, link: Link, payload_bytes: np.ndarray, start_s: float) -> np.ndarray:
        return np.asarray(link.serialisation_time_s(np.asarray(payload_bytes, dtype=float) * 8.0, start_s))


_MODELS: dict[str, LinkModel] = {}


def register_link_model(model: LinkModel) -> LinkModel:
    """Make `model` the link model of `Link(protocol=model.name)`; a ValueError when the name is taken."""
    if model.name in _MODELS:
        raise ValueError(f"link model {model.name!r} is registered already")
    _MODELS[model.name] = model
    return model


def unregister_link_model(name: str) -> None:
    """Forget the link model `name` (a KeyError when it is not registered)."""
    del _MODELS[name]


def link_model_names() -> tuple[str, ...]:
    """The registered link models' names, in registration order."""
    return tuple(_MODELS)


def link_model(name: str) -> LinkModel:
    """The link model called `name`; a UserError naming the close names and every choice."""
    model = _MODELS.get(name)
    if model is None:
        names = link_model_names()
        raise UserError(f"protocol: expected one of {', '.join(names)}, got {name!r}{suggest(str(name), names)}")
    return model
