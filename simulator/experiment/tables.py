"""The results directory's tables: plans (capped), pareto, baselines, timings, measured (where plans were measured
on an .onnx model's data, with `measured_accuracy` / `measured_drop` beside the prediction in the other tables);
then plots and summary.md.

Tables hold no wall-clock figures (those are in timings.csv), so that the same YAML and seed give
byte-identical plans, pareto and baselines files whenever the budgets are trial counts.
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator import atomic
from simulator.experiment.cells import CellRun
from simulator.experiment.measured import CellMeasurement
from simulator.experiment.outcomes import MethodOutcome
from simulator.experiment.settings import reproducible
from simulator.experiment.validated import LoadedExperiment
from simulator.json_values import json_safe
from simulator.report.inputs import Measurement, ReportCell, ReportTrace, RunMeta
from simulator.report.plots import write_plots
from simulator.report.summary import render_summary
from simulator.search.base import Plan
from simulator.search.pareto import hypervolume_2d, nondominated

CELL_COLUMNS = ("cell", "cell_label", "model", "edge", "cloud", "uplink_bps", "rtt_s", "link",
                "edge_memory_limit_bytes", "max_accuracy_drop")
LIST_COLUMNS = ("edge_layers", "weight_bits", "activation_bits")
BASELINE_COLUMNS = ("method", "found", "cut_index", "edge_layer_count", "latency_s", "edge_s", "transfer_s",
                    "cloud_s", "accuracy", "accuracy_drop", "accuracy_expected", "accuracy_low", "accuracy_high",
                    "edge_memory_bytes", "edge_energy_j", "payload_bytes", "wire_bytes", "feasible", "speedup_vs_cloud", "speedup_vs_u8", "front_plans", "hypervolume",
                    "edge_layers", "weight_bits", "activation_bits")


def _cell_values(outcome: CellRun) -> dict:
    record = outcome.record
    return {"cell": outcome.cell.index, "cell_label": outcome.cell.label,
            **{k: record[k] for k in CELL_COLUMNS if k not in ("cell", "cell_label")}}


def _with_cell(frame: pd.DataFrame, values: dict) -> pd.DataFrame:
    frame = frame.drop(columns=[k for k in values if k in frame.columns])
    for position, (key, value) in enumerate(values.items()):
        frame.insert(position, key, [value] * len(frame))
    return frame


def plans_table(cells: list[CellRun], max_rows: int, seed: int) -> tuple[pd.DataFrame, int]:
    """Every cell's kept plans, capped at `max_rows` (chosen and front rows first); and how many were evaluated."""
    frames, evaluated = [], 0
    for outcome in cells:
        values = _cell_values(outcome)
        for method in outcome.outcomes.values():
            evaluated += method.plans_evaluated
            frames.append(_with_cell(method.plans, values))
    plans = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(plans) > max_rows:
        # chosen plans first, then fronts, then a seeded sample of the rest
        kept_as = plans["kept_as"].to_numpy()
        rng = np.random.default_rng(seed)
        keep: list[np.ndarray] = []
        room = max_rows
        for kind in ("chosen", "proxy choice", "front", "sample"):
            rows = np.flatnonzero(kept_as == kind)
            if len(rows) > room:
                rows = rng.choice(rows, size=room, replace=False)
            keep.append(rows)
            room -= len(rows)
        plans = plans.iloc[np.sort(np.concatenate(keep))].reset_index(drop=True)
    return measured_beside_prediction(plans), evaluated


def pareto_table(cells: list[CellRun]) -> pd.DataFrame:
    """Per cell, the non-dominated plans over (latency, accuracy drop) of all methods together, among the plans
    that meet every bound (memory and accuracy)."""
    frames = []
    for outcome in cells:
        fronts = [m.front for m in outcome.outcomes.values() if not m.front.empty]
        if not fronts:
            continue
        union = pd.concat(fronts, ignore_index=True)
        mask = np.asarray(nondominated(union[["latency_s", "accuracy_drop"]].to_numpy(dtype=float)), dtype=bool)
        front = union[mask].sort_values(["latency_s", "accuracy_drop", "method"], kind="stable")
        # a plan found by several methods appears once, credited to the first method in run order
        front = front.drop_duplicates(subset=["latency_s", "accuracy_drop"], keep="first")
        frames.append(_with_cell(front, _cell_values(outcome)))
    return measured_beside_prediction(pd.concat(frames, ignore_index=True)) if frames else \
        pd.DataFrame(columns=list(CELL_COLUMNS))


def _hypervolume(front: pd.DataFrame, reference: tuple[float, float]) -> float:
    if front.empty:
        return 0.0
    points = front[["latency_s", "accuracy_drop"]].to_numpy(dtype=float)
    return hypervolume_2d(points, reference)


def _plan_row(outcome: MethodOutcome) -> dict:
    """The method's answer as a baselines row: the plan's fields, then how it fared when measured."""
    best, verdict = outcome.best, outcome.measured
    if best is None:
        return {"found": False}
    row = best.to_json()
    row.update(row.pop("breakdown"))
    if verdict is not None:
        if verdict.on_front is not None:
            row["on_front"] = verdict.on_front
        row.update(measured_accuracy=verdict.measured_accuracy, measured_drop=verdict.measured_drop,
                   predicted_feasible=verdict.predicted_feasible, chosen_by=verdict.chosen_by)
        if verdict.proxy_choice_latency_s is not None:
            row.update(proxy_choice_latency_s=verdict.proxy_choice_latency_s,
                       proxy_choice_accuracy=verdict.proxy_choice_accuracy,
                       proxy_choice_measured_accuracy=verdict.proxy_choice_measured_accuracy)
    row["found"] = True
    row["edge_layer_count"] = len(best.edge_layers)
    return row


def baselines_table(cells: list[CellRun]) -> pd.DataFrame:
    """One row per cell and method: the method's chosen plan, its speed-ups and its front's hypervolume."""
    rows = []
    for outcome in cells:
        values = _cell_values(outcome)
        cloud = outcome.outcomes.get("cloud")
        u8 = outcome.outcomes.get("edge-u8")
        cloud_s = _latency(cloud.best) if cloud else np.nan
        u8_s = _latency(u8.best) if u8 else np.nan
        reference = (cloud_s, float(values["max_accuracy_drop"]))
        for name, method in outcome.outcomes.items():
            row = {"method": name, **_plan_row(method)}
            if method.note:  # a method that did not run here, and why
                row["note"] = method.note
            latency = _latency(method.best)
            row["speedup_vs_cloud"] = cloud_s / latency if latency > 0 else np.nan
            row["speedup_vs_u8"] = u8_s / latency if latency > 0 else np.nan
            row["front_plans"] = len(method.front)
            row["guarantee"] = method.guarantee
            front = method.front[method.front["accuracy_drop"] <= reference[1]] if len(method.front) else method.front
            row["hypervolume"] = _hypervolume(front, reference) if np.isfinite(cloud_s) else np.nan
            rows.append({**values, **{c: row.get(c) for c in BASELINE_COLUMNS},
                         **{k: v for k, v in row.items() if k not in BASELINE_COLUMNS and k not in ("model",)}})
    return measured_beside_prediction(pd.DataFrame(rows))


MEASURED_COLUMNS = ("measured_accuracy", "measured_drop")


def measured_beside_prediction(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its measured columns (where it has them) just after the predicted accuracy_drop."""
    present = [c for c in MEASURED_COLUMNS if c in frame.columns]
    if not present or "accuracy_drop" not in frame.columns:
        return frame
    rest = [c for c in frame.columns if c not in present]
    at = rest.index("accuracy_drop") + 1
    return frame[rest[:at] + present + rest[at:]]


def measured_table(cells: list[CellRun]) -> pd.DataFrame | None:
    """Every measured plan of every cell with its role (proxy choice, measured choice, front); None when
    nothing was measured."""
    frames = [_with_cell(o.measurement.table, _cell_values(o)) for o in cells
              if o.measurement is not None and not o.measurement.table.empty]
    return pd.concat(frames, ignore_index=True) if frames else None


def _latency(best: Plan | None) -> float:
    return np.nan if best is None else best.latency_s


def timings_table(cells: list[CellRun]) -> pd.DataFrame:
    rows = [{"cell": o.cell.index, "cell_label": o.cell.label, "method": name, "elapsed_s": m.elapsed_s,
             "evaluations": m.evaluations, "plans_evaluated": m.plans_evaluated, "budget": json.dumps(m.budget)}
            for o in cells for name, m in o.outcomes.items()]
    return pd.DataFrame(rows)


def _csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists as JSON text (a CSV cell holds one value)."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            frame[column] = [_json_text(v) for v in frame[column].to_numpy()]
    return frame


_ENCODER = json.JSONEncoder(allow_nan=False, default=json_safe)


def _json_text(value: object) -> str:
    """`value` as JSON ("" for None), numpy scalars and arrays as plain values and NaN as null. Lists of plain
    values, nearly all of them, are encoded by json's C encoder in one call; NaN (refused there) takes the slow
    path."""
    if value is None:
        return ""
    try:
        return _ENCODER.encode(value)
    except ValueError:
        return json.dumps(json_safe(value))


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    return atomic.write_text(path, _csv_ready(frame).to_csv(index=False, lineterminator="\n"))


def _write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    frame = frame.copy()
    for column in LIST_COLUMNS:
        if column in frame:
            # the plans' lists hold plain values already (as built); arrays and tuples become plain lists
            frame[column] = pd.Series([v if v is None or type(v) is list else json_safe(v)
                                       for v in frame[column].to_numpy()], index=frame.index, dtype=object)
    return atomic.write_with(path, lambda p: frame.to_parquet(p, index=False, engine="pyarrow"))


def write_results(loaded: LoadedExperiment, cells: list[CellRun], out_dir: Path,
                  resolved: dict) -> tuple[pd.DataFrame, list[Path]]:
    """Write tables, plots and (last) summary.md into `out_dir`; returns the baselines table and the paths
    written."""
    config = loaded.config
    cap = config.output.max_plan_rows
    plans, evaluated = plans_table(cells, cap, config.seed)
    pareto = pareto_table(cells)
    baselines = baselines_table(cells)
    timings = timings_table(cells)
    files = [out_dir / "config.resolved.yaml",
             _write_parquet(out_dir / "plans.parquet", plans), _write_csv(out_dir / "plans.csv", plans),
             _write_csv(out_dir / "pareto.csv", pareto), _write_csv(out_dir / "baselines.csv", baselines),
             _write_csv(out_dir / "timings.csv", timings)]
    measured = measured_table(cells)
    if measured is not None:
        files.append(_write_csv(out_dir / "measured.csv", measured))
    cell_info = [_report_cell(o) for o in cells]
    meta = RunMeta(name=config.name or loaded.stem, description=config.description, source=str(loaded.source),
                   seed=config.seed, reproducible=reproducible(loaded),
                   sweep={k: list(v) for k, v in config.sweep.items()}, plans_cap=cap, plans_kept=len(plans),
                   plans_returned=evaluated,
                   plans_evaluated=int(sum(m.evaluations for o in cells for m in o.outcomes.values())),
                   git=resolved["provenance"]["git"], methods=[m["method"] for m in resolved["methods"]],
                   requested_methods=list(config.search.methods),
                   measurements=[_measurement_meta(o.cell.index, o.measurement) for o in cells
                                 if o.measurement is not None])
    files += write_plots(out_dir, baselines=baselines, pareto=pareto, plans=plans, cells=cell_info, meta=meta,
                         formats=tuple(config.output.plot_formats), measured=measured, timings=timings,
                         traces={(o.cell.index, name): list(getattr(m, "hypervolume_trace", ()))
                                 for o in cells for name, m in o.outcomes.items()})
    text = render_summary(baselines=baselines, pareto=pareto, timings=timings, cells=cell_info, meta=meta,
                          plots=[p.name for p in files if p.suffix in (".png", ".svg")])
    files.append(atomic.write_text(out_dir / "summary.md", text))
    return baselines, files


def _report_cell(run: CellRun) -> ReportCell:
    """A cell as the plots and summary.md read it: its record, its layers and float accuracy."""
    record: dict[str, Any] = {f.name: run.record[f.name] for f in fields(ReportCell)
                              if f.name not in ("index", "layer_names", "fp_accuracy", "edge_bits", "trace")}
    trace = None if "trace" not in run.record else ReportTrace(
        run.record["trace"], run.record["trace_period_s"], run.record["trace_min_bps"], run.record["trace_max_bps"])
    return ReportCell(index=run.cell.index, layer_names=run.layer_names, fp_accuracy=run.fp_accuracy,
                      edge_bits=run.edge_bits or run.record["edge_bits"], trace=trace, **record)


def _measurement_meta(cell: int, measurement: CellMeasurement) -> Measurement:
    """A cell's measurement as the plots and summary.md read it."""
    return Measurement(cell=cell, fp_accuracy=measurement.fp_accuracy,
                       max_accuracy_drop=measurement.max_accuracy_drop, cap=measurement.cap,
                       measured=measurement.measured, refused=measurement.refused,
                       proxy_source=measurement.proxy_source, front_plans=measurement.front_plans,
                       agreement=dict(measurement.agreement), repicked=dict(measurement.repicked))
