"""Find an accelerator by preset name, YAML path or SCALE-Sim .cfg path.

A preset YAML names its model with `kind:` (systolic, dsp, gpu); the model class validates the rest in its
`from_config(config, source)` classmethod, raising UserError with the file and key on a bad value.
"""
from __future__ import annotations

import importlib
from pathlib import Path


from hardware_models.base import Accelerator
from hardware_models.errors import UserError, suggest

PRESET_DIR = Path(__file__).parent / "presets"

# kind -> "module:Class"; imported lazily so that one broken model does not take the others down
KINDS = {
    "systolic": "hardware_models.systolic:SystolicArray",
    "dsp": "hardware_models.dsp:VectorDSP",
    "gpu": "hardware_models.gpu:GPU",
    "npu": "hardware_models.npu:ProductNPU",
}


def preset_evidence(accelerator: Accelerator) -> str:
    """What a preset was checked against, with its error, or what it assumes (every kind)."""
    return accelerator.evidence()


def preset_names() -> list[str]:
    """Names of the built-in presets (file stems under hardware_models/presets/)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def read_yaml(path: Path) -> dict:
    """A YAML mapping from `path`, or a UserError naming the file (a duplicate key is an error)."""
    from hardware_models.yaml_io import read_yaml_file

    data = read_yaml_file(path, "hardware preset")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys to values, got {type(data).__name__}")
    return data


def model_class(kind: str, source: str) -> type[Accelerator]:
    if kind not in KINDS:
        raise UserError(f"{source}: kind: unknown accelerator kind {kind!r}{suggest(str(kind), KINDS)}; "
                        f"expected one of {', '.join(KINDS)}")
    module_name, class_name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def from_config(config: dict, source: str) -> Accelerator:
    """An accelerator from an already-read preset mapping (`source` names it in errors)."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind is None:
        raise UserError(f"{source}: kind: missing; expected one of {', '.join(KINDS)}")
    # `evidence` (what the preset was checked against, or what it assumes) is read here for the kinds whose
    # models do not read it themselves
    evidence = config.pop("evidence", None) if kind in ("systolic", "dsp") else None
    if evidence is not None and (not isinstance(evidence, str) or not evidence.strip()):
        raise UserError(f"{source}: evidence: expected a sentence: the published rows the preset was fitted on "
                        f"and its error, or 'assumed' with what was assumed")
    accelerator = model_class(kind, source).from_config(config, source)
    if evidence is not None:
        object.__setattr__(accelerator, "preset_evidence", " ".join(evidence.split()))
    return accelerator


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
    """An accelerator from a preset name (`eyeriss`), a preset YAML path or a SCALE-Sim `.cfg` path; a GPU
    may carry its mode after '@' (`h100@framework,eager`: PyTorch's kernels, eager)."""
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
        from hardware_models.scalesim_io import read_scalesim_cfg

        return read_scalesim_cfg(path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UserError(f"{spec}: no such preset file")
        return from_config(read_yaml(path), str(path))
    preset = PRESET_DIR / f"{spec}.yaml"
    if not preset.is_file():
        raise UserError(f"unknown hardware {spec!r}{suggest(spec, preset_names())}; "
                        f"expected a preset ({', '.join(preset_names())}), a .yaml or a SCALE-Sim .cfg file")
    return from_config(read_yaml(preset), str(preset))
