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
}


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
    return model_class(kind, source).from_config(config, source)


def load_accelerator(spec: str) -> Accelerator:
    """An accelerator from a preset name (`eyeriss`), a preset YAML path or a SCALE-Sim `.cfg` path."""
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
