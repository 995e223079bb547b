"""From a validated cell config to the core's objects: a network Link and a search Scenario (SI units)."""
from __future__ import annotations

import importlib
from typing import Any

from hardware_models.errors import UserError
from simulator.experiment.schema import Experiment, Network


def build_link(network: Network, where: str = "network"):
    """A `simulator.network` Link from the `network:` section (preset fields first, then the explicit keys)."""
    from simulator.network.link import Link

    fields: dict[str, Any] = {}
    base = None
    if network.preset is not None:
        base = _link_preset(network.preset, where)
    if network.uplink_bps is not None:
        fields["uplink_bps"] = network.uplink_bps
    if network.rtt_s is not None:
        fields["rtt_s"] = network.rtt_s
    if network.link is not None:
        fields["protocol"] = network.link
    if network.loss is not None:
        fields["loss_rate"] = network.loss
    if network.trace is not None:
        from simulator.network.trace import BandwidthTrace

        trace = BandwidthTrace.from_file(network.trace)
        fields["trace"] = trace
        fields["uplink_bps"] = trace.mean_rate_bps
    if base is not None:
        if "trace" not in fields and "uplink_bps" in fields:
            fields["trace"] = None  # an explicit rate replaces the preset's trace
        return base.replace(**fields) if fields else base
    return Link(**fields)


def _link_preset(name: str, where: str):
    """The network package's named link preset (its presets module names the choices in its own error)."""
    network = importlib.import_module("simulator.network")
    for attribute in ("link_preset", "preset", "load_preset"):
        finder = getattr(network, attribute, None)
        if callable(finder):
            try:
                return finder(name)
            except UserError as exc:
                raise UserError(f"{where}.preset: {exc}") from None
    raise UserError(f"{where}.preset: this version of autosplit has no network presets; give uplink and rtt")


def _cloud_spec(cloud: str, config: Experiment) -> str:
    """The cloud preset with the YAML's cloud_mode appended (`h100@framework,eager`), for GPUs."""
    from hardware_models.registry import load_accelerator, with_mode_spec

    mode = config.cloud_mode
    if mode.execution is None and mode.fusion is None:
        return cloud
    if not hasattr(load_accelerator(cloud), "with_mode"):
        raise UserError(f"cloud_mode: applies to a GPU cloud; {cloud} is not a GPU preset")
    return with_mode_spec(cloud, mode.execution, mode.fusion)


def scenario_arguments(config: Experiment) -> dict[str, Any]:
    """Keyword arguments of `Scenario.build` for a cell (everything but the link), in SI units."""
    return {
        "model": config.model,
        "edge": config.edge,
        "cloud": _cloud_spec(config.cloud, config),
        "edge_memory_bytes": config.constraints.edge_memory_bytes,
        "max_accuracy_drop": config.constraints.max_accuracy_drop,
        "memory_model": config.constraints.memory_model,
        "accuracy_confidence": config.constraints.accuracy_confidence,
        "edge_bits": tuple(config.bits.edge) if config.bits.edge else None,
        "cloud_bits": config.bits.cloud,
        "accuracy_tier": config.accuracy.tier,
        "input_codec": config.codecs.input,
        "activation_codec": config.codecs.activation,
        "jpeg_quality": config.codecs.jpeg_quality,
    }


def build_scenario(config: Experiment):
    """The search Scenario of one cell (cost tables are built by the Scenario, once)."""
    from simulator.evaluate import Scenario

    arguments = scenario_arguments(config)
    return Scenario.build(link=build_link(config.network), granularity=config.accuracy.granularity, **arguments)
