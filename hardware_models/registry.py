"""Find an accelerator by preset name, YAML path or SCALE-Sim .cfg path, and the hardware kinds by name.

A preset YAML names its model with `kind:` (systolic, dsp, npu, gpu, cpu, measured, or a kind registered
from outside the package with `register_kind`); the model class validates the rest in its
`from_config(config, source)` classmethod (a pydantic model per kind), raising a UserError that names the file
and the key.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hardware_models.base import Accelerator
from hardware_models.cpu import CPU
from hardware_models.dsp import VectorDSP
from hardware_models.errors import UserError, suggest
from hardware_models.gpu import GPU
from hardware_models.measured import MeasuredProfile
from hardware_models.npu import ProductNPU
from hardware_models.scalesim_io import read_scalesim_cfg
from hardware_models.systolic import SystolicArray
from hardware_models.yaml_io import read_yaml

PRESET_DIR = Path(__file__).parent / "presets"

_KINDS: dict[str, type[Accelerator]] = {}


def register_kind(model: type[Accelerator]) -> type[Accelerator]:
    """Make `model` the accelerator of presets with `kind: <model.kind>` (usable as a class decorator); a
    ValueError when that kind is registered already or `model` is not a concrete Accelerator."""
    concrete = isinstance(model, type) and issubclass(model, Accelerator) and not inspect.isabstract(model)
    if not (concrete and isinstance(getattr(model, "kind", None), str)):
        raise ValueError(f"{model!r}: expected an Accelerator subclass with a `kind` name")
    if model.kind in _KINDS:
        raise ValueError(f"hardware kind {model.kind!r} is registered already (by {_KINDS[model.kind].__name__})")
    _KINDS[model.kind] = model
    return model


def unregister_kind(kind: str) -> None:
    """Forget the hardware kind `kind` (a KeyError when it is not registered)."""
    del _KINDS[kind]


def kinds() -> dict[str, type[Accelerator]]:
    """The registered hardware kinds by name, in registration order."""
    return dict(_KINDS)


for _model in (SystolicArray, VectorDSP, GPU, ProductNPU, CPU, MeasuredProfile):  # measured: `autosplit profile`
    register_kind(_model)


def preset_evidence(accelerator: Accelerator) -> str:
    """What a preset was checked against, with its error, or what it assumes (every kind)."""
    return accelerator.evidence()


def preset_names() -> list[str]:
    """Names of the built-in presets (file stems under hardware_models/presets/)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def model_class(kind: object, source: str) -> type[Accelerator]:
    """The accelerator class of presets with `kind: <kind>`; a UserError naming `source` and every kind."""
    if not isinstance(kind, str) or kind not in _KINDS:
        raise UserError(f"{source}: kind: unknown accelerator kind {kind!r}{suggest(str(kind), _KINDS)}; "
                        f"expected one of {', '.join(_KINDS)}")
    return _KINDS[kind]


def from_config(config: Mapping[str, Any], source: str) -> Accelerator:
    """An accelerator from an already-read preset mapping (`source` names it in errors)."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind is None:
        raise UserError(f"{source}: kind: missing; expected one of {', '.join(_KINDS)}")
    return _with_basis(model_class(kind, source).from_config(config, source), source)


def _with_basis(accelerator: Accelerator, source: str) -> Accelerator:
    """A measured profile with the analytic preset its `based_on` names (the registry loads presets, so it
    resolves the name); any other accelerator as it is."""
    if not isinstance(accelerator, MeasuredProfile) or accelerator.based_on is None:
        return accelerator
    try:
        basis = load_accelerator(accelerator.based_on)
    except UserError as exc:
        raise UserError(f"{source}: based_on: {exc}") from None
    return accelerator.with_basis(basis)


MODE_WORDS = ("serving", "framework", "graph", "eager")


def with_mode_spec(spec: str, execution: str | None = None, fusion: str | None = None) -> str:
    """`spec` with a GPU mode appended (`h100@framework,eager`); `spec` itself when neither is given."""
    words = [w for w in (fusion, execution) if w]
    return f"{spec}@{','.join(words)}" if words else spec


def split_mode_spec(spec: str) -> tuple[str, str | None, str | None]:
    """(preset, execution, fusion) of `NAME[@fusion][,execution]`, e.g. `h100@framework,eager`."""
    name, at, modes = str(spec).rpartition("@")
    if not at:
        return str(spec), None, None
    words = [w.strip() for w in modes.split(",") if w.strip()]
    bad = [w for w in words if w not in MODE_WORDS]
    if bad or not words:
        raise UserError(f"{spec}: after '@' expected a GPU mode (serving or framework, graph or eager, e.g. "
                        f"h100@framework,eager), got {modes!r}")
    execution = next((w for w in words if w in ("graph", "eager")), None)
    fusion = next((w for w in words if w in ("serving", "framework")), None)
    return name, execution, fusion


def load_accelerator(spec: str) -> Accelerator:
    """An accelerator from a preset name (`eyeriss`), a preset YAML path, a SCALE-Sim `.cfg` path or a profile
    `.csv` written by `autosplit profile`; a GPU may carry its mode after '@' (`h100@framework,eager`: PyTorch's
    kernels, eager), a CPU its thread count (`raspberry_pi_4b@threads=1`)."""
    name, _, threads = str(spec).rpartition("@")
    if threads.startswith("threads="):
        count = threads.removeprefix("threads=")
        if not count.isdigit():
            raise UserError(f"{spec}: after '@threads=' expected a whole number of threads, got {count!r}")
        return load_accelerator(name).with_threads(int(count), where=str(spec))
    if "@" in str(spec):
        name, execution, fusion = split_mode_spec(spec)
        accelerator = load_accelerator(name)
        if not accelerator.has_modes:
            raise UserError(f"{spec}: a mode (serving/framework, graph/eager) applies to a GPU preset only; "
                            f"{name} is not a GPU")
        return accelerator.with_mode(execution, fusion, where=name)
    path = Path(spec)
    if path.suffix == ".cfg":
        if not path.is_file():
            raise UserError(f"{spec}: no such SCALE-Sim config file")
        return read_scalesim_cfg(path)
    if path.suffix == ".csv":
        return _with_basis(MeasuredProfile.from_file(path), str(path))
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise UserError(f"{spec}: no such preset file")
        return from_config(read_yaml(path, "hardware preset"), str(path))
    preset = PRESET_DIR / f"{spec}.yaml"
    if not preset.is_file():
        raise UserError(f"unknown hardware {spec!r}{suggest(spec, preset_names())}; "
                        f"expected a preset ({', '.join(preset_names())}), a .yaml, a SCALE-Sim .cfg or a profile .csv file")
    return from_config(read_yaml(preset, "hardware preset"), str(preset))
