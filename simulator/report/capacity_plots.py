"""Capacity figures (matplotlib, Agg): latency percentiles against fleet size with the SLO line, GPU and
uplink utilisation against fleet size, and where the time goes at the knee (the largest fleet meeting the
SLO). One panel per group; one line per GPU count. Files are written atomically (`simulator.atomic`).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pandas as pd

from simulator import atomic
from simulator.capacity.records import STAGES
from simulator.report.plots import DPI, _pyplot  # the results figures' matplotlib set-up

STAGE_LABELS = {"edge_wait_s": "edge queue", "edge_s": "edge compute", "uplink_wait_s": "uplink queue",
                "uplink_s": "uplink transfer", "gpu_wait_s": "GPU batching queue", "gpu_s": "GPU batch service"}
STAGE_COLOURS = {"edge_wait_s": "#a6bddb", "edge_s": "#4c72b0", "uplink_wait_s": "#fdd0a2", "uplink_s": "#dd8452",
                 "gpu_wait_s": "#b2df8a", "gpu_s": "#55a868"}


def _save(fig, directory: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    # room for the figure title above the panels' own titles (they overlapped)
    fig.tight_layout(rect=(0, 0, 1, 0.9 if fig.get_suptitle() else 1))
    return [atomic.write_with(Path(directory) / f"{stem}.{fmt}",
                              partial(fig.savefig, dpi=DPI, format=fmt, bbox_inches="tight"))
            for fmt in formats]


def _group_panels(plt, points: pd.DataFrame, height: float = 3.2):
    """A figure with one panel per group (in order of appearance): (fig, [(axes, group, its rows)]). Points
    stopped as soon as their miss was certain have no numbers to draw and are left out."""
    points = points[points["p99_s"].notna()]
    groups = list(dict.fromkeys(points["group"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.6 * len(groups), height), squeeze=False)
    return fig, [(ax, group, points[points["group"] == group]) for ax, group in zip(axes[0], groups)]


def _per_gpu_count(plt, rows: pd.DataFrame):
    """(GPU count, its rows by fleet size, its colour) for each GPU count in `rows`."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (gpus, mine) in enumerate(rows.groupby("gpus")):
        yield gpus, mine.sort_values("devices"), colours[k % len(colours)]


def latency_plot(points: pd.DataFrame, slo_p99_s: float, directory: Path,
                 formats: Sequence[str] = ("png",)) -> list[Path]:
    """p50 / p95 / p99 (worst seed) in ms against devices, per group, one colour per GPU count; SLO dashed."""
    plt = _pyplot()
    fig, panels = _group_panels(plt, points)
    for ax, group, mine in panels:
        for gpus, rows, colour in _per_gpu_count(plt, mine):
            for key, style, label in (("p99_s", "-", "p99"), ("p95_s", "--", "p95"), ("p50_s", ":", "p50")):
                ax.plot(rows["devices"], rows[key] * 1e3, style, color=colour, marker="o" if key == "p99_s" else None,
                        markersize=3, label=f"{gpus} GPU{'s' if gpus > 1 else ''} {label}")
        ax.axhline(slo_p99_s * 1e3, color="#d62728", linestyle="-.", linewidth=1,
                   label=f"p99 SLO {slo_p99_s * 1e3:g} ms")
        top = max(3 * slo_p99_s * 1e3, float(mine["p50_s"].min()) * 1e3 * 1.1)
        _finish_axes(ax, group, "end-to-end latency (ms)", top)
        best = mine.loc[mine["p99_s"].idxmin()]
        if best["p99_s"] > slo_p99_s:  # no line crosses below the SLO: say why instead of an empty-looking panel
            ax.text(0.5, 0.3, f"no fleet meets the p99 SLO:\n{int(best['devices'])} device(s) alone give "
                    f"p99 {best['p99_s'] * 1e3:.4g} ms\n(SLO {slo_p99_s * 1e3:g} ms)", transform=ax.transAxes,
                    ha="center", va="center", fontsize=9, bbox={"facecolor": "white", "edgecolor": "#d62728"})
    fig.suptitle("Latency percentiles against fleet size (worst of the seeds)")
    written = _save(fig, directory, "latency", formats)
    plt.close(fig)
    return written


def _finish_axes(ax, group: str, ylabel: str, top: float) -> None:
    """A panel against fleet size: limits from zero, the group as title, labels, grid and legend."""
    ax.set_ylim(0, top)
    ax.set_xlim(left=0)
    ax.set_title(group)
    ax.set_xlabel("devices")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def utilisation_plot(points: pd.DataFrame, directory: Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """GPU utilisation (solid) and uplink utilisation (dashed) against devices, per group and GPU count."""
    plt = _pyplot()
    fig, panels = _group_panels(plt, points)
    for ax, group, mine in panels:
        for gpus, rows, colour in _per_gpu_count(plt, mine):
            ax.plot(rows["devices"], rows["gpu_utilisation"], "-o", color=colour, markersize=3,
                    label=f"GPU, {gpus} GPU{'s' if gpus > 1 else ''}")
            if "uplink_utilisation" in rows:
                ax.plot(rows["devices"], rows["uplink_utilisation"], "--", color=colour,
                        label=f"uplink (mean per link), {gpus} GPU{'s' if gpus > 1 else ''}")
        _finish_axes(ax, group, "utilisation (busy fraction)", 1.05)
    fig.suptitle("Utilisation against fleet size (mean of the seeds)")
    written = _save(fig, directory, "utilisation", formats)
    plt.close(fig)
    return written


def breakdown_plot(knees: pd.DataFrame, directory: Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Stacked mean time per stage (ms) at each group's knee, one bar per (group, GPU count)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.3 * len(knees) + 2), 3.4))
    labels = [f"{r['group']}\n{int(r['gpus'])} GPU, {int(r['devices'])} dev" for _, r in knees.iterrows()]
    bottom = [0.0] * len(knees)
    for stage in STAGES:
        values = (knees["mean_" + stage].fillna(0.0) * 1e3).tolist()
        ax.bar(labels, values, bottom=bottom, color=STAGE_COLOURS[stage], label=STAGE_LABELS[stage])
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("mean time per request (ms)")
    ax.set_title("Where the time goes at the knee (largest fleet meeting the SLO)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(alpha=0.3, axis="y")
    written = _save(fig, directory, "breakdown", formats)
    plt.close(fig)
    return written
