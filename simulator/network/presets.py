"""Network presets: YAML files in `simulator/network/presets/` (BLE, 3G, LTE, 5G, Wi-Fi, the paper's links).

A preset is validated first (unknown keys, wrong units, out-of-range values -> UserError naming the file and
the key), then turned into a `Link`. Keys (human units allowed): link (tcp | ideal), uplink, downlink, rtt,
loss, mtu, header, framing, initial_window, jitter, radio_energy_per_bit, shaper_burst, rto_min,
new_connection, window_open, trace (a bandwidth trace file, relative to the preset), description.
"""
from __future__ import annotations

from pathlib import Path


from hardware_models.units import parse_energy
from hardware_models.errors import UserError, check_keys, suggest
from hardware_models.units import parse_bytes, parse_rate, parse_time
from simulator.network.link import Link
from simulator.network.trace import BandwidthTrace

PRESET_DIR = Path(__file__).parent / "presets"

_FIELDS = {  # preset key -> (Link field, parser)
    "link": ("protocol", str),
    "uplink": ("uplink_bps", parse_rate),
    "downlink": ("downlink_bps", parse_rate),
    "rtt": ("rtt_s", parse_time),
    "loss": ("loss_rate", float),
    "mtu": ("mtu_bytes", lambda v, k: int(parse_bytes(v, k))),
    "header": ("header_bytes", lambda v, k: int(parse_bytes(v, k))),
    "framing": ("framing_bytes", lambda v, k: int(parse_bytes(v, k))),
    "initial_window": ("initial_window_segments", int),
    "jitter": ("jitter_s", parse_time),
    "radio_energy_per_bit": ("radio_energy_j_per_bit", parse_energy),
    "shaper_burst": ("shaper_burst_bytes", parse_bytes),
    "rto_min": ("rto_min_s", parse_time),
    "new_connection": ("new_connection", bool),
    "window_open": ("window_open", bool),
}
_OTHER_KEYS = ("description", "trace")


def preset_names() -> list[str]:
    """Names of the built-in network presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def link_from_config(config: dict, source: str, base_dir: Path | None = None, **overrides) -> Link:
    """A `Link` from a preset mapping; `overrides` are Link fields in SI units that replace the preset's."""
    fields: dict = {"name": source}
    check_keys(config, [*_FIELDS, *_OTHER_KEYS], source)
    for key, value in config.items():
        if key in _OTHER_KEYS:
            continue
        field, parse = _FIELDS[key]
        try:
            fields[field] = parse(value, f"{source}: {key}") if parse not in (str, int, float, bool) else parse(value)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, UserError):
                raise
            raise UserError(f"{source}: {key}: cannot read {value!r}") from None
    if "trace" in config:
        trace_path = Path(str(config["trace"]))
        if not trace_path.is_absolute() and base_dir is not None:
            trace_path = base_dir / trace_path
        fields["trace"] = BandwidthTrace.from_file(trace_path)
        fields.setdefault("uplink_bps", fields["trace"].mean_rate_bps)
    if "uplink_bps" not in fields and "uplink_bps" not in overrides and "trace" not in overrides:
        raise UserError(f"{source}: uplink: missing; expected a rate such as '3Mbps'")
    fields.update(overrides)
    if fields.get("trace") is not None:
        fields.setdefault("uplink_bps", fields["trace"].mean_rate_bps)
    try:
        return Link(**fields)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None


def load_link(spec: str, **overrides) -> Link:
    """A `Link` from a preset name (`lte`) or a YAML path, with optional Link-field overrides."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UserError(f"{spec}: no such network preset file")
    else:
        path = PRESET_DIR / f"{spec}.yaml"
        if not path.is_file():
            raise UserError(f"unknown network {spec!r}{suggest(spec, preset_names())}; "
                            f"expected a preset ({', '.join(preset_names())}) or a .yaml file")
    from hardware_models.yaml_io import read_yaml_file

    config = read_yaml_file(path, "network preset")
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a mapping of keys to values")
    return link_from_config(config, str(path) if path.parent != PRESET_DIR else path.stem, path.parent, **overrides)
