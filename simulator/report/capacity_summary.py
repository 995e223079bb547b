"""capacity/summary.md: the capacity question, each group's plan and the largest fleet that meets the SLO,
as markdown from the capacity run's records (capacity.json's content and plans.csv's rows)."""
from __future__ import annotations


def capacity_summary(name: str, description: str | None, data: dict, plans: list[dict], *, max_batch: int,
                     max_wait_s: float, sharing: str, devices_per_uplink: int, discipline: str) -> str:
    """capacity/summary.md: the question, the plans' arithmetic and the answer per group and GPU count.
    `name` and `description` are the experiment's, `data` is capacity.json's content, `plans` plans.csv's rows;
    the rest are the capacity section's batching and uplink settings."""
    lines = [f"# {name}" if name.lower().startswith("capacity") else f"# Capacity: {name}", ""]
    if description:
        lines += [description.strip(), ""]
    if data.get("gpu"):
        gpu = data["gpu"]
        lines += [f"GPU: {gpu['name']}" + (f" in {gpu['mode']} mode" if gpu["mode"] else "")
                  + f". Evidence: {gpu['evidence']}", ""]
    lines += [f"p99 SLO {data['slo_p99_s'] * 1e3:g} ms; {len(data['seeds'])} seed{'s' * (len(data['seeds']) != 1)} of "
              f"{data['duration_s']:g} s "
              f"simulated ({data['warmup_s']:g} s warm-up) per point; a point meets the SLO when every seed does; "
              f"path: {data['path']}; batching: max batch {max_batch}, max wait "
              f"{max_wait_s * 1e3:g} ms; uplink {sharing}"
              + (f" ({devices_per_uplink} device{'s' * (devices_per_uplink != 1)} per link, {discipline})"
                 if sharing == "shared" else "") + ".", "", "## Plans", "",
              "| group | plan | cut | edge ms | edge load | payload B | uplink load/device | GPU ms @1 | GPU ms @max | "
              "devices at GPU saturation (1 GPU) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for p in plans:
        lines.append(f"| {p['group']} | {p['source']} | {p['cut_index']} | {p['edge_s'] * 1e3:.2f} | "
                     f"{p['edge_load']:.3f} | "
                     f"{p['payload_bytes']:.0f} | {p['uplink_load_per_device']:.3f} | {p['gpu_batch1_s'] * 1e3:.3f} | "
                     f"{p['gpu_max_batch_s'] * 1e3:.3f} (batch {p['gpu_max_batch']}) | "
                     f"{p['devices_at_gpu_saturation']:.0f} |")
    lines += ["", "## Largest fleet meeting the SLO", "", "| group | GPUs | devices | per GPU | p99 ms (worst seed) | "
              "GPU utilisation | $ per million |", "|---|---|---|---|---|---|---|"]
    for a in data["max_devices"]:
        cost = "-" if a["cost_per_million_usd"] is None else f"{a['cost_per_million_usd']:.3f}"
        p99 = "-" if a["p99_s"] is None else f"{a['p99_s'] * 1e3:.1f}"
        util = "-" if a["gpu_utilisation"] is None else f"{a['gpu_utilisation']:.2f}"
        devices = f"{a['devices']}" + (" (the search's limit: at least)" if a["devices"] == a["search_limit"] else "")
        if a["devices"] == 0 and a.get("alone_p99_s") is not None:
            devices = f"0 (one device alone: p99 {a['alone_p99_s'] * 1e3:.4g} ms > the SLO)"
        lines.append(f"| {a['group']} | {a['gpus']} | {devices} | {a['devices_per_gpu']:.0f} | {p99} | {util} "
                     f"| {cost} |")
    if data["fleet"]:
        lines += ["", "## The fleet as given", "", "| group | devices | GPUs needed | p99 ms | $ per million |",
                  "|---|---|---|---|---|"]
        for r in data["fleet"]:
            cost = "-" if r.get("cost_per_million_usd") is None else f"{r['cost_per_million_usd']:.3f}"
            lines.append(f"| {r['group']} | {r['devices']} | {r['gpus'] if r['gpus'] else 'not reachable'} | "
                         f"{r['p99_s'] * 1e3:.1f} | {cost} |")
    lines += ["", "Files: points.csv (every simulated point), max_devices.csv, plans.csv, capacity.json, "
              "latency.png, utilisation.png, breakdown.png.", ""]
    return "\n".join(lines)
