"""`autosplit capacity`: from an experiment's `capacity:` section to the fleet, the capacity answers and the
files of the results directory's `capacity/` folder.

Each group's plan is a search method's best plan on the experiment's scenario (the unswept values; an
`input_codec` override searches with that input codec) or explicit numbers. A method's plan is the run's own:
read from the run's checkpoint when `autosplit run` already searched that scenario, else searched as the run
searches (the method's YAML options, budget and seed); its GPU batch
latencies come from the GPU preset's model of the cloud suffix at every batch size, plus the host-to-device
copy of the batch's payloads. The answers say which simulation path computed them.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hardware_models.base import Accelerator
from hardware_models.errors import UserError
from hardware_models.registry import load_accelerator, preset_evidence
from simulator import atomic
from simulator.capacity import (
    DeviceGroup,
    Fleet,
    Simulation,
    cost_per_million_usd,
    evaluate_point,
    gpu_batch_latency_s,
    gpus_needed,
    max_devices,
    path_for,
)
from simulator.evaluate import Scenario
from simulator.experiment.capacity_schema import Capacity
from simulator.experiment.cells import checkpoint_fingerprint, checkpoint_path, load_checkpoint
from simulator.experiment.limits import MAX_FRAMES_PER_RUN
from simulator.experiment.scenario import build_link, build_scenario, cloud_spec
from simulator.experiment.settings import budget_for, default_out_dir, method_options
from simulator.experiment.sweep import Cell
from simulator.experiment.validated import LoadedExperiment
from simulator.graph import load_model
from simulator.json_values import json_safe
from simulator.report import capacity_plots
from simulator.report.capacity_summary import capacity_summary
from simulator.search import make_method, skip_note
from simulator.search.base import Plan

FOLDER = "capacity"
POINT_COLUMNS = ("group", "devices", "gpus", "p50_s", "p95_s", "p99_s", "gpu_utilisation", "slo_met")


@dataclass
class CapacityOutput:
    out_dir: Path
    data: dict          # the JSON answer (DESIGN.md's `capacity` shape plus more keys)
    files: list[Path]


def capacity_section(loaded: LoadedExperiment) -> Capacity:
    """The experiment's `capacity:` section, or a UserError saying it has none."""
    if loaded.config.capacity is None:
        raise UserError(f"{loaded.source}: no capacity: section; add one (see experiments/capacity_resnet50_wifi.yaml)")
    return loaded.config.capacity


def method_plan(loaded: LoadedExperiment, method: str, scenario: Scenario, codec: str,
                out_dir: Path | None = None) -> Plan | None:
    """`method`'s best plan on `scenario` exactly as `autosplit run` finds it: the run's checkpointed answer
    when `out_dir` holds one for this scenario (no sweep, the experiment's own input codec), else a search with
    the method's YAML options, budget and seed (the same calls as the run's cells)."""
    config = loaded.config
    budget = budget_for(loaded, method)
    if out_dir is not None and not config.sweep and codec == config.codecs.input:
        cell = Cell(0, {}, config)
        key = checkpoint_fingerprint(cell, method, budget, config.seed)
        done = load_checkpoint(checkpoint_path(out_dir, cell, method), key)
        if done is not None:
            return done.best
    search = make_method(method, **method_options(config, method))
    return search.run(scenario, budget=budget or None, seed=config.seed).plan


def build_fleet(loaded: LoadedExperiment, out_dir: Path | None = None) -> tuple[Fleet, Accelerator]:
    """The `Fleet` of the capacity section (each group's record says where its plan's numbers came from) and
    its GPU; a group's method plan is the run's in `out_dir` where it has one (`method_plan`)."""
    config = loaded.config
    capacity = capacity_section(loaded)
    link = build_link(config.network)
    gpu = load_accelerator(cloud_spec(capacity.gpu or config.cloud, config))
    graph = load_model(config.model)
    names = [layer.name for layer in graph.layers]
    scenarios: dict[str, Scenario] = {}
    groups = []
    for group in capacity.groups:
        plan = group.plan
        if plan.method is not None:
            codec = plan.input_codec or config.codecs.input
            if codec not in scenarios:
                scenarios[codec] = build_scenario(config.model_copy(update={
                    "codecs": config.codecs.model_copy(update={"input": codec})}), str(loaded.source))
            unrunnable = skip_note(plan.method, scenarios[codec])
            if unrunnable:
                raise UserError(f"{loaded.source}: capacity.groups.{group.name}.plan.method: "
                                f"{unrunnable.replace(' skipped:', ':')}")
            best = method_plan(loaded, plan.method, scenarios[codec], codec, out_dir)
            if best is None:
                raise UserError(f"capacity.groups.{group.name}.plan: method {plan.method!r} found no plan within "
                                "the experiment's constraints")
            edge_layers = set(best.edge_layers)
            edge_s, payload = best.edge_s, best.payload_bytes
            record = {"source": f"{plan.method} (input {codec})", "cut_index": best.cut_index,
                      "edge_layers": len(edge_layers), "accuracy_drop": best.accuracy_drop,
                      "single_device_latency_s": best.latency_s}
        else:  # the schema gives an explicit plan all three numbers
            assert plan.cut_index is not None and plan.edge_time_s is not None and plan.payload_bytes is not None
            if plan.cut_index > len(names):
                raise UserError(f"capacity.groups.{group.name}.plan.cut_index: expected 0..{len(names)} "
                                f"({config.model} has {len(names)} layers), got {plan.cut_index}")
            edge_layers = set(names[:plan.cut_index])
            edge_s, payload = plan.edge_time_s, plan.payload_bytes
            record = {"source": "explicit", "cut_index": plan.cut_index, "edge_layers": plan.cut_index,
                      "accuracy_drop": None, "single_device_latency_s": None}
        latency = gpu_batch_latency_s(gpu, graph, edge_layers, config.bits.cloud, capacity.batching.max_batch,
                                      payload)
        arrivals = group.arrivals
        groups.append(DeviceGroup(group.name, group.devices, edge_s, payload, latency, arrivals.rate, arrivals.kind,
                                  arrivals.jitter_s, plan=record))
    uplink = capacity.uplink
    fleet = Fleet(tuple(groups), link, uplink.sharing, uplink.devices_per_uplink, uplink.discipline,
                  capacity.batching.max_wait_s)
    return fleet, gpu


def plan_rows(fleet: Fleet, gpu_name: str) -> list[dict]:
    """Per group: the plan's numbers and the arithmetic that bounds the answer (per-device loads, the GPU's
    saturation throughput at the largest batch)."""
    rows = []
    for group in fleet.groups:
        ser = fleet.serialisation_s(group.payload_bytes)
        full = group.batch_latency_s[group.max_batch]
        rows.append({"group": group.name, **group.plan, "gpu": gpu_name, "rate_per_s": group.rate_per_s,
                     "arrival": group.arrival, "edge_s": group.edge_s, "edge_load": group.edge_s * group.rate_per_s,
                     "payload_bytes": group.payload_bytes,
                     "wire_bytes": float(fleet.link.wire_bytes(group.payload_bytes)) if group.payload_bytes else 0.0,
                     "serialisation_s": ser, "uplink_after_s": fleet.after_serialisation_s(group.payload_bytes),
                     "uplink_load_per_device": ser * group.rate_per_s,
                     "gpu_batch1_s": float(group.batch_latency_s[1]), "gpu_max_batch": group.max_batch,
                     "gpu_max_batch_s": float(full),
                     "gpu_saturation_per_s": group.max_batch / full if full > 0 else math.inf,
                     "devices_at_gpu_saturation": (group.max_batch / full / group.rate_per_s) if full > 0
                     else math.inf})
    return rows


def run_capacity(loaded: LoadedExperiment, out_dir: Path | None = None, *, force: bool = False,
                 log: Callable[[str], None] | None = None) -> CapacityOutput:
    """Simulate the capacity section, write `capacity/` under the results directory, return the answer."""
    config = loaded.config
    capacity = capacity_section(loaded)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(loaded)
    folder = out_dir / FOLDER
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {out_dir}: {folder} exists and is not a directory")
    if folder.exists() and any(not p.name.startswith(atomic.TEMP_PREFIX) for p in folder.iterdir()):
        if not force:
            raise UserError(f"{folder}: capacity results exist; give --force to overwrite them, or --out DIR")
        shutil.rmtree(folder)
    atomic.make_dir(folder)
    say = log or (lambda _text: None)

    fleet, gpu = build_fleet(loaded, out_dir)
    slo = capacity.slo_p99_s
    simulation = Simulation(capacity.duration_s, capacity.warmup_s,
                            tuple(range(config.seed, config.seed + capacity.seeds)), capacity.path)
    path = path_for(fleet, capacity.path)
    plans = plan_rows(fleet, gpu.name)
    points: list[dict] = []
    answers: list[dict] = []
    knees: list[dict] = []
    for group, plan in zip(fleet.groups, plans):
        for gpus in capacity.gpus:
            estimate = plan["devices_at_gpu_saturation"] * gpus
            start = 1 if not math.isfinite(estimate) else max(1, int(0.4 * estimate))
            limit = min(capacity.max_devices, int(MAX_FRAMES_PER_RUN / (group.rate_per_s * capacity.duration_s)))
            say(f"{group.name}, {gpus} GPU(s): searching from {start} devices (at most {limit:,})")
            search = max_devices(fleet, group.name, gpus, simulation, slo, start=start, limit=limit)
            found = search.points
            knee = next((p for p in found if p["devices"] == search.devices), None)
            if capacity.plot_points and search.devices > 0:
                tried = {p["devices"] for p in found}
                for fraction in np.linspace(0.1, 1.5, capacity.plot_points):
                    n = max(1, int(round(fraction * search.devices)))
                    if n not in tried and n <= limit:
                        tried.add(n)
                        found.append(evaluate_point(fleet.only(group.name, devices=n, gpus=gpus), simulation,
                                                    slo, stop_at_miss=n > 1)["groups"][0])
            points += found
            rate = search.devices * group.rate_per_s
            alone = next((p["p99_s"] for p in found if p["devices"] == 1), None)
            answers.append({"group": group.name, "gpus": gpus, "devices": search.devices, "search_limit": limit,
                            "alone_p99_s": alone,
                            "devices_per_gpu": search.devices / gpus, "requests_per_s": rate,
                            "p99_s": knee["p99_s"] if knee else None,
                            "gpu_utilisation": knee["gpu_utilisation"] if knee else None,
                            "cost_per_million_usd": cost_per_million_usd(gpus, capacity.gpu_hour_price, rate)
                            if capacity.gpu_hour_price > 0 and rate > 0 else None,
                            "seeds": len(simulation.seeds), "path": path})
            if knee is not None:
                knees.append(knee)
    fleet_rows = []
    if any(g.devices > 0 for g in fleet.groups):
        say("the fleet as given: GPUs needed")
        sized = dataclasses.replace(fleet, groups=tuple(g for g in fleet.groups if g.devices > 0))
        fleet_rows = gpus_needed(sized, simulation, slo)
        for row in fleet_rows:
            group = next(g for g in fleet.groups if g.name == row["group"])
            rate = group.devices * group.rate_per_s
            row["cost_per_million_usd"] = (cost_per_million_usd(row["gpus"], capacity.gpu_hour_price, rate)
                                           if row["gpus"] and capacity.gpu_hour_price > 0 else None)

    point_frame = pd.DataFrame(points).sort_values(["group", "gpus", "devices"], kind="stable")
    lead = [c for c in POINT_COLUMNS if c in point_frame] + [c for c in point_frame if c not in POINT_COLUMNS]
    point_frame = point_frame[lead].reset_index(drop=True)
    data = {"slo_p99_s": slo, "path": path, "seeds": list(simulation.seeds), "duration_s": simulation.duration_s,
            "warmup_s": simulation.warmup_s,
            "points": [{k: json_safe(r[k]) for k in point_frame.columns} for r in point_frame.to_dict("records")],
            "max_devices": [{k: json_safe(v) for k, v in a.items()} for a in answers],
            "fleet": [{k: json_safe(v) for k, v in r.items()} for r in fleet_rows],
            "plans": [{k: json_safe(v) for k, v in r.items()} for r in plans]}
    data["gpu"] = {"name": gpu.name,
                   "mode": gpu.mode_label(),
                   "evidence": preset_evidence(gpu)}
    files = [_csv(folder / "points.csv", point_frame), _csv(folder / "max_devices.csv", pd.DataFrame(answers)),
             _csv(folder / "plans.csv", pd.DataFrame(plans))]
    if fleet_rows:
        files.append(_csv(folder / "fleet.csv", pd.DataFrame(fleet_rows)))
    files.append(atomic.write_text(folder / "capacity.json", json.dumps(data, indent=1)))
    formats = tuple(config.output.plot_formats)
    files += capacity_plots.latency_plot(point_frame, slo, folder, formats)
    files += capacity_plots.utilisation_plot(point_frame, folder, formats)
    if knees:
        files += capacity_plots.breakdown_plot(pd.DataFrame(knees), folder, formats)
    files.append(atomic.write_text(folder / "summary.md", _summary(loaded, data, plans)))
    data["out_dir"] = str(folder)
    return CapacityOutput(folder, data, files)


def _csv(path: Path, frame: pd.DataFrame) -> Path:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return atomic.write_text(path, buffer.getvalue())


def _summary(loaded: LoadedExperiment, data: dict, plans: list[dict]) -> str:
    capacity = capacity_section(loaded)
    return capacity_summary(loaded.config.name or loaded.stem, loaded.config.description, data, plans,
                            max_batch=capacity.batching.max_batch, max_wait_s=capacity.batching.max_wait_s,
                            sharing=capacity.uplink.sharing, devices_per_uplink=capacity.uplink.devices_per_uplink,
                            discipline=capacity.uplink.discipline)
