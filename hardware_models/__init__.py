"""Analytical accelerator models: systolic arrays, vector DSPs and GPUs behind one small interface.

This package knows nothing of autosplit's graph: it takes `LayerSpec`s and returns `LayerCost`s.
"""
from hardware_models.base import Accelerator, LayerCost, sum_costs
from hardware_models.errors import UserError
from hardware_models.layer import LayerSpec
from hardware_models.registry import load_accelerator, preset_names

__all__ = ["Accelerator", "LayerCost", "LayerSpec", "UserError", "load_accelerator", "preset_names", "sum_costs"]
