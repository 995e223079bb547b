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
        link = base.replace(**fields) if fields else base
    else:
        link = Link(**fields)
    check_loss_range(link, f"{where}.preset" if base is not None and network.loss is None else f"{where}.loss")
    return link


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


def uniform_bits_missing(method: str, scenario) -> str | None:
    """Why the edge cannot run `method` (an edge-uN baseline whose N is not among the cell's edge bit-widths),
    or None. Such a baseline is skipped with this note rather than evaluated at another width."""
    if not method.startswith("edge-u"):
        return None
    bits = int(method.removeprefix("edge-u"))
    edge_bits = tuple(scenario.edge_bits or ())
    if bits in edge_bits:
        return None
    name = getattr(scenario.edge, "name", "the edge")
    return (f"{method} skipped: {name} runs {', '.join(map(str, edge_bits))}-bit here, not {bits}-bit "
            "(the preset's supported_bits, or bits.edge)")


def check_loss_range(link, where: str = "network") -> None:
    """The search's analytic TCP model is valid up to MAX_ANALYTIC_LOSS (a preset may carry a loss too)."""
    from simulator.experiment.schema import MAX_ANALYTIC_LOSS

    if link.loss_rate > MAX_ANALYTIC_LOSS:
        raise UserError(f"{where}: loss {link.loss_rate:g} is beyond {MAX_ANALYTIC_LOSS:g}, where the analytic TCP "
                        "model the search uses stops agreeing with the simulation (`autosplit netsim` simulates it)")


def scenario_arguments(config: Experiment) -> dict[str, Any]:
    """Keyword arguments of `Scenario.build` for a cell (everything but the link), in SI units."""
    return {
        "model": config.model,
        "edge": config.edge,
        "cloud": config.cloud,
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


# the core's names for what a user writes as these experiment keys (and `autosplit plan` flags)
USER_KEYS = {"edge_bits": "bits.edge", "edge_memory": "constraints.edge_memory",
             "max_accuracy_drop": "constraints.max_accuracy_drop", "memory_model": "constraints.memory_model",
             "input_codec": "codecs.input", "activation_codec": "codecs.activation", "uplink_bps": "network.uplink",
             "rtt_s": "network.rtt", "loss_rate": "network.loss", "protocol": "network.link"}


def user_message(message: str, names: dict[str, str] = USER_KEYS) -> str:
    """`message` with a leading core field name ('edge_bits: ...') replaced by the user's key or flag."""
    for internal, user in names.items():
        if message.startswith(f"{internal}:"):
            return user + message[len(internal):]
    return message


def build_scenario(config: Experiment, source: str = "", names: dict[str, str] = USER_KEYS):
    """The search Scenario of one cell (cost tables are built lazily, once); errors name the user's keys."""
    from hardware_models.registry import load_accelerator
    from simulator.evaluate import Scenario

    prefix = f"{source}: " if source else ""
    arguments = scenario_arguments(config)
    try:
        edge = load_accelerator(config.edge)
        if hasattr(edge, "kernel_table"):
            raise UserError(f"{names.get('edge', 'edge')}: {config.edge} is a GPU (a cloud accelerator); the edge "
                            "must be a systolic array or a DSP (a preset, a preset .yaml or a SCALE-Sim .cfg)")
        link = build_link(config.network)
        return Scenario.build(link=link, granularity=config.accuracy.granularity, **arguments)
    except UserError as exc:
        raise UserError(prefix + user_message(str(exc), names)) from None
