"""Analytical accelerator models: systolic arrays, vector DSPs, NPUs and GPUs behind one small interface.

This package knows nothing of autosplit's graph: it takes `LayerSpec`s and returns `LayerCost`s.
The public names are loaded on first use (PEP 562), so that `hardware_models.errors` and `hardware_models.units`,
which every command needs, do not load every model (numpy, pydantic) before `autosplit --help` answers.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hardware_models.errors import UserError

if TYPE_CHECKING:
    from hardware_models.base import Accelerator, LayerCost, sum_costs
    from hardware_models.layer import LayerSpec
    from hardware_models.registry import load_accelerator, preset_names

_HOME = {"Accelerator": "base", "LayerCost": "base", "sum_costs": "base", "LayerSpec": "layer",
         "load_accelerator": "registry", "preset_names": "registry"}

__all__ = ["Accelerator", "LayerCost", "LayerSpec", "UserError", "load_accelerator", "preset_names", "sum_costs"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'hardware_models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"hardware_models.{_HOME[name]}"), name)
