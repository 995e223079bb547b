"""The fixed option lists, each defined once: a Literal type (for the schema's fields and the core's
annotations) and the tuple of its values (for argparse `choices`, membership checks and messages).

The GPU's execution and fusion modes belong to the hardware model and are defined in hardware_models.gpu_modes;
they are re-exported here so that every list a user chooses from is found in one place.
"""
from __future__ import annotations

from typing import Literal, get_args

from hardware_models.gpu_modes import EXECUTION_MODES, FUSION_MODES, Execution, Fusion

Tier = Literal["naive", "calibrated", "reconstruction"]
Granularity = Literal["per-channel", "per-tensor"]
InputCodec = Literal["raw", "jpeg"]
ActivationCodec = Literal["raw", "entropy"]
MemoryModel = Literal["peak_live", "max_layer"]
Confidence = Literal["pessimistic", "expected"]

TIERS: tuple[Tier, ...] = get_args(Tier)
GRANULARITIES: tuple[Granularity, ...] = get_args(Granularity)
INPUT_CODECS: tuple[InputCodec, ...] = get_args(InputCodec)
ACTIVATION_CODECS: tuple[ActivationCodec, ...] = get_args(ActivationCodec)
MEMORY_MODELS: tuple[MemoryModel, ...] = get_args(MemoryModel)
CONFIDENCES: tuple[Confidence, ...] = get_args(Confidence)

__all__ = ["ACTIVATION_CODECS", "CONFIDENCES", "EXECUTION_MODES", "FUSION_MODES", "GRANULARITIES", "INPUT_CODECS",
           "MEMORY_MODELS", "TIERS", "ActivationCodec", "Confidence", "Execution", "Fusion",
           "Granularity", "InputCodec", "MemoryModel", "Tier", "measured_tier"]


def measured_tier(tier: str) -> Tier:
    """The fake quantizer that measures or exports `tier`: reconstruction (rounding optimisation) is not
    implemented as a quantizer, so it is measured and exported with the calibrated one."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    return "calibrated" if tier == "reconstruction" else tier
