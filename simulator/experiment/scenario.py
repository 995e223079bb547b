"""From a validated cell config to the core's objects: a network Link and a search Scenario (SI units), and the
cell's scenario as a record of plain values for the results."""
from __future__ import annotations

from typing import Any

import numpy as np

from hardware_models.errors import UserError
from hardware_models.registry import load_accelerator, with_mode_spec
from simulator.accuracy.assess import fitted_proxy
from simulator.accuracy.calibration import proxy_for_graph
from simulator.accuracy.measure import cached_meter
from simulator.accuracy.proxy import AccuracyProxy
from simulator.choices import measured_tier
from simulator.evaluate import Scenario
from simulator.experiment.limits import MAX_ANALYTIC_LOSS
from simulator.experiment.schema import Experiment, Network
from simulator.experiment.sweep import Cell
from simulator.graph import load_model
from simulator.graph.ir import Graph
from simulator.network import load_link
from simulator.network.link import Link
from simulator.network.trace import BandwidthTrace


def build_link(network: Network, where: str = "network") -> Link:
    """A `simulator.network` Link from the `network:` section (preset fields first, then the explicit keys)."""
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


def _link_preset(name: str, where: str) -> Link:
    """The network's named link preset (its error names the choices)."""
    try:
        return load_link(name)
    except UserError as exc:
        raise UserError(str(exc), f"{where}.preset") from None


def cloud_spec(cloud: str, config: Experiment) -> str:
    """The cloud preset with the YAML's cloud_mode appended (`h100@framework,eager`), for GPUs."""
    mode = config.cloud_mode
    if mode.execution is None and mode.fusion is None:
        return cloud
    if not load_accelerator(cloud).has_modes:
        raise UserError(f"applies to a GPU cloud; {cloud} is not a GPU preset", "cloud_mode")
    return with_mode_spec(cloud, mode.execution, mode.fusion)


def check_loss_range(link: Link, where: str = "network") -> None:
    """The search's analytic TCP model is valid up to MAX_ANALYTIC_LOSS (a preset may carry a loss too)."""
    if link.loss_rate > MAX_ANALYTIC_LOSS:
        raise UserError(f"loss {link.loss_rate:g} is beyond {MAX_ANALYTIC_LOSS:g}, where the analytic TCP model the "
                        "search uses stops agreeing with the simulation (`autosplit netsim` simulates it)", where)


def scenario_arguments(config: Experiment) -> dict[str, Any]:
    """Keyword arguments of `Scenario.build` for a cell (everything but the link), in SI units."""
    return {
        "model": config.model,
        "input_shape": tuple(config.input_shape) if config.input_shape else None,
        "until": config.until,
        "edge": config.edge,
        "cloud": cloud_spec(config.cloud, config),
        "edge_memory_bytes": config.constraints.edge_memory_bytes,
        "max_accuracy_drop": config.constraints.max_accuracy_drop,
        "memory_model": config.constraints.memory_model,
        "accuracy_confidence": config.constraints.accuracy_confidence,
        "edge_bits": tuple(config.bits.edge) if config.bits.edge else None,
        "cloud_bits": config.bits.cloud,
        "accuracy_tier": config.accuracy.tier,
        "extrapolate": config.accuracy.extrapolate,
        "input_codec": config.codecs.input,
        "activation_codec": config.codecs.activation,
        "jpeg_quality": config.codecs.jpeg_quality,
    }


def cell_record(cell: Cell, link: Link | None = None) -> dict[str, Any]:
    """A cell's scenario in SI units (for config.resolved.yaml, the dry run and the table columns); `link` is the
    cell's (`build_link`), when already built."""
    config = cell.config
    link = build_link(config.network) if link is None else link
    arguments = scenario_arguments(config)
    return {"cell": cell.index, "label": cell.label, "sweep": dict(cell.values),
            "model": config.model, "edge": config.edge, "cloud": config.cloud,
            "uplink_bps": float(link.uplink_bps), "rtt_s": float(link.rtt_s), "link": link.protocol,
            "loss_rate": float(link.loss_rate), "edge_memory_limit_bytes": arguments["edge_memory_bytes"],
            "max_accuracy_drop": arguments["max_accuracy_drop"], "memory_model": arguments["memory_model"],
            "edge_bits": list(arguments["edge_bits"]) if arguments["edge_bits"] else None,
            "cloud_bits": arguments["cloud_bits"], "accuracy_tier": arguments["accuracy_tier"],
            "accuracy_granularity": config.accuracy.granularity, "accuracy_extrapolate": arguments["extrapolate"],
            "accuracy_confidence": arguments["accuracy_confidence"], "input_codec": arguments["input_codec"],
            "activation_codec": arguments["activation_codec"], "jpeg_quality": arguments["jpeg_quality"],
            **({} if link.trace is None else {
                "trace": link.trace.source, "trace_period_s": float(link.trace.period_s),
                "trace_min_bps": float(link.trace.rates_bps.min()),
                "trace_max_bps": float(link.trace.rates_bps.max())})}


# the core's names for what a user writes as these experiment keys (and `autosplit plan` flags)
USER_KEYS = {"edge_bits": "bits.edge", "edge_memory": "constraints.edge_memory",
             "max_accuracy_drop": "constraints.max_accuracy_drop", "memory_model": "constraints.memory_model",
             "input_codec": "codecs.input", "activation_codec": "codecs.activation", "uplink_bps": "network.uplink",
             "rtt_s": "network.rtt", "loss_rate": "network.loss", "protocol": "network.link"}


def build_scenario(config: Experiment, source: str = "", names: dict[str, str] = USER_KEYS,
                   link: Link | None = None) -> Scenario:
    """The search Scenario of one cell (cost tables are built lazily, once); errors name the user's keys; `link`
    is the cell's (`build_link`), when already built.

    For an .onnx model the accuracy proxy is the model's own: fitted to single-layer measurements when
    `accuracy.data` is given (as `autosplit accuracy --data`), else from assumed distortions with the given
    `accuracy.fp_accuracy`."""
    try:
        arguments = scenario_arguments(config)
        link = build_link(config.network) if link is None else link
    except UserError as exc:
        raise exc.renamed(names, source) from None
    accuracy = None  # a zoo model's: the zoo proxy
    if config.accuracy.data is not None:
        accuracy = measured_proxy(config)
    elif config.accuracy.fp_accuracy is not None:
        graph = load_model(config.model, input_shape=arguments["input_shape"], until=arguments["until"])
        accuracy = _onnx_proxy_without_data(graph, config, config.accuracy.fp_accuracy)
    try:
        return Scenario.build(link=link, granularity=config.accuracy.granularity, accuracy=accuracy, **arguments)
    except UserError as exc:
        raise exc.renamed(names, source) from None


# --- an .onnx model's own accuracy: measured on its data ---------------------------------------------------
def meter_key(config: Experiment) -> tuple:
    """What an AccuracyMeter depends on: the model, data and calibration files and the quantizer."""
    accuracy = config.accuracy
    return (config.model, accuracy.data, accuracy.calibration, measured_tier(accuracy.tier), accuracy.granularity)


_METERS: dict[tuple, Any] = {}
_PROXIES: dict[tuple, Any] = {}


def accuracy_meter(config: Experiment):
    """The cell's `simulator.accuracy.measure.AccuracyMeter` (one per model, data and quantizer in a process)."""
    key = meter_key(config)
    if key not in _METERS:
        if config.accuracy.data is None:
            raise ValueError(f"{config.model}: no accuracy.data to measure on")
        try:
            meter = cached_meter(config.model, config.accuracy.data, config.accuracy.calibration,
                                 measured_tier(config.accuracy.tier), config.accuracy.granularity,
                                 "accuracy.data", "accuracy.calibration",
                                 input_shape=tuple(config.input_shape) if config.input_shape else None,
                                 until=config.until)
        except Exception as exc:  # onnxruntime's message: wrong input shape, fixed batch, ...
            raise UserError(f"accuracy.data: {config.accuracy.data}: cannot run {config.model} on it: "
                            f"{' '.join(str(exc).split())[:300]}") from None
        graph = load_model(config.model, input_shape=tuple(config.input_shape) if config.input_shape else None,
                           until=config.until)
        if meter.layers != [layer.name for layer in graph.layers]:
            raise UserError(f"{config.model}: the fake-quantized model's layers do not match inspect's")
        _METERS[key] = meter
    return _METERS[key]


def chance_percent(graph: Graph) -> float:
    """Chance level of a classifier (percent): 100 / classes of the last layer's output."""
    return 100.0 / max(int(np.prod(graph.layers[-1].output_shape[1:])), 1)


def measured_proxy(config: Experiment):
    """The proxy fitted to single-layer measurements of the cell's model on `accuracy.data`."""
    key = meter_key(config)
    if key not in _PROXIES:
        meter = accuracy_meter(config)
        _PROXIES[key] = fitted_proxy(meter, chance=chance_percent(meter.quantizer.graph))
    return _PROXIES[key]


def _onnx_proxy_without_data(graph: Graph, config: Experiment, fp_accuracy: float) -> AccuracyProxy:
    """An .onnx model without data: assumed distortions, the published sensitivities and the user's float
    accuracy (as `autosplit accuracy MODEL.onnx --fp-accuracy`)."""
    return proxy_for_graph(graph, graph.name, config.accuracy.tier, config.accuracy.granularity, fp_accuracy,
                           chance_percent(graph))
