"""What the report is given besides its tables: the run's facts (`RunMeta`) and, per measured cell, how its
plans were measured (`Measurement`). The experiment builds them; the report reads their attributes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Measurement:
    """How one cell's plans were measured on the model's labelled data: float accuracy (percent), the bound
    (points), the cap on distinct bit assignments, how many were measured and refused at the cap, where the
    proxy's sensitivities came from, the plans on the combined memory front, the predicted-against-measured
    statistics (`prediction_agreement`) and, per method, what measurement changed in words."""

    cell: int
    fp_accuracy: float
    max_accuracy_drop: float
    cap: int
    measured: int
    refused: int
    proxy_source: str
    front_plans: int
    agreement: dict[str, Any]
    repicked: dict[str, str]


@dataclass(frozen=True)
class RunMeta:
    """The run's facts for the report: its name, description, source file, seed, whether the tables are
    reproducible, the sweep (key -> values as written), plan counts (kept, returned by the methods, evaluated,
    the cap), the git revision, the methods run (references first) and those requested, its measurements."""

    name: str
    description: str | None
    source: str
    seed: int
    reproducible: bool
    sweep: dict[str, list]
    plans_cap: int
    plans_kept: int
    plans_returned: int
    plans_evaluated: int
    git: dict[str, Any]
    methods: list[str]
    requested_methods: list[str]
    measurements: list[Measurement] = field(default_factory=list)

    def measurement(self, cell: int) -> Measurement | None:
        """How `cell`'s plans were measured (None when they were not)."""
        return next((m for m in self.measurements if m.cell == cell), None)


@dataclass(frozen=True)
class ReportCell:
    """One sweep cell as the report reads it (SI units): its index, label and swept values, model, hardware
    (edge bit-widths: the scenario's, None for the preset's), link (a bandwidth trace's file, period and rate
    range where it has one), bounds, accuracy settings, codecs, layer names and float accuracy (percent)."""

    index: int
    label: str
    sweep: dict[str, Any]
    model: str
    edge: str
    cloud: str
    cloud_bits: int
    edge_bits: list[int] | None
    uplink_bps: float
    rtt_s: float
    link: str
    loss_rate: float
    edge_memory_limit_bytes: float
    memory_model: str
    max_accuracy_drop: float
    accuracy_tier: str
    accuracy_granularity: str
    accuracy_confidence: str
    accuracy_extrapolate: bool
    input_codec: str
    activation_codec: str
    layer_names: list[str]
    fp_accuracy: float | None
    trace: ReportTrace | None = None


@dataclass(frozen=True)
class ReportTrace:
    """A cell's bandwidth trace: its file, period (seconds) and lowest and highest rates (bit/s)."""

    source: str
    period_s: float
    min_bps: float
    max_bps: float
