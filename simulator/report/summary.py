"""summary.md: the scenario, the chosen plan per method, speed-ups against cloud-only and U8, accuracy,
energy and memory of each, and where the time goes, one section per sweep cell."""
from __future__ import annotations

import math

import pandas as pd

from hardware_models.errors import UserError
from hardware_models.registry import load_accelerator, preset_evidence
from simulator.accuracy.calibration import envelope_floors
from simulator.report.inputs import ReportCell, RunMeta
from simulator.report.plots import chosen_plan
from simulator.search.registry import method_names


def _ms(seconds) -> str:
    return "-" if _missing(seconds) else f"{float(seconds) * 1e3:.2f}"


def _x(value) -> str:
    return "-" if _missing(value) else f"{float(value):.2f}x"


def _num(value, digits: int = 2) -> str:
    return "-" if _missing(value) else f"{float(value):.{digits}f}"


def _mib(value) -> str:
    return "-" if _missing(value) else f"{float(value) / 2**20:.2f}"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _rate(bps: float) -> str:
    return f"{bps / 1e6:g} Mbit/s ({bps / 2**20:.3g} Mibit/s)"


def render_summary(*, baselines: pd.DataFrame, pareto: pd.DataFrame, timings: pd.DataFrame, cells: list[ReportCell],
                   meta: RunMeta, plots: list[str]) -> str:
    """The markdown text of summary.md."""
    lines = [f"# {meta.name}", ""]
    if meta.description:
        lines += [meta.description.strip(), ""]
    git = meta.git or {}
    lines += [f"Experiment `{meta.source}`, seed {meta.seed}, autosplit at git "
              f"{(git.get('commit') or 'unknown')[:12]}{' (with uncommitted changes)' if git.get('dirty') else ''}.",
              ""]
    if meta.reproducible:
        lines.append("Every search budget is a trial count: the same YAML and seed give identical tables.")
    else:
        lines.append("**Not reproducible:** at least one method ran on a wall-clock budget (`seconds`), so how far "
                     "it got depends on the machine and its load; use `trials` budgets for identical tables.")
    added = [m for m in meta.methods if m not in meta.requested_methods]
    if added:
        lines.append(f"Also run as references for the speed-ups: {', '.join(added)}.")
    lines += ["", f"Plans evaluated: {meta.plans_evaluated:,}; returned by the methods (their fronts, answers and "
              f"a sample of the rest): {meta.plans_returned:,}; kept in plans.csv / "
              f"plans.parquet: {meta.plans_kept:,} (each method's front and chosen plan, then a seeded random "
              f"sample; the cap is {meta.plans_cap:,} rows).", ""]
    if len(cells) > 1:
        lines += ["## Sweep", "", "| cell | " + " | ".join(meta.sweep) + " | fastest plan within bounds | "
                  "latency (ms) | speed-up vs cloud |", "|---|" + "---|" * (len(meta.sweep) + 3)]
        for cell in cells:
            plan = chosen_plan(baselines, cell.index)
            values = " | ".join(str(cell.sweep.get(k)) for k in meta.sweep)
            lines.append(f"| {cell.index} | {values} | {plan['method'] if plan is not None else 'none'} | "
                         f"{_ms(plan['latency_s']) if plan is not None else '-'} | "
                         f"{_x(plan['speedup_vs_cloud']) if plan is not None else '-'} |")
        lines.append("")
    for cell in cells:
        lines += _cell_section(cell, baselines, timings, multiple=len(cells) > 1, meta=meta)
    lines += ["## Files", "", "- `baselines.csv`: the chosen plan of every method in every cell (these tables); "
              "`pareto.csv`: the non-dominated plans of all methods together, among those within both bounds; "
              "`plans.csv` / `plans.parquet`: fronts, chosen plans and a sample of the other plans; "
              "`timings.csv`: seconds and evaluations per method; `config.resolved.yaml`: the resolved "
              "experiment, package versions, seed and git revision."]
    if plots:
        lines.append("- Figures: " + ", ".join(f"`{p}`" for p in plots) + ".")
    return "\n".join(lines) + "\n"


def _cell_section(cell: ReportCell, baselines: pd.DataFrame, timings: pd.DataFrame, multiple: bool,
                  meta: RunMeta | None = None) -> list[str]:
    rows = baselines[baselines["cell"] == cell.index]
    title = f"## Cell {cell.index}: {cell.label}" if multiple else "## Scenario"
    edge_bits = cell.edge_bits
    bits = "the preset's supported bit-widths" if not edge_bits else "/".join(str(b) for b in edge_bits)
    lines = [title, "",
             f"- model **{cell.model}**, edge **{cell.edge}** (bits: {bits}), cloud **{cell.cloud}** "
             f"({cell.cloud_bits}-bit)",
             f"- uplink {_rate(cell.uplink_bps)}, RTT {cell.rtt_s * 1e3:g} ms, `{cell.link}` link"
             + (f", loss {cell.loss_rate:g}" if cell.loss_rate else ""),
             *_trace_lines(cell),
             f"- edge memory {_size(cell.edge_memory_limit_bytes)} (`{cell.memory_model}` model), "
             f"accuracy drop at most {_points(cell.max_accuracy_drop)} (`{cell.accuracy_tier}` tier, "
             f"{cell.accuracy_granularity}), {_confidence(cell)}",
             f"- {_envelope(cell)}",
             f"- payloads: input `{cell.input_codec}`, activations `{cell.activation_codec}`",
             *_evidence_lines(cell), ""]
    measured = "measured_accuracy" in rows and rows["measured_accuracy"].notna().any()
    lines += ["| method | latency (ms) | edge | transfer | cloud | vs cloud | vs U8 | expected accuracy (%) | "
              "80% interval | drop at the bound's end (pt) | "
              + ("measured (%) | measured drop (pt) | " if measured else "")
              + "edge energy (mJ) | edge memory (MiB) | edge layers | feasible | search time (s) |",
              "|---|" + "---:|" * (15 if measured else 13) + "---:|"]
    times: pd.Series | dict = timings[timings["cell"] == cell.index].set_index("method")["elapsed_s"] \
        if len(timings) else {}
    for _, row in rows.iterrows():
        elapsed = _num(times.get(row["method"]), 3) if len(times) else "-"
        # with measurements, `feasible` is the measurement's verdict, not the drop column's (the proxy's)
        judged = " (measured)" if measured and not _missing(row.get("measured_accuracy")) else ""
        if isinstance(row.get("note"), str):
            lines.append(f"| {row['method']} | {row['note']} |  |  |  |  |  |  |  |  |  |  |  | "
                         + ("|  |  " if measured else "") + f"- | {elapsed} |")
            continue
        if not bool(row["found"]):
            lines.append(f"| {row['method']} | no plan meets the bounds |  |  |  |  |  |  |  |  |  |  |  | "
                         + ("|  |  " if measured else "") + f"no | {elapsed} |")
            continue
        lines.append(
            f"| {row['method']} | {_ms(row['latency_s'])} | {_ms(row['edge_s'])} | {_ms(row['transfer_s'])} | "
            f"{_ms(row['cloud_s'])} | {_x(row['speedup_vs_cloud'])} | {_x(row['speedup_vs_u8'])} | "
            f"{_num(row.get('accuracy_expected', row['accuracy']))} | {_interval(row)} | {_num(row['accuracy_drop'])} | "
            + (f"{_num(row['measured_accuracy'])} | {_num(row['measured_drop'])} | " if measured else "")
            + f"{_num(_mj(row['edge_energy_j']), 3)} | "
            f"{_mib(row['edge_memory_bytes'])} | {int(row['edge_layer_count'])} | "
            f"{'yes' if bool(row['feasible']) else '**no**'}{judged} | {elapsed} |")
    lines.append("")
    lines += _hypervolume_lines(rows)
    notes = [str(n) for n in rows.get("guarantee", pd.Series(dtype=str)).tolist() if isinstance(n, str) and n]
    if notes:
        lines += ["What each search guarantees:", ""] + [f"- {n}" for n in notes] + [""]
    if measured:
        lines += _measured_section(cell, rows, meta)
    plan = chosen_plan(baselines, cell.index)
    if plan is None:
        lines += ["No method found a plan within the memory and accuracy bounds.", ""]
        return lines
    total = float(plan["latency_s"])
    parts = {"edge compute": float(plan["edge_s"]), "transfer": float(plan["transfer_s"]),
             "cloud compute": float(plan["cloud_s"])}
    largest = max(parts, key=lambda name: parts[name])
    where = ", ".join(f"{name} {value * 1e3:.2f} ms ({value / total:.0%})" for name, value in parts.items())
    edge_count = int(plan["edge_layer_count"])
    placement = "cloud-only (nothing runs on the edge)" if edge_count == 0 else \
        f"{edge_count} layers on the edge (cut index {_cut(plan['cut_index'])})"
    u8 = rows[rows["method"] == "edge-u8"]
    u8_note = " (U8 itself breaks a bound)" if len(u8) and bool(u8.iloc[0]["found"]) and not bool(
        u8.iloc[0]["feasible"]) else ""
    lines += [f"**Fastest plan within the bounds: {plan['method']}**, {placement}: {total * 1e3:.2f} ms, "
              f"speed-up {_x(plan['speedup_vs_cloud'])} against cloud-only and {_x(plan['speedup_vs_u8'])} against "
              f"U8{u8_note}; "
              f"accuracy {_num(plan.get('accuracy_expected', plan['accuracy']))}% expected, {_interval(plan)} "
              f"(80% interval; {_drop(plan['accuracy_drop'])} at the bound's end)"
              + (f", measured {_num(plan['measured_accuracy'])}% ({_drop(plan['measured_drop'])})"
                 if measured and not _missing(plan.get("measured_accuracy")) else "")
              + ", edge energy "
              f"{_num(_mj(plan['edge_energy_j']), 3)} mJ, {_mib(plan['edge_memory_bytes'])} MiB on the edge, "
              f"{_num(plan['payload_bytes'], 0)} payload bytes ({_num(plan['wire_bytes'], 0)} on the wire).",
              f"Where the time goes: {where}; {largest} dominates.", ""]
    return lines


def _trace_lines(cell: ReportCell) -> list[str]:
    """What a bandwidth trace means for the numbers: the search minimises the mean over upload start times."""
    trace = cell.trace
    if trace is None:
        return []
    return [f"- the uplink follows the bandwidth trace `{trace.source}` ({_rate(trace.min_bps)} to "
            f"{_rate(trace.max_bps)}, mean {_rate(cell.uplink_bps)} over its {trace.period_s:g} s "
            "period): every transfer time is the mean over uploads started at 256 instants spread evenly over the "
            "period, so latencies are means over start times and the search minimises that mean; "
            "`autosplit netsim --trace` gives the distribution (p50, p99) of one payload's transfer"]


def _hypervolume_lines(rows: pd.DataFrame) -> list[str]:
    """Each searching method's front hypervolume against the exact front's (one reference point for all:
    cloud-only's latency and the accuracy-drop bound); nothing when exact did not run or its front is empty."""
    exact = rows[rows["method"] == "exact"] if "hypervolume" in rows else rows.iloc[:0]
    if not len(exact) or _missing(exact.iloc[0]["hypervolume"]) or not float(exact.iloc[0]["hypervolume"]) > 0:
        return []
    exact_hv = float(exact.iloc[0]["hypervolume"])
    searches = rows[~rows["method"].isin(method_names(baseline=True))]
    lines = ["Front hypervolume over (latency, accuracy drop), feasible plans, reference point cloud-only's latency "
             "and the drop bound (the larger, the better the front):", "", "| method | hypervolume | of exact's |",
             "|---|---:|---:|"]
    for _, row in searches.iterrows():
        hv = row["hypervolume"]
        lines.append(f"| {row['method']} | {f'{float(hv):.4g}' if not _missing(hv) else '-'} | "
                     f"{f'{float(hv) / exact_hv:.1%}' if not _missing(hv) else '-'} |")
    return lines + [""]


def _evidence_lines(cell: ReportCell) -> list[str]:
    """What the edge and cloud presets were checked against (or assume), as `autosplit hardware` says."""
    lines = []
    for side in ("edge", "cloud"):
        try:
            accelerator = load_accelerator(str(getattr(cell, side)))
        except (UserError, KeyError):
            continue
        mode = f" in {accelerator.mode_label()} mode" if accelerator.has_modes else ""
        lines.append(f"- {side} evidence ({getattr(cell, side)}{mode}): {preset_evidence(accelerator)}")
    return lines


def _confidence(cell: ReportCell) -> str:
    """Which end of the predicted accuracy's interval the bound and the drop column use."""
    if cell.accuracy_confidence == "pessimistic":
        return ("the bound applies to the pessimistic end of the 80% interval (`constraints.accuracy_confidence: "
                "pessimistic`): a plan the accuracy model cannot vouch for is never chosen; the drop column is "
                "taken there")
    return ("the bound applies to the expected accuracy (`constraints.accuracy_confidence: expected`): a chosen "
            "plan may sit where the accuracy model is unsure (see the interval column)")


def _envelope(cell: ReportCell) -> str:
    """The accuracy model's evidence envelope for the cell's tier and granularity, and whether it binds."""
    floors = envelope_floors(cell.accuracy_tier, cell.accuracy_granularity)
    text = "; ".join(f"{kind}s " + ", ".join(f"{role.replace('_', ' ')} >= {bits}" for role, bits in roles.items())
                     for kind, roles in floors.items())
    if cell.accuracy_extrapolate:
        return (f"accuracy evidence envelope (bits the published rows of two sources cover): {text}; "
                "`accuracy.extrapolate: true`, so plans outside it were allowed (their intervals widen below it)")
    return (f"accuracy evidence envelope (bits the published rows of two sources cover): {text}; no plan outside it "
            "is chosen at either confidence (`accuracy.extrapolate: false`; a model calibrated on its own "
            "measurements uses the bits it was measured at); a search that evaluated plans outside it says below how "
            "many it excluded")


def _interval(row) -> str:
    low, high = row.get("accuracy_low"), row.get("accuracy_high")
    return "-" if _missing(low) or _missing(high) else f"{float(low):.1f} .. {float(high):.1f}"


def _measured_section(cell: ReportCell, rows: pd.DataFrame, meta: RunMeta | None) -> list[str]:
    """How the plans were measured and chosen, and how well the proxy predicted the measurements."""
    info = meta.measurement(cell.index) if meta is not None else None
    if info is None:
        return []
    agreement = info.agreement
    lines = [f"**Measured accuracy.** The model is an ONNX file with labelled data: the float accuracy "
             f"{info.fp_accuracy:.2f}% is measured, and the proxy is the model's own ({info.proxy_source}). "
             f"Plans were measured with onnxruntime on the fake-quantized model (edge layers at the plan's bits, "
             f"cloud layers in float): {info.measured} distinct bit assignments (at most {info.cap}, "
             f"`accuracy.max_measured_plans`"
             + (f"; {info.refused} more were left unmeasured at the cap" if info.refused else "") + "). "
             "**Each method's plan is chosen by measured accuracy**: the fastest plan of its front (within the edge "
             f"memory) whose *measured* drop is at most {_points(info.max_accuracy_drop)}, found by bisecting "
             "the front ordered by latency on the measurement (the prediction is not used to skip plans); "
             "`feasible` is judged on the measurement (`predicted_feasible` keeps the proxy's verdict).", ""]
    for method, note in info.repicked.items():
        lines.append(f"- {method}: {note}.")
    if info.repicked:
        lines.append("")
    coverage = agreement.get("coverage")
    lines += [f"Predicted ({'the expected value' if agreement.get('coverage') is not None else 'accuracy'}) "
              f"against measured over the front's plans ({agreement['plans']} measured of "
              f"{info.front_plans} on the memory fronts of all methods together, spread over latency): Spearman "
              f"{_num(agreement['spearman'])}, mean absolute error {_num(agreement['mae_points'])} points, "
              + (f"{coverage:.0%} of the measurements inside the prediction interval." if coverage is not None else
                 "interval coverage not computed (the plans carry no accuracy_low / accuracy_high).")
              + " Every measured plan is in `measured.csv`; `accuracy.png` draws them.", ""]
    return lines


def _points(value: float) -> str:
    """'1 percentage point', '0.5 percentage points'."""
    return f"{value:g} percentage point{'' if value == 1 else 's'}"


def _size(size_bytes: float) -> str:
    """'16 KiB', '4 MiB', '1.5 GiB': the largest binary unit that leaves at least 1."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.4g} {unit}"
    return f"{size_bytes:.0f} B"


def _drop(points) -> str:
    """'-0.42 pt', or 'no loss' when the drop rounds to zero (never '-0.00 pt')."""
    text = _num(points)
    return "no loss" if text in ("0.00", "-0.00") else f"-{text} pt"


def _mj(joules):
    return None if _missing(joules) else float(joules) * 1e3


def _cut(value) -> str:
    return "none: not a prefix" if _missing(value) else str(int(value))
