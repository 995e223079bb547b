"""The interface every accelerator model answers: the cost of one layer at given bit-widths."""
from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer on one accelerator. Cycles at the accelerator's clock; SI units otherwise.

    `total_cycles = compute_cycles + stall_cycles + overhead_cycles`, `latency_s = total_cycles / clock`.
    `energy_parts_j` and `parts` break energy and time down by named action (e.g. "mac", "sram", "dram").
    """

    name: str
    compute_cycles: float
    stall_cycles: float
    latency_s: float
    energy_j: float
    dram_bytes: float
    overhead_s: float = 0.0
    overhead_cycles: float = 0.0
    energy_parts_j: dict[str, float] = field(default_factory=dict)
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def total_cycles(self) -> float:
        return self.compute_cycles + self.stall_cycles + self.overhead_cycles

    def as_row(self) -> dict[str, float | str]:
        """The row of `autosplit layer-cost` (DESIGN.md's JSON keys)."""
        return {
            "name": self.name,
            "compute_cycles": self.compute_cycles,
            "stall_cycles": self.stall_cycles,
            "total_cycles": self.total_cycles,
            "latency_s": self.latency_s,
            "energy_j": self.energy_j,
            "dram_bytes": self.dram_bytes,
            "overhead_s": self.overhead_s,
        }


class Accelerator(abc.ABC):
    """An analytical accelerator model.

    Subclasses implement `layer_cost` and `from_config`; `network_cost` sums the layers and may be overridden
    where a whole network is not the sum of its layers timed alone (a GPU replaying a captured graph). The
    other members are plug-in points with the defaults of a model that lacks the feature: a copy of received
    tensors to device memory (`copy_to_device_s`), execution modes (`mode`, `with_mode`), evidence.
    """

    kind: ClassVar[str]  # the preset's `kind:` (systolic, dsp, npu, gpu, cpu, measured, or a registered one)
    # True where `supported_bits` are the arithmetics it computes in (fp32, fp16, int8: a GPU, a CPU), so a layer
    # runs at exactly one of them; False for an integer datapath that runs the widths it supports
    fixed_precisions: ClassVar[bool] = False
    # why fewer bits may take longer on this kind ('' where they never do): the contract tests
    # (tests/contract/test_hardware_kinds.py) hold every other kind's latency monotone in the bit-widths
    slower_at_fewer_bits: ClassVar[str] = ""
    name: str
    clock_hz: float
    supported_bits: tuple[int, ...]
    preset_evidence: str = ""  # what the preset says it was checked against (its `evidence:`)

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: Mapping[str, Any], source: str) -> Accelerator:
        """The accelerator of a preset mapping (without `kind`); a UserError names `source` and the bad key."""

    @abc.abstractmethod
    def layer_cost(
        self, layer: LayerSpec, weight_bits: int = 8, activation_bits: int = 8, batch: int = 1
    ) -> LayerCost:
        """Cost of `layer` with weights of `weight_bits` and activations of `activation_bits` bits."""

    def network_cost(
        self,
        layers: Sequence[LayerSpec],
        weight_bits: int | Sequence[int] = 8,
        activation_bits: int | Sequence[int] = 8,
        batch: int = 1,
    ) -> tuple[list[LayerCost], LayerCost]:
        """Per-layer costs and their total for `layers` run back to back."""
        n = len(layers)
        wbits = [weight_bits] * n if isinstance(weight_bits, int) else list(weight_bits)
        abits = [activation_bits] * n if isinstance(activation_bits, int) else list(activation_bits)
        rows = [self.layer_cost(layer, w, a, batch) for layer, w, a in zip(layers, wbits, abits)]
        return rows, sum_costs(rows, "total")

    @property
    def default_bits(self) -> int:
        """The bit-width of weights and activations when none is asked for: 8 where supported (an edge
        accelerator's integer datapath), else 16."""
        return 8 if 8 in self.supported_bits else 16

    def copy_to_device_s(self, payload_bytes: float) -> float:
        """Seconds to copy `payload_bytes` received from the network into the accelerator's memory before
        it computes on them (0: the accelerator reads them where they arrive)."""
        return 0.0

    def mode(self) -> dict[str, str] | None:
        """The execution mode of a model that has modes (a GPU: {"execution": ..., "fusion": ...}), else None."""
        return None

    @property
    def has_modes(self) -> bool:
        """Whether `with_mode` can run this accelerator in another execution mode."""
        return self.mode() is not None

    def mode_label(self) -> str | None:
        """The mode in words, e.g. 'serving (graph)'; None for a model without modes."""
        mode = self.mode()
        return None if mode is None else f"{mode['fusion']} ({mode['execution']})"

    def with_mode(self, execution: str | None = None, fusion: str | None = None, where: str = "") -> Accelerator:
        """A copy run in another execution mode (graph|eager) and fusion (serving|framework); a UserError for
        a model without modes."""
        raise UserError(f"{where or self.name}: a mode (serving/framework, graph/eager) applies to a GPU preset "
                        f"only; {self.name} is not a GPU")

    def check_model(self, model: str, path: str | None) -> None:
        """A UserError if this accelerator cannot cost `model` (its ONNX file at `path`, None for a zoo model):
        a measured profile answers only for the file it measured; an analytical model costs any."""
        return None

    def with_threads(self, threads: int, where: str = "") -> Accelerator:
        """A copy running `threads` threads (a CPU); a UserError for a model without threads."""
        raise UserError(f"{where or self.name}: threads apply to a CPU preset only; {self.name} is a {self.kind}")

    def evidence(self) -> str:
        """What the model was checked against, with its error, or what it assumes."""
        return self.preset_evidence or "no evidence recorded"


def sum_costs(rows: Sequence[LayerCost], name: str) -> LayerCost:
    """The sum of `rows`, named `name` (parts summed key by key)."""
    energy_parts: dict[str, float] = {}
    parts: dict[str, float] = {}
    for row in rows:
        for key, value in row.energy_parts_j.items():
            energy_parts[key] = energy_parts.get(key, 0.0) + value
        for key, value in row.parts.items():
            parts[key] = parts.get(key, 0.0) + value
    zero = LayerCost(name, 0.0, 0.0, 0.0, 0.0, 0.0)
    return replace(
        zero,
        compute_cycles=sum(r.compute_cycles for r in rows),
        stall_cycles=sum(r.stall_cycles for r in rows),
        overhead_cycles=sum(r.overhead_cycles for r in rows),
        latency_s=sum(r.latency_s for r in rows),
        energy_j=sum(r.energy_j for r in rows),
        dram_bytes=sum(r.dram_bytes for r in rows),
        overhead_s=sum(r.overhead_s for r in rows),
        energy_parts_j=energy_parts,
        parts=parts,
    )
