"""The experiment YAML's `capacity:` section (pydantic v2): fleet groups, arrivals, GPUs, batching, uplink
sharing, the p99 SLO, the GPU-hour price, simulated duration, warm-up and seeds.

Standalone (it imports nothing from `schema.py`, which imports it), with the same conventions and field types
(`fields.py`): unknown keys
are refused, human units ("20ms", "25kB") are kept as written and turned into SI by the `*_s` / `*_bytes`
properties, names are checked with a close-name hint. The uplink itself is the experiment's `network:`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from hardware_models.registry import preset_names
from hardware_models.units import parse_bytes, parse_time
from simulator.choices import InputCodec
from simulator.experiment.fields import HumanUnit, choice
from simulator.experiment.limits import MAX_FRAMES_PER_RUN
from simulator.experiment.method_name import MethodName

# a day of simulated time, a petabyte: beyond them a number is a typo, not a scenario
Duration = Annotated[str | float, HumanUnit("a duration", parse_time, "20ms", 0.0, False, 86400.0, "s")]
PositiveDuration = Annotated[str | float, HumanUnit("a duration", parse_time, "60s", 0.0, True, 86400.0, "s")]
Size = Annotated[str | float, HumanUnit("a size", parse_bytes, "25kB", 0.0, False, 2.0**50, "bytes")]


def _check_gpu(value: str) -> str:
    if Path(value).suffix in (".yaml", ".yml"):
        if not Path(value).is_file():
            raise ValueError(f"no such hardware file {value!r}")
        return value
    return choice(value, preset_names(), "GPU preset (or a preset .yaml path)")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True, allow_inf_nan=False)


class CapacityArrivals(_Section):
    """When a device's frames arrive."""

    kind: Literal["periodic", "poisson"] = Field(default="periodic", description="periodic: every 1/rate from a random "
                                                 "phase (plus jitter); poisson: at that mean rate")
    rate: float = Field(..., gt=0, description="frames per second per device")
    jitter: Duration = Field(default=0.0,
                             description="periodic arrivals: extra delay per frame, uniform in [0, jitter]")

    @property
    def jitter_s(self) -> float:
        return parse_time(self.jitter)


class CapacityPlan(_Section):
    """A group's split plan: the best plan of a search method on the experiment's scenario (optionally with
    another input codec), or explicit numbers (edge time, payload, cut index)."""

    method: MethodName | None = Field(
        default=None, description="search method whose best plan the group runs (cloud = cloud-only)")
    input_codec: InputCodec | None = Field(default=None,
                                                       description="override codecs.input for this plan's "
                                                       "search (e.g. raw: the Auto-Split paper's assumption)")
    edge_time: Duration | None = Field(default=None, description="explicit plan: edge compute time per frame")
    payload: Size | None = Field(default=None, description="explicit plan: bytes uploaded per frame (0: edge-only)")
    cut_index: int | None = Field(default=None, ge=0, description="explicit plan: layers on the edge (the cloud runs "
                                  "the rest of the experiment's model)")

    @model_validator(mode="after")
    def _one_kind(self) -> CapacityPlan:
        explicit = [self.edge_time, self.payload, self.cut_index]
        if self.method is not None and any(v is not None for v in explicit):
            raise ValueError("give either method (and input_codec) or edge_time, payload and cut_index, not both")
        if self.method is None and any(v is None for v in explicit):
            raise ValueError("expected method: NAME, or all of edge_time, payload and cut_index")
        if self.method is None and self.input_codec is not None:
            raise ValueError("input_codec applies to a method's search; an explicit plan gives its payload")
        return self

    @property
    def edge_time_s(self) -> float | None:
        return None if self.edge_time is None else parse_time(self.edge_time)

    @property
    def payload_bytes(self) -> float | None:
        return None if self.payload is None else parse_bytes(self.payload)


class CapacityGroup(_Section):
    """Devices that run one plan at one frame rate."""

    name: str = Field(..., min_length=1, description="the group's name in tables and plots")
    plan: CapacityPlan
    arrivals: CapacityArrivals
    devices: int = Field(default=0, ge=0, description="devices in the fleet whose GPUs are counted (gpus needed); "
                         "0: only the per-GPU capacity search")


class CapacityBatching(_Section):
    """Each GPU's dynamic batcher."""

    max_batch: int = Field(default=32, ge=1, le=1024, description="largest batch a GPU runs")
    max_wait: Duration = Field(default="2ms", description="how long the oldest waiting request is held for a fuller "
                               "batch (0: run whatever waits as soon as the GPU is free)")

    @property
    def max_wait_s(self) -> float:
        return parse_time(self.max_wait)


class CapacityUplink(_Section):
    """How devices reach the cloud over the experiment's `network:` link."""

    sharing: Literal["per_device", "shared"] = Field(default="per_device",
                                                     description="per_device: each device its own "
                                                     "link; shared: devices_per_uplink devices behind one access point")
    devices_per_uplink: int = Field(default=1, ge=1, description="shared: devices per access point or cell")
    discipline: Literal["fifo", "fair"] = Field(default="fifo", description="shared link's service order (fair share "
                                                "runs on the SimPy path)")


class Capacity(_Section):
    """Fleet simulation and the capacity answer (`autosplit capacity`; `autosplit run` includes it)."""

    groups: list[CapacityGroup] = Field(..., min_length=1, description="device groups, each one plan")
    slo_p99: PositiveDuration = Field(..., description="end-to-end p99 latency target, e.g. '100ms'")
    gpu: Annotated[str, AfterValidator(_check_gpu)] | None = Field(
        default=None, description="GPU preset of the cloud (default: the experiment's cloud)")
    gpus: list[Annotated[int, Field(ge=1, le=1024)]] = Field(default=[1], min_length=1, description="GPU counts at "
                                                             "which the largest fleet per group is searched")
    gpu_hour_price: float = Field(default=0.0, ge=0, description="price of one GPU-hour in USD (cost per million "
                                  "inferences); 0: not reported")
    batching: CapacityBatching = Field(default_factory=CapacityBatching)
    uplink: CapacityUplink = Field(default_factory=CapacityUplink)
    duration: PositiveDuration = Field(default="60s", description="simulated time per run")
    warmup: Duration = Field(default="5s", description="simulated time discarded at the start of each run")
    seeds: int = Field(default=3, ge=1, le=100, description="independent runs per point; a point meets the SLO when "
                       "every run does")
    max_devices: int = Field(default=100_000, ge=1, description="largest fleet the search tries")
    plot_points: int = Field(default=8, ge=0, le=50, description="extra fleet sizes per group and GPU count on the "
                             "latency and utilisation plots (0 to 1.5 x the capacity)")
    path: Literal["auto", "vectorised", "simpy"] = Field(default="auto",
                                                         description="auto: vectorised recursions unless "
                                                         "a fair-share uplink needs SimPy")

    @field_validator("gpus")
    @classmethod
    def _unique(cls, value: list[int]) -> list[int]:
        return sorted(set(value))

    @field_validator("groups")
    @classmethod
    def _unique_names(cls, value: list[CapacityGroup]) -> list[CapacityGroup]:
        names = [g.name for g in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"group names must be unique; repeated: {', '.join(repeated)}")
        return value

    @model_validator(mode="after")
    def _window(self) -> Capacity:
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"warmup ({self.warmup!r}) must be shorter than duration ({self.duration!r})")
        per_device = max(g.arrivals.rate for g in self.groups) * self.duration_s
        fleet = sum(g.devices * g.arrivals.rate for g in self.groups) * self.duration_s
        if max(per_device, fleet) > MAX_FRAMES_PER_RUN:
            what = ("the fleet (sum of devices x arrivals.rate) x duration" if fleet > per_device
                    else "one device's arrivals.rate x duration")
            raise ValueError(f"{what} = {max(per_device, fleet):.3g} frames per simulated run (at most "
                             f"{MAX_FRAMES_PER_RUN:.0e}, about 1 GB); lower duration, devices or rate")
        if self.uplink.discipline == "fair" and self.path == "vectorised":
            raise ValueError("path: vectorised models FIFO links; use auto or simpy with discipline: fair")
        return self

    @property
    def slo_p99_s(self) -> float:
        return parse_time(self.slo_p99)

    @property
    def duration_s(self) -> float:
        return parse_time(self.duration)

    @property
    def warmup_s(self) -> float:
        return parse_time(self.warmup)
