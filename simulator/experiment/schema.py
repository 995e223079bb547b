"""The experiment YAML as typed, validated models (pydantic v2): what a user may write, and nothing else.

Every section forbids unknown keys. Human units ("3Mbps", "20ms", "4MiB") are checked here, kept as the
user wrote them (so that `config.resolved.yaml` reads like the input), and turned into SI numbers by the
`*_bps`, `*_s` and `*_bytes` properties that the runner uses. Names (models, presets, methods) are checked
against what exists, with a close-name hint. `capacity:` (fleet simulation) is added by the capacity issue
as one more optional section of `Experiment`.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hardware_models.errors import UserError, suggest
from hardware_models.registry import preset_names as hardware_preset_names
from hardware_models.units import parse_bytes, parse_rate, parse_time
from simulator.accuracy.npz import read_npz
from simulator.choices import ActivationCodec, Confidence, Execution, Fusion, Granularity, InputCodec, MemoryModel, Tier
from simulator.experiment.capacity_schema import Capacity
from simulator.experiment.fields import HumanUnit, choice
from simulator.experiment.limits import (
    MAX_ANALYTIC_LOSS,
    MAX_DURATION_S,
    MAX_RATE_BPS,
    MAX_SEED,
    MAX_SIZE_BYTES,
    MAX_SWEEP_CELLS,
)
from simulator.experiment.method_name import (
    MethodName,
    budgets_json_schema,
    default_methods,
    error_details,
    methods_json_schema,
    settings_json_schema,
    validate_budgets,
    validate_options,
)
from simulator.graph import zoo
from simulator.network import link_model_names
from simulator.network import preset_names as network_preset_names
from simulator.search import Budget, MethodSettings

SWEEPABLE_TOP = ("model", "edge", "cloud", "seed")


# below 1 bit/s: a typo
Rate = Annotated[str | float, HumanUnit("a rate", parse_rate, "3Mbps", 1.0, False, MAX_RATE_BPS, "bit/s")]
Duration = Annotated[str | float, HumanUnit("a duration", parse_time, "20ms", 0.0, False, MAX_DURATION_S, "s")]
Size = Annotated[str | float, HumanUnit("a size", parse_bytes, "4MiB", 0.0, True, MAX_SIZE_BYTES, "bytes")]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


def resolve_path(value: str, info: ValidationInfo | None) -> Path:
    """A relative path in an experiment file is relative to the file's folder (the validation context's
    `base_dir`), not to the working directory."""
    path = Path(value).expanduser()
    base = (info.context or {}).get("base_dir") if info is not None else None
    return path if path.is_absolute() or base is None else Path(base) / path


def existing_file(value: str, info: ValidationInfo | None, what: str) -> str:
    """`value` resolved as `resolve_path` does, as a string; a ValueError naming `what` when no such file."""
    path = resolve_path(value, info)
    if not path.is_file():
        raise ValueError(f"no such {what} {str(path)!r}")
    return str(path)


def _check_model(value: str, info: ValidationInfo) -> str:
    if value.endswith(".onnx"):
        return existing_file(value, info, "ONNX file")
    return choice(value, zoo.names(), "model (a zoo name or an .onnx path)")


def _check_hardware(value: str, info: ValidationInfo) -> str:
    name, at, threads = value.rpartition("@threads=")  # a CPU's thread count: raspberry_pi_4b@threads=1
    if at:
        if not threads.isdigit() or int(threads) < 1:
            raise ValueError(f"after '@threads=' expected a whole number of threads >= 1, got {threads!r}")
        return _check_hardware(name, info) + at + threads
    if Path(value).suffix in (".yaml", ".yml", ".cfg", ".csv"):  # .csv: a profile from `autosplit profile`
        return existing_file(value, info, "hardware file")
    return choice(value, hardware_preset_names(), "hardware preset (or a .yaml / SCALE-Sim .cfg / profile .csv path)")


ModelName = Annotated[str, AfterValidator(_check_model)]
HardwareName = Annotated[str, AfterValidator(_check_hardware)]


class _Section(BaseModel):
    # strict: YAML already gives numbers, lists and mappings; `true` is not 1 and "3" is not 3
    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True, allow_inf_nan=False)


def _link_models_json_schema(schema: dict[str, Any]) -> None:
    """`network.link` in the JSON Schema: the link models registered when the schema is generated."""
    schema["anyOf"] = [{"type": "string", "enum": list(link_model_names())}, {"type": "null"}]


class Network(_Section):
    """The uplink from the edge device to the cloud."""

    preset: str | None = Field(default=None,
                               description="a named link preset (ble, 3g, lte, 5g, wifi, paper-3mbps, ...) "
                               "or a preset .yaml; the keys below override its fields")
    uplink: Rate | None = Field(default=None,
                                description="uplink rate, e.g. '3Mbps' (10^6 bit/s) or '3Mibps' (2^20 bit/s); "
                                "required unless a preset or a trace gives it")
    rtt: Duration | None = Field(default=None,
                                 description="base round-trip time, e.g. '20ms' (default 0, or the preset's)")
    link: str | None = Field(default=None, description="a registered link model: tcp (framing, slow start, loss; the "
                             "default) or ideal (payload bits / rate, the Auto-Split paper's model)",
                             json_schema_extra=_link_models_json_schema)
    trace: str | None = Field(default=None, description="bandwidth trace file (time and rate per line) replacing the "
                              "constant uplink rate")
    loss: float | None = Field(default=None, ge=0.0, le=MAX_ANALYTIC_LOSS, description="packet loss probability on the "
                               f"uplink, in [0, {MAX_ANALYTIC_LOSS:g}] (where the analytic TCP model the search uses "
                               "agrees with the segment-level simulation; `autosplit netsim` simulates up to 1)")

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if Path(value).suffix in (".yaml", ".yml"):
            return existing_file(value, info, "network preset file")
        return choice(value, network_preset_names(), "network preset (or a preset .yaml path)")

    @field_validator("link")
    @classmethod
    def _registered_link_model(cls, value: str | None) -> str | None:
        return None if value is None else choice(value, link_model_names(), "link model")

    @field_validator("trace")
    @classmethod
    def _trace_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else existing_file(value, info, "trace file")

    @model_validator(mode="after")
    def _has_rate(self) -> Network:
        if self.uplink is None and self.preset is None and self.trace is None:
            raise ValueError("missing uplink; expected a rate such as '3Mbps' (or a preset or a trace)")
        return self

    @property
    def uplink_bps(self) -> float | None:
        return None if self.uplink is None else parse_rate(self.uplink)

    @property
    def rtt_s(self) -> float | None:
        return None if self.rtt is None else parse_time(self.rtt)


class Constraints(_Section):
    """Bounds every reported plan is checked against (`feasible`)."""

    edge_memory: Size = Field(..., description="edge memory for weights and activations, e.g. '4MiB'")
    max_accuracy_drop: float = Field(..., ge=0.0, le=100.0, description="largest accepted accuracy drop, in "
                                     "percentage points (top-1 or the task metric)")
    memory_model: MemoryModel = Field(
        default="peak_live", description="peak_live: the largest set of tensors alive at once; max_layer: the largest "
        "single activation (the paper's formula)")
    accuracy_confidence: Confidence = Field(
        default="pessimistic", description="which end of the accuracy prediction the bound applies to: pessimistic "
        "(the low end of the 80% interval: a plan the model cannot vouch for is never chosen) or expected (the "
        "central prediction)")

    @property
    def edge_memory_bytes(self) -> float:
        return parse_bytes(self.edge_memory)


def _check_npz(value: str, info: ValidationInfo, arrays: tuple[str, ...]) -> str:
    """`value` resolved against the experiment's folder, checked to be an .npz holding `arrays` (x: inputs,
    batch first; y: one integer label per input)."""
    path = resolve_path(value, info)
    if path.suffix != ".npz":
        raise ValueError(f"expected a NumPy .npz file, got {value!r}")
    if not path.is_file():
        raise ValueError(f"no such data file {str(path)!r}")
    try:
        read_npz(path, arrays, what="")
    except UserError as exc:
        raise ValueError(str(exc)) from None
    return str(path)


class Accuracy(_Section):
    """How accuracy is predicted and, for an .onnx model with labelled data, measured."""

    tier: Tier = Field(
        default="calibrated", description="post-training quantization method: naive min-max, calibrated clipping, or "
        "reconstruction (AdaRound/BRECQ-like)")
    granularity: Granularity = Field(default="per-channel", description="weight quantization "
                                                              "granularity")
    data: str | None = Field(default=None,
                             description="labelled data for an .onnx model: a NumPy .npz with x (model-ready "
                             "inputs, batch first) and y (integer labels). The proxy is then fitted to single-layer "
                             "measurements, the plans of every method are measured with onnxruntime, and each "
                             "method's plan is chosen by measured accuracy. A relative path is relative to the "
                             "experiment file's folder")
    calibration: str | None = Field(default=None,
                                    description="with data: inputs (.npz with x) that fix activation ranges "
                                    "(default: the first 128 samples of data); relative to the experiment file")
    fp_accuracy: float | None = Field(default=None, gt=0.0, le=100.0,
                                      description="float accuracy (percent) of an .onnx "
                                      "model given without data (with data it is measured)")
    extrapolate: bool = Field(default=False, description="let the searches choose plans outside the accuracy "
                              "model's evidence envelope (a tensor below the lowest bits the published rows cover "
                              "for its kind in this tier; `autosplit accuracy` marks them); off by default, at both "
                              "accuracy confidences")
    max_measured_plans: int = Field(default=60, ge=1, le=10_000,
                                    description="with data: at most this many distinct plans "
                                    "are measured per cell (each method's choice first, then the fronts)")

    @field_validator("data")
    @classmethod
    def _data_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _check_npz(value, info, ("x", "y"))

    @field_validator("calibration")
    @classmethod
    def _calibration_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _check_npz(value, info, ("x",))

    @model_validator(mode="after")
    def _calibration_needs_data(self) -> Accuracy:
        if self.calibration is not None and self.data is None:
            raise ValueError("calibration is only used with data (measured accuracy); give data too, or drop it")
        if self.data is not None and self.fp_accuracy is not None:
            raise ValueError(f"fp_accuracy {self.fp_accuracy:g} given with data: with data the float accuracy is "
                             "measured; drop fp_accuracy")
        return self

    @property
    def measured(self) -> bool:
        return self.data is not None


class Bits(_Section):
    """Bit-widths the search may use."""

    edge: list[int] | None = Field(
        default=None, description="edge bit-widths to choose from (default: the edge preset's supported_bits)")
    cloud: Literal[16, 32] = Field(default=16,
                                   description="the cloud's compute and payload precision (CLOUD16 by default)")

    @field_validator("edge")
    @classmethod
    def _nonempty(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and not value:
            raise ValueError("expected at least one bit-width")
        if value is not None and any(not (1 <= b <= 8 or b in (16, 32)) for b in value):
            # what an edge layer can use; 32: a device profiled in fp32 (`autosplit profile`)
            raise ValueError(f"expected bit-widths in 1..8 (or 16, 32: float), got {value}")
        return None if value is None else sorted(set(value))


class Codecs(_Section):
    """What a split puts on the wire."""

    input: InputCodec = Field(default="raw",
                                          description="cloud-only input: raw 8-bit image (the paper's) or jpeg")
    activation: ActivationCodec = Field(default="raw",
                                                  description="crossing activations: raw bits, or entropy-coded")
    jpeg_quality: int = Field(default=90, ge=1, le=100, description="JPEG quality for input: jpeg")


class Search(_Section):
    """Which methods run, their budgets, and under a method's name its options (e.g. `optuna: {sampler: tpe}`):
    each budget and options model is the one the method registered (`simulator.search.register`)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=settings_json_schema)

    methods: list[MethodName] = Field(default_factory=default_methods, min_length=1,
                                      description="methods to run (the registered search methods)",
                                      json_schema_extra=methods_json_schema)
    budgets: dict[MethodName, Any] = Field(default_factory=dict, description="per-method budget, e.g. "
                                           "optuna: {trials: 2000}; exact: {epsilon: 0.0}",
                                           json_schema_extra=budgets_json_schema)

    @field_validator("methods")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("budgets")
    @classmethod
    def _registered_budgets(cls, budgets: dict[str, Any]) -> dict[str, Budget]:
        return validate_budgets(budgets)

    @model_validator(mode="wrap")
    @classmethod
    def _registered_options(cls, data: Any, handler: ModelWrapValidatorHandler[Search]) -> Search:
        if not isinstance(data, dict):  # a Search already (validated), or not a mapping (the handler says so)
            return handler(data)
        # the options are checked even where a field is wrong, so that every problem is reported at once
        given = {k: v for k, v in data.items() if k not in cls.model_fields}
        errors = []
        try:
            options = validate_options(given, tuple(cls.model_fields))
        except ValidationError as exc:
            errors, options = error_details(exc), {}
        try:
            search = handler(data)
        except ValidationError as exc:
            errors = error_details(exc) + errors
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        search.__pydantic_extra__ = dict(options)
        return search

    def options(self, method: str) -> MethodSettings | None:
        """`method`'s options (its registered model, defaults filled in), None for a method without options."""
        return (self.__pydantic_extra__ or {}).get(method)


class Output(_Section):
    """Where and how results are written."""

    dir: str | None = Field(default=None,
                            description="results directory (default results/<file stem>; --out overrides)")
    max_plan_rows: int = Field(default=100_000, ge=1, le=100_000, description="cap on plans.parquet / plans.csv rows "
                               "(fronts and baselines first, then a seeded random sample of other plans)")
    plot_formats: list[Literal["png", "svg"]] = Field(default=["png", "svg"],
                                                      description="plot file formats ([] for no "
                                                      "plots, e.g. in large sweeps)")


class CloudMode(_Section):
    """How the cloud GPU runs (issue 14): which kernels (fusion) and how they are launched (execution)."""

    execution: Execution | None = Field(default=None,
                                                        description="graph (one captured graph or engine) "
                                                        "or eager (PyTorch op by op; implies fusion framework); "
                                                        "default: the preset's (graph)")
    fusion: Fusion | None = Field(default=None,
                                                           description="serving (a TensorRT engine, fitted on "
                                                           "published TensorRT results) or framework (PyTorch's "
                                                           "kernels, fitted on a measured H200 profile); default: "
                                                           "the preset's (serving)")


class Experiment(_Section):
    """One experiment: a scenario (or a sweep of scenarios), the methods to run, and where results go."""

    name: str | None = Field(default=None, description="a title for the summary (default: the file stem)")
    description: str | None = Field(default=None, description="free text, copied into the summary")
    model: ModelName = Field(..., description="zoo name (see `autosplit models`) or a path to an .onnx file")
    input_shape: list[int] | None = Field(default=None, description="an .onnx model's input shape, batch first, "
                                          "e.g. [1, 3, 224, 224]: sets its symbolic dimensions (--input-shape)")
    until: str | None = Field(default=None, description="import an .onnx model up to this node or tensor, leaving "
                              "out post-processing such as NMS (--until)")
    edge: HardwareName = Field(..., description="edge accelerator: preset name, preset .yaml, SCALE-Sim .cfg or a "
                               "profile .csv from `autosplit profile`")
    cloud: HardwareName = Field(default="tpu_v1", description="cloud accelerator: preset name or preset .yaml")
    cloud_mode: CloudMode = Field(default_factory=CloudMode, description="a GPU cloud's execution and fusion "
                                  "(also the capacity section's GPU)")
    network: Network
    constraints: Constraints
    accuracy: Accuracy = Field(default_factory=Accuracy)
    bits: Bits = Field(default_factory=Bits)
    codecs: Codecs = Field(default_factory=Codecs)
    search: Search = Field(default_factory=Search)
    seed: Seed = Field(default=0, description=f"seed of every random choice (optuna's sampler, the plan sample), in "
                       f"0..{MAX_SEED}")
    sweep: dict[str, list[Any]] = Field(default_factory=dict, description="cartesian product over dotted keys, "
                                        "e.g. {network.uplink: [1Mbps, 3Mbps], model: [resnet18, resnet50]}")
    storage: str | None = Field(default=None,
                                description="optuna storage: a journal file path (resumable) or an RDB URL "
                                "such as postgresql://...; in-memory when absent")
    executor: Literal["serial", "processes", "dask"] = Field(
        default="serial", description="how sweep cells run: serial (in this process), processes (one worker process "
        "per core on this machine) or dask (fanned out over a dask.distributed cluster)")
    scheduler: str | None = Field(default=None, description="with executor dask: the scheduler's address, e.g. "
                                  "tcp://host:8786; a LocalCluster on this machine when absent")
    output: Output = Field(default_factory=Output)
    capacity: Capacity | None = Field(default=None, description="fleet simulation and the capacity answer "
                                      "(`autosplit capacity`; `autosplit run` includes it)")

    @field_validator("input_shape", "until")
    @classmethod
    def _onnx_only(cls, value: Any, info: ValidationInfo) -> Any:
        model = info.data.get("model")
        if value is None or model is None:
            return value
        if not str(model).endswith(".onnx"):
            raise ValueError(f"{model!r} is a zoo model with fixed shapes and layers; {info.field_name} is for an "
                             ".onnx model")
        if info.field_name == "input_shape" and (not value or any(d < 1 for d in value)):
            raise ValueError(f"expected a list of positive sizes, batch first, e.g. [1, 3, 224, 224]; got {value}")
        if info.field_name == "until" and not value.strip():
            raise ValueError("expected a node or tensor name of the .onnx model")
        return value

    @field_validator("accuracy")
    @classmethod
    def _accuracy_fits_the_model(cls, accuracy: Accuracy, info: ValidationInfo) -> Accuracy:
        model = info.data.get("model")
        if model is None:  # the model's own error is reported
            return accuracy
        onnx = str(model).endswith(".onnx")
        if not onnx and accuracy.data is not None:
            raise ValueError(f"data: measuring needs an .onnx model with weights; {model!r} is a zoo model "
                             "(drop data, or give model: FILE.onnx)")
        if not onnx and accuracy.fp_accuracy is not None:
            raise ValueError(f"fp_accuracy: {model!r} is a zoo model with a published float accuracy; "
                             "fp_accuracy is for an .onnx model without data")
        if onnx and accuracy.data is None and accuracy.fp_accuracy is None:
            raise ValueError(f"model {Path(model).name!r} is an .onnx file: give data (FILE.npz with x and y, to "
                             "measure) or fp_accuracy (its float accuracy, percent)")
        return accuracy

    @field_validator("sweep")
    @classmethod
    def _sweep_keys(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in sweep.items():
            check_sweep_key(key)
            if not values:
                raise ValueError(f"sweep {key}: expected a non-empty list of values")
        cells = math.prod(len(values) for values in sweep.values())
        if cells > MAX_SWEEP_CELLS:
            sizes = " x ".join(f"{len(values)} {key}" for key, values in sweep.items())
            raise ValueError(f"{sizes} = {cells:,} cells (at most {MAX_SWEEP_CELLS:,}, each a full search); "
                             "sweep fewer values or split the experiment")
        return sweep

    @field_validator("scheduler")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(tcp|tls|ucx|inproc|ws|wss)://\S+$", value):
            raise ValueError(f"expected a Dask scheduler address such as tcp://host:8786, got {value!r}")
        return value


def sweepable_keys() -> list[str]:
    """Dotted keys a sweep may vary: top-level scenario keys and every field of the scenario sections."""
    keys = list(SWEEPABLE_TOP)
    sections: dict[str, type[BaseModel]] = {"network": Network, "constraints": Constraints, "accuracy": Accuracy,
                                            "bits": Bits, "codecs": Codecs}
    for section, model in sections.items():
        keys += [f"{section}.{field}" for field in model.model_fields]
    return keys


def check_sweep_key(key: str) -> str:
    if key not in sweepable_keys():
        raise ValueError(f"cannot sweep {key!r}{suggest(key, sweepable_keys())}; expected dotted keys such as "
                         "network.uplink, model, edge, constraints.edge_memory")
    return key


def json_schema() -> dict:
    """The experiment YAML's JSON Schema (for editor completion)."""
    schema = Experiment.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "autosplit experiment"
    return schema


def key_rows() -> list[dict]:
    """Every key of the experiment YAML as {key, type, default, description} (the table form of the schema)."""
    schema = json_schema()
    definitions = schema.get("$defs", {})
    rows: list[dict] = []

    def resolve(node: dict) -> dict:
        if "$ref" in node:
            return definitions[node["$ref"].split("/")[-1]]
        options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1 and "$ref" in options[0]:
            return definitions[options[0]["$ref"].split("/")[-1]]
        return node

    def walk(node: dict, prefix: str, required: set[str]) -> None:
        for name, prop in node.get("properties", {}).items():
            target = resolve(prop)
            key = prefix + name
            if target.get("type") == "object" and "properties" in target:
                rows.append({"key": key, "type": "section", "default": "", "description": target.get("description", "")})
                walk(target, key + ".", set(target.get("required", [])))
                continue
            default = prop.get("default")
            rows.append({"key": key, "type": _type_name(prop),
                         "default": "(required)" if name in required else ("" if default is None else
                                                                            json.dumps(default)),
                         "description": prop.get("description", "")})

    walk(schema, "", set(schema.get("required", [])))
    return rows


def _type_name(prop: dict) -> str:
    if "enum" in prop:
        return " | ".join(map(str, prop["enum"]))
    if "anyOf" in prop:
        return " | ".join(_type_name(o) for o in prop["anyOf"] if o.get("type") != "null")
    kind = prop.get("type", "object")
    if kind == "array":
        return f"list of {_type_name(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop and isinstance(prop["additionalProperties"], dict):
        return f"mapping to {_type_name(prop['additionalProperties'])}"
    return {"string": "text", "number": "number", "integer": "integer", "boolean": "yes/no"}.get(kind, kind)
