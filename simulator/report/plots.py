"""The results directory's figures (matplotlib, Agg): pareto, breakdown, bits, for uplink sweeps sweep and, where
plans were measured on an .onnx model's data, accuracy (predicted against measured).

Each is meant to be read without the code: axes name their quantity and unit, every method is in the legend,
baselines are labelled where they sit (labels placed so that none overlaps another label or a marker), and
infeasible plans (over the memory or accuracy bound) are drawn hollow.
"""
from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from simulator import atomic
from simulator.report.inputs import ReportCell, RunMeta
from simulator.search import method_names, plot_style
from simulator.search.base import predicted_column

MAX_PANELS = 4
DPI = 120
EDGE_COLOUR, TRANSFER_COLOUR, CLOUD_COLOUR = "#4c72b0", "#dd8452", "#55a868"


def _pyplot():
    """matplotlib.pyplot on the Agg backend with the figures' font sizes and a fixed SVG hash salt (the same
    data gives the same files); imported here, lazily, because matplotlib takes a while to import."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "svg.hashsalt": "autosplit",
                         "svg.fonttype": "none"})
    return plt


def _is_search(method: str) -> bool:
    """A registered method that is not a baseline: drawn as a front, with solid lines and larger markers."""
    return method in method_names(baseline=False)


def _save(fig, out_dir: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    paths = []
    for fmt in formats:
        # deterministic SVG/PNG: no creation date in the metadata
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        paths.append(atomic.write_with(out_dir / f"{stem}.{fmt}", partial(fig.savefig, format=fmt, dpi=DPI,
                                                                                 metadata=metadata)))
    return paths


def _panels(plt, count: int, width: float = 6.4, height: float = 4.6, columns: int | None = None):
    columns = columns or (1 if count == 1 else 2)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def write_plots(out_dir: Path, *, baselines: pd.DataFrame, pareto: pd.DataFrame, plans: pd.DataFrame,
                cells: list[ReportCell], meta: RunMeta, formats: Sequence[str] = ("png", "svg"),
                measured: pd.DataFrame | None = None, timings: pd.DataFrame | None = None,
                traces: dict[tuple[int, str], list] | None = None) -> list[Path]:
    """Write pareto, breakdown, bits, (for a sweep) sweep, (with `measured` plans) accuracy and (with `timings`)
    convergence figures in each of `formats`; returns the paths."""
    if not formats:
        return []
    plt = _pyplot()
    shown = cells[:MAX_PANELS]
    files: list[Path] = []
    for stem, draw in (("pareto", _pareto_figure), ("breakdown", _breakdown_figure), ("bits", _bits_figure)):
        fig = draw(plt, shown, baselines=baselines, pareto=pareto, plans=plans, meta=meta, total_cells=len(cells))
        files += _save(fig, out_dir, stem, formats)
        plt.close(fig)
    if len(cells) > 1:
        fig = _sweep_figure(plt, cells, baselines=baselines, meta=meta)
        files += _save(fig, out_dir, "sweep", formats)
        plt.close(fig)
    if measured is not None and not measured.empty:
        measured_cells = [c for c in shown if (measured["cell"] == c.index).any()]
        if measured_cells:
            fig = _accuracy_figure(plt, measured_cells, measured=measured, meta=meta, total_cells=len(cells))
            files += _save(fig, out_dir, "accuracy", formats)
            plt.close(fig)
    if timings is not None and len(timings):
        fig = _convergence_figure(plt, shown, baselines=baselines, timings=timings, traces=traces or {}, meta=meta,
                                  total_cells=len(cells))
        files += _save(fig, out_dir, "convergence", formats)
        plt.close(fig)
    return files


# --- convergence ----------------------------------------------------------------------------------------
def _convergence_figure(plt, cells, *, baselines, timings, traces, meta, total_cells):
    """Front hypervolume (the baselines table's: reference cloud-only's latency and the drop bound) against
    wall seconds, per cell: a line for a method that reports its trace (Optuna), a point at its run time for
    the others, the exact front's as a dashed level."""
    fig, axes = _panels(plt, len(cells))
    handles: dict[str, object] = {}
    for ax, cell in zip(axes, cells):
        index = cell.index
        rows = baselines[baselines["cell"] == index].set_index("method")
        elapsed = timings[timings["cell"] == index].set_index("method")["elapsed_s"]
        for method in [m for m in rows.index if m not in method_names(baseline=True) and m in elapsed.index]:
            style = plot_style(method)
            hv = rows.at[method, "hypervolume"] if "hypervolume" in rows else np.nan
            trace = traces.get((index, method)) or []
            if trace:
                seconds, values = zip(*trace)
                handles[style.label] = ax.step(np.maximum(seconds, 1e-3), values, where="post", color=style.colour,
                                               label=style.label)[0]
            elif not pd.isna(hv):
                handles[style.label] = ax.scatter([max(float(elapsed[method]), 1e-3)], [hv], color=style.colour,
                                                  marker=style.marker, label=style.label, zorder=3)
            if method == "exact" and not pd.isna(hv):
                ax.axhline(hv, color=style.colour, linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.tick_params(axis="x", which="minor", labelbottom=False)
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("front hypervolume")
        ax.set_title(_panel_title(cell), fontsize=9)
    _suptitle(fig, meta, f"front hypervolume against search time{_more(total_cells)}")
    if handles:
        fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=4, frameon=False,
                   fontsize=8, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, _legend_room(fig, math.ceil(len(handles) / 4)), 1, 0.97))
    return fig


def _legend_room(fig, rows: int) -> float:
    """Fraction of the figure's height a figure legend of `rows` rows at the bottom needs (about 0.19 in a row)."""
    return min(0.5, (0.19 * rows + 0.15) / fig.get_figheight())


def _suptitle(fig, meta: RunMeta, what: str) -> None:
    """The experiment's name over what the figure shows, wrapped to the figure's width."""
    width = max(40, int(fig.get_figwidth() * 11))  # about 11 characters per inch at this size
    fig.suptitle("\n".join(textwrap.wrap(meta.name, width) + textwrap.wrap(what, width)), fontsize=10.5)


def _more(total: int) -> str:
    return f" (first {MAX_PANELS} of {total} sweep cells; every cell is in the CSV files)" if total > MAX_PANELS else ""


def _fmt_rate(bps: float) -> str:
    return f"{bps / 1e6:g} Mbit/s" if bps >= 1e6 else f"{bps / 1e3:g} kbit/s"


def _panel_title(cell: ReportCell) -> str:
    swept = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in cell.sweep.items())
    base = f"{cell.model}: {cell.edge} -> {cell.cloud}, {_fmt_rate(cell.uplink_bps)} {cell.link}"
    return base + (f"\n({swept})" if swept else "")


# --- pareto ---------------------------------------------------------------------------------------------
def _pareto_figure(plt, cells, *, baselines, pareto, plans, meta, total_cells):
    single = len(cells) == 1
    fig, axes = _panels(plt, len(cells), width=8.4 if single else 7.0, height=5.6 if single else 5.2)
    handles: dict[str, object] = {}
    for ax, cell in zip(axes, cells):
        _pareto_panel(ax, cell, baselines, pareto, plans, handles)
    _suptitle(fig, meta, f"accuracy against latency{_more(total_cells)}")
    columns = 3 if single else 4
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=columns, frameon=False,
               fontsize=8, bbox_to_anchor=(0.5, 0.0))
    rows = math.ceil(len(handles) / columns)
    fig.tight_layout(rect=(0, _legend_room(fig, rows), 1, 0.97))
    _place_all_labels(fig)
    return fig


def _pareto_panel(ax, cell, baselines, pareto, plans, handles) -> None:
    index = cell.index
    bound = float(cell.max_accuracy_drop)
    chosen = baselines[baselines["cell"] == index]
    found = chosen[chosen["found"].astype(bool)]
    cell_plans = plans[plans["cell"] == index] if "cell" in plans else plans.iloc[:0]
    fp = _fp_accuracy(cell, cell_plans, found)
    drops = pd.concat([cell_plans["accuracy_drop"], found["accuracy_drop"]]).astype(float)
    # y range: the interesting band near the bound; plans far below it are clamped to the bottom edge
    y_low = fp - max(3.0 * bound, 1.0, min(float(drops.max()) if len(drops) else 0.0, 3.0 * bound + 1.0) * 1.05)
    y_high = fp + 0.15 * (fp - y_low)

    sample = cell_plans[cell_plans["kept_as"] == "sample"]
    if len(sample):
        h = ax.scatter(sample["latency_s"] * 1e3, np.maximum(sample["accuracy"], y_low), s=5, c="#c8c8c8",
                       lw=0, zorder=1, rasterized=True)
        handles.setdefault("other evaluated plans (sample)", h)
    for method in method_names(baseline=False):
        front = cell_plans[(cell_plans["method"] == method) & (cell_plans["kept_as"].isin(["front", "chosen", "proxy choice"]))]
        front = front[front["edge_memory_bytes"] <= cell.edge_memory_limit_bytes].sort_values("latency_s")
        if len(front):
            style = plot_style(method)
            h = ax.scatter(front["latency_s"] * 1e3, np.maximum(front["accuracy"], y_low), s=14, marker=style.marker,
                           facecolor="none", edgecolor=style.colour, lw=0.8, zorder=3, alpha=0.8)
            handles.setdefault(f"{style.label} front (fits memory)", h)
    overall = pareto[pareto["cell"] == index].sort_values("latency_s") if "cell" in pareto else pareto.iloc[:0]
    if len(overall):
        h, = ax.step(overall["latency_s"] * 1e3, np.maximum(overall["accuracy"], y_low), where="post",
                     color="black", lw=1.2, zorder=4)
        handles.setdefault("Pareto front, all methods", h)
        if {"accuracy_low", "accuracy_high"} <= set(overall.columns):
            h = ax.fill_between(overall["latency_s"] * 1e3, np.maximum(overall["accuracy_low"].astype(float), y_low),
                                np.maximum(overall["accuracy_high"].astype(float), y_low), step="post",
                                color="black", alpha=0.08, lw=0, zorder=2)
            handles.setdefault("its 80% accuracy interval", h)
    below = int((cell_plans["accuracy"] < y_low).sum()) if len(cell_plans) else 0
    h = ax.axhline(fp - bound, color="#d62728", ls="--", lw=1.0, zorder=2, gid="autosplit-hline")
    handles.setdefault("accuracy bound", h)
    ax.text(1.0, fp - bound, f" bound: -{bound:g} pt", transform=ax.get_yaxis_transform(), color="#d62728",
            va="center", ha="left", fontsize=8, clip_on=False)
    ax.axhline(fp, color="#999999", ls=":", lw=0.8, zorder=2, gid="autosplit-hline")

    groups: dict[tuple, list] = {}  # methods whose plans coincide share one label
    for _, row in found.iterrows():
        style = plot_style(row["method"])
        colour = style.colour
        feasible = bool(row["feasible"])
        accuracy = float(row["accuracy"])
        clamped = accuracy < y_low
        y = y_low if clamped else accuracy
        h = ax.scatter([row["latency_s"] * 1e3], [y], s=90 * style.size if _is_search(row["method"]) else 60,
                       marker="v" if clamped else style.marker, zorder=6 + style.on_top, edgecolor=colour, lw=1.5,
                       facecolor=colour if feasible else "white")
        handles.setdefault(style.label, h)
        if not _missing_interval(row):
            ax.vlines(row["latency_s"] * 1e3, max(float(row["accuracy_low"]), y_low),
                      max(float(row["accuracy_high"]), y_low), color=colour, lw=1.0, alpha=0.7, zorder=5)
        key = (round(math.log(max(float(row["latency_s"]), 1e-12)), 3), round(y, 3), feasible)  # 0 s: no log
        groups.setdefault(key, []).append((style.label, colour, float(row["latency_s"]) * 1e3, y, accuracy,
                                           clamped))
    for (_, _, feasible), members in groups.items():
        _, colour, x, y, accuracy, clamped = members[0]
        label = shared_label([m[0] for m in members]) + ("" if feasible else " (infeasible)") + (
            f"\n{accuracy:.1f}% (off scale)" if clamped else "")
        ax.annotate(label, (x, y), xytext=(6, 6), textcoords="offset points", fontsize=7.5,
                    color=colour if len(members) == 1 else "#333333", zorder=7, gid="autosplit-label")
    ax.set_xscale("log")
    ax.set_ylim(y_low - 0.04 * (y_high - y_low), y_high)
    ax.set_xlabel("end-to-end latency (ms, log scale)"
                  + (f"\n({below} kept plans below {y_low:.1f}% are drawn on the bottom edge)" if below else ""))
    ax.set_ylabel("predicted top-1 accuracy (%)\n(at the bound's end; bars: 80% interval)")
    ax.set_title(_panel_title(cell))
    ax.grid(True, which="major", alpha=0.25)
    _pad_log_x(ax)


def _missing_interval(row) -> bool:
    values = [row.get("accuracy_low"), row.get("accuracy_high")]
    return any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values)


def _pad_log_x(ax) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    low, high = ax.get_xlim()
    ax.set_xlim(low / 1.3, high * 2.2)  # room for labels on the right of the slowest markers
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    # within about a decade the major ticks are too few: label the minor ones (2, 3, 5 x 10^k) too
    few = math.log10(high * 2.2) - math.log10(low / 1.3) < 1.6
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}"[0] in "25" else "")
                                 if few else NullFormatter())


def _fp_accuracy(cell, cell_plans, found) -> float:
    if cell.fp_accuracy is not None:
        return float(cell.fp_accuracy)
    for frame in (found, cell_plans):
        if len(frame):
            return float((frame["accuracy"] + frame["accuracy_drop"]).median())
    return 100.0


def shared_label(names: list[str], per_line: int = 3) -> str:
    """A marker's label: the method's name, or, where several methods chose the same plan (their markers
    coincide), say so and list them a few per line so that none is lost in one long line."""
    if len(names) == 1:
        return names[0]
    lines = [", ".join(names[i:i + per_line]) for i in range(0, len(names), per_line)]
    return f"same plan ({len(names)} methods):\n" + ",\n".join(lines)


def _place_all_labels(fig) -> None:
    """Move every baseline label to a nearby spot where it overlaps no other label and no labelled marker."""
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.texts if t.get_gid() == "autosplit-label"]
        if labels:
            _place_labels(ax, labels, renderer)


def _place_labels(ax, labels, renderer) -> None:
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    axes_box = ax.get_window_extent(renderer)
    anchors = [ax.transData.transform(t.xy) for t in labels]
    obstacles = [Bbox.from_bounds(x - 6, y - 6, 12, 12) for x, y in anchors]
    # every other plotted point (fronts, samples) is a small obstacle too, checked in one numpy expression
    points = [c.get_offset_transform().transform(c.get_offsets()) for c in ax.collections if len(c.get_offsets())]
    dots = np.concatenate(points) if points else np.zeros((0, 2))
    rules = [ax.transData.transform((1.0, line.get_ydata()[0]))[1] for line in ax.lines
             if line.get_gid() == "autosplit-hline"]
    placed: list = []
    directions = [(1, 1), (1, -1), (1, 0), (-1, 1), (-1, -1), (0, 1), (0, -1), (-1, 0)]
    order = np.argsort([a[0] for a in anchors])
    for i in order:
        label = labels[i]
        best, best_score = None, math.inf
        for radius in (7, 14, 24, 36, 52, 72, 96, 128):
            for dx, dy in directions:
                norm = math.hypot(dx, dy)
                offset = (radius * dx / norm, radius * dy / norm)
                label.set_position(offset)
                label.set_ha("left" if dx > 0 else "right" if dx < 0 else "center")
                label.set_va("bottom" if dy > 0 else "top" if dy < 0 else "center")
                label.update_positions(renderer)
                box = Text.get_window_extent(label, renderer).padded(1.5)
                inside = (box.x0 >= axes_box.x0 + 3 and box.x1 <= axes_box.x1 - 3 and box.y0 >= axes_box.y0 + 3
                          and box.y1 <= axes_box.y1 - 3)
                if not inside or any(box.overlaps(other) for other in placed):
                    continue  # never outside the axes, never over another label
                # softer: markers, plotted points and the horizontal reference lines, then distance
                covered = int(np.count_nonzero((dots[:, 0] > box.x0 - 2) & (dots[:, 0] < box.x1 + 2)
                                               & (dots[:, 1] > box.y0 - 2) & (dots[:, 1] < box.y1 + 2)))
                score = (covered + 5 * sum(box.overlaps(other) for other in obstacles)
                         + 3 * sum(box.y0 < y < box.y1 for y in rules))
                if score < best_score:
                    best, best_score = (offset, label.get_ha(), label.get_va(), box, radius), score
                if score == 0:
                    break
            if best_score == 0:
                break
        if best is None:  # no spot inside the axes: the default spot
            label.set_position((7, 7))
            label.set_ha("left")
            label.set_va("bottom")
            label.update_positions(renderer)
            best = ((7, 7), "left", "bottom", Text.get_window_extent(label, renderer).padded(1.5), 7)
        offset, ha, va, box, radius = best
        label.set_position(offset)
        label.set_ha(ha)
        label.set_va(va)
        placed.append(box)
        if radius >= 14:
            ax.annotate("", label.xy, xytext=offset, textcoords="offset points", zorder=5,
                        arrowprops={"arrowstyle": "-", "lw": 0.5, "color": label.get_color(), "shrinkA": 0,
                                    "shrinkB": 3})


# --- breakdown ------------------------------------------------------------------------------------------
def _breakdown_figure(plt, cells, *, baselines, pareto, plans, meta, total_cells):
    methods = meta.methods
    fig, axes = _panels(plt, len(cells), width=6.8, height=0.42 * len(methods) + 1.6)
    for ax, cell in zip(axes, cells):
        rows = baselines[baselines["cell"] == cell.index].set_index("method")
        y = np.arange(len(methods))[::-1]
        totals = []
        for yi, method in zip(y, methods):
            row = rows.loc[method] if method in rows.index else None
            if row is None or not bool(row["found"]):
                ax.text(0, yi, "  no plan meets the bounds", va="center", fontsize=8, color="#666666")
                totals.append(0.0)
                continue
            parts = [float(row["edge_s"]) * 1e3, float(row["transfer_s"]) * 1e3, float(row["cloud_s"]) * 1e3]
            left = 0.0
            hatch = None if bool(row["feasible"]) else "//"
            for value, colour in zip(parts, (EDGE_COLOUR, TRANSFER_COLOUR, CLOUD_COLOUR)):
                ax.barh(yi, value, left=left, color=colour, hatch=hatch, edgecolor="white", height=0.7)
                left += value
            totals.append(left)
            note = "" if bool(row["feasible"]) else "  infeasible"
            ax.text(left, yi, f" {left:.1f} ms{note}", va="center", fontsize=8)
        ax.set_yticks(y, methods)
        ax.set_xlabel("latency (ms): edge compute + transfer + cloud compute")
        ax.set_xlim(0, max(totals + [1e-3]) * 1.35)
        ax.set_title(_panel_title(cell))
        ax.grid(True, axis="x", alpha=0.25)
    from matplotlib.patches import Patch

    handles = [Patch(color=EDGE_COLOUR, label="edge compute"), Patch(color=TRANSFER_COLOUR, label="transfer"),
               Patch(color=CLOUD_COLOUR, label="cloud compute"),
               Patch(facecolor="white", edgecolor="#555555", hatch="//", label="hatched: over a bound")]
    _suptitle(fig, meta, f"where the time goes: the chosen plan of each method{_more(total_cells)}")
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, _legend_room(fig, 1), 1, 0.97))
    return fig


# --- bits -----------------------------------------------------------------------------------------------
def chosen_plan(baselines: pd.DataFrame, cell_index: int) -> pd.Series | None:
    """The fastest plan that meets every bound in a cell, over all methods (None when none does)."""
    rows = baselines[(baselines["cell"] == cell_index) & baselines["found"].astype(bool)
                     & baselines["feasible"].fillna(False).astype(bool)]
    if rows.empty:
        return None
    return rows.sort_values(["latency_s", "accuracy_drop"], kind="stable").iloc[0]


def _as_list(value) -> list:
    """A per-layer list from a table cell: a list, an array, or JSON text (as in the CSV files)."""
    if isinstance(value, str):
        return list(json.loads(value)) if value else []
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return list(value)


def _bits_figure(plt, cells, *, baselines, pareto, plans, meta, total_cells):
    layer_count = max(len(c.layer_names) for c in cells) or 1
    width = min(18.0, max(8.0, 0.16 * layer_count + 2.5))
    fig, axes = plt.subplots(len(cells), 1, figsize=(width, 3.9 * len(cells) + 0.5), squeeze=False)
    legend: dict[str, object] = {}
    for ax, cell in zip(axes[:, 0], cells):
        plan = chosen_plan(baselines, cell.index)
        names = list(cell.layer_names)
        if plan is None:
            ax.text(0.5, 0.5, "no plan meets the bounds in this cell", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
            ax.set_title(_panel_title(cell))
            continue
        edge = _as_list(plan["edge_layers"])
        wbits = dict(zip(edge, _as_list(plan["weight_bits"])))
        abits = dict(zip(edge, _as_list(plan["activation_bits"])))
        names = names or edge
        x = np.arange(len(names))
        cloud_bits = float(cell.cloud_bits)
        on_edge = np.array([n in abits for n in names])
        weight = np.array([np.nan if (n in wbits and wbits[n] is None) else (wbits[n] if n in wbits else np.nan)
                           for n in names], dtype=float)
        activation = np.array([abits.get(n, np.nan) for n in names], dtype=float)
        ax.bar(x - 0.2, np.where(on_edge, weight, np.nan), width=0.4, color="#4c72b0", label="weight bits (edge)")
        ax.bar(x + 0.2, np.where(on_edge, activation, np.nan), width=0.4, color="#dd8452",
               label="activation bits (edge)")
        ax.bar(x, np.where(on_edge, np.nan, cloud_bits), width=0.8, color="#dddddd",
               label=f"cloud layers ({cloud_bits:g}-bit)")
        no_weights = on_edge & np.isnan(weight)
        if no_weights.any():
            ax.scatter(x[no_weights] - 0.2, np.full(no_weights.sum(), 0.4), marker="x", s=12, color="#4c72b0",
                       label="layer without weights", zorder=3)
        edge_positions = np.flatnonzero(on_edge)
        if len(edge_positions) and len(edge_positions) < len(names):
            split = edge_positions.max() + 0.5
            ax.axvline(split, color="#d62728", lw=1.5, ls="--")
            ax.text(split, 0.97, " split: edge | cloud ", transform=ax.get_xaxis_transform(), color="#d62728",
                    ha="center", va="top", fontsize=8, bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        step = max(1, math.ceil(len(names) / 60))
        ax.set_xticks(x[::step], [names[i] for i in x[::step]], rotation=90, fontsize=6)
        ax.set_xlim(-0.8, len(names) - 0.2)
        ax.set_ylim(0, max(cloud_bits, 8) * 1.18)
        ax.set_ylabel("bits")
        ax.set_xlabel("layer (execution order)" + (f", one name in {step} shown" if step > 1 else ""))
        place = "cloud-only" if not len(edge_positions) else f"{len(edge_positions)} of {len(names)} layers on the edge"
        ax.set_title(f"{_panel_title(cell).splitlines()[0]}\nchosen plan: {plan['method']}, {place}, "
                     f"{float(plan['latency_s']) * 1e3:.1f} ms, "
                     + (f"-{float(plan['accuracy_drop']):.2f} pt" if round(float(plan['accuracy_drop']), 2) else "no loss"))
        ax.grid(True, axis="y", alpha=0.25)
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    _suptitle(fig, meta, f"per-layer bit-widths of the fastest plan within the bounds{_more(total_cells)}")
    if legend:
        fig.legend(list(legend.values()), list(legend.keys()), loc="lower center", ncol=4, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, _legend_room(fig, 1) if legend else 0, 1, 0.97))
    return fig


# --- sweep ----------------------------------------------------------------------------------------------
def _sweep_figure(plt, cells, *, baselines, meta):
    swept_rate = "network.uplink" in meta.sweep
    others = [k for k in meta.sweep if k != "network.uplink"] if swept_rate else []
    groups: dict[tuple, list[dict]] = {}
    for cell in cells:
        groups.setdefault(tuple((k, cell.sweep[k]) for k in others), []).append(cell)
    keys = list(groups)[:MAX_PANELS]
    fig, axes = _panels(plt, len(keys), width=6.6, height=4.8)
    handles: dict[str, object] = {}
    for ax, key in zip(axes, keys):
        group = groups[key]
        index = [c.index for c in group]
        rows = baselines[baselines["cell"].isin(index) & baselines["found"].astype(bool)]
        if swept_rate:
            x_of = {c.index: c.uplink_bps / 1e6 for c in group}
        else:
            x_of = {c.index: i for i, c in enumerate(group)}
        for method in meta.methods:
            mine = rows[rows["method"] == method].copy()
            if mine.empty:
                continue
            mine["x"] = mine["cell"].map(x_of)
            mine = mine.sort_values("x")
            style = plot_style(method)
            h, = ax.plot(mine["x"], mine["latency_s"] * 1e3, color=style.colour, lw=1.3,
                         ls="-" if _is_search(method) else "--")
            feasible = mine["feasible"].astype(bool).to_numpy()
            ax.scatter(mine["x"], mine["latency_s"] * 1e3, marker=style.marker, s=40 * style.size,
                       edgecolor=style.colour, lw=1.2, facecolor=np.where(feasible, style.colour, "white"),
                       zorder=3 + style.on_top)
            handles.setdefault(method, (h, ax.scatter([], [], marker=style.marker, s=40, color=style.colour)))
        ax.set_yscale("log")
        from matplotlib.ticker import FuncFormatter

        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}"[0] in "25" else ""))
        ax.set_ylabel("latency of the chosen plan (ms, log scale)")
        if swept_rate:
            ax.set_xscale("log")
            ticks = sorted(set(x_of.values()))
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("uplink rate (Mbit/s, log scale)")
        else:
            ax.set_xticks(list(x_of.values()), [c.label.replace(", ", "\n") for c in group], fontsize=7)
            ax.set_xlabel("sweep cell")
        ax.set_title(", ".join(f"{k}={v}" for k, v in key) or f"{group[0].model}: {group[0].edge} -> "
                     f"{group[0].cloud}")
        ax.grid(True, which="major", alpha=0.25)
    from matplotlib.lines import Line2D

    legend = [Line2D([], [], color=plot_style(m).colour, marker=plot_style(m).marker,
                     ls="-" if _is_search(m) else "--", label=plot_style(m).label) for m in handles]
    legend.append(Line2D([], [], color="#555555", marker="o", markerfacecolor="white", ls="none",
                         label="hollow: over a bound"))
    _suptitle(fig, meta, "latency against uplink rate: the chosen plan of each method")
    columns = max(2, min(6, int(fig.get_figwidth() / 1.7)))
    fig.legend(handles=legend, loc="lower center", ncol=columns, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, _legend_room(fig, math.ceil(len(legend) / columns)), 1, 0.97))
    return fig


# --- accuracy: predicted against measured --------------------------------------------------------------------
def _accuracy_figure(plt, cells, *, measured: pd.DataFrame, meta: RunMeta, total_cells: int):
    """Per cell: each measured plan's predicted accuracy (with its interval as an error bar where the plans carry
    accuracy_low / accuracy_high) against its measured accuracy; the front's plans small, each method's choice
    large; the diagonal is a perfect prediction and the dotted lines the accuracy bound."""
    single = len(cells) == 1
    fig, axes = _panels(plt, len(cells), width=7.6 if single else 6.4, height=6.6 if single else 5.8)
    handles: dict[str, object] = {}
    for ax, cell in zip(axes, cells):
        _accuracy_panel(ax, cell, measured[measured["cell"] == cell.index], meta, handles)
    _suptitle(fig, meta, f"predicted against measured accuracy{_more(total_cells)}")
    columns = 2 if single else 3
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=columns, frameon=False,
               fontsize=8, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, _legend_room(fig, math.ceil(len(handles) / columns)), 1, 0.95))
    return fig


def _accuracy_panel(ax, cell: ReportCell, rows: pd.DataFrame, meta: RunMeta, handles: dict) -> None:
    info = meta.measurement(cell.index)
    predicted = predicted_column(rows)
    interval = "accuracy_low" in rows and "accuracy_high" in rows and rows["accuracy_low"].notna().any()
    front = rows[rows["role"] == "front"]
    if len(front):
        colour = "#1f77b4"
        error = None
        if interval:
            error = np.vstack([front[predicted] - front["accuracy_low"], front["accuracy_high"] - front[predicted]])
            error = np.where(np.isfinite(error), np.maximum(error, 0.0), 0.0)
        container = ax.errorbar(front["measured_accuracy"], front[predicted], yerr=error, fmt="o", ms=4,
                                color=colour, ecolor="#9ecae1", elinewidth=1, capsize=2, alpha=0.85, zorder=2)
        label = "front plans" + (" (bar: prediction interval)" if interval else "")
        handles.setdefault(label, container)
    chosen = rows[rows["role"].isin(["proxy choice", "chosen"])]
    for (method, role), group in chosen.groupby(["method", "role"], sort=False):
        style = plot_style(str(method))
        filled = role == "chosen"
        point = ax.scatter(group["measured_accuracy"], group[predicted], s=90, marker=style.marker, zorder=3,
                           facecolors=style.colour if filled else "none", edgecolors=style.colour, linewidths=1.4)
        what = "chosen plan" if filled else "the proxy's choice (not kept)"
        handles.setdefault(f"{style.label}: {what}", point)
    values = pd.concat([rows[predicted], rows["measured_accuracy"]]).to_numpy(float)
    values = values[np.isfinite(values)]
    if values.size:
        low, high = float(values.min()), float(values.max())
        pad = max(1.0, 0.05 * (high - low))
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="#444444", lw=0.8, ls="--", zorder=1)
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
    if info is not None:
        floor = info.fp_accuracy - info.max_accuracy_drop
        ax.axvline(floor, color="#d62728", lw=0.8, ls=":")
        ax.axhline(floor, color="#d62728", lw=0.8, ls=":")
        handles.setdefault(f"accuracy bound (float {info.fp_accuracy:.1f}% - {info.max_accuracy_drop:g} pt)",
                           ax.lines[-1])
        agreement = info.agreement
        text = [f"front: {agreement['plans']} plans measured of {info.front_plans}",
                f"Spearman {_stat(agreement['spearman'])}, MAE {_stat(agreement['mae_points'])} pt"]
        if agreement.get("coverage") is not None:
            text.append(f"inside the interval: {agreement['coverage']:.0%}")
        ax.text(0.03, 0.97, "\n".join(text), transform=ax.transAxes, va="top", ha="left", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#cccccc"})
    ax.set_xlabel("measured accuracy (%, onnxruntime on the fake-quantized model)")
    ax.set_ylabel("predicted accuracy (%" + (", expected; bar: interval)" if interval else ")"))
    ax.set_title(_panel_title(replace(cell, model=Path(cell.model).name)))
    ax.grid(True, alpha=0.3)


def _stat(value) -> str:
    return "-" if value is None or not np.isfinite(float(value)) else f"{float(value):.2f}"
