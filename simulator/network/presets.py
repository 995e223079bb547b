"""Network presets: YAML files in `simulator/network/presets/` (BLE, 3G, LTE, 5G, Wi-Fi, the paper's links).

A preset is validated first (unknown keys, wrong units, out-of-range values -> UserError naming the file and
the key), then turned into a `Link`. Keys (human units allowed): link (tcp | ideal), uplink, downlink, rtt,
loss, mtu, header, framing, initial_window, jitter, radio_energy_per_bit, shaper_burst, rto_min,
new_connection, window_open, trace (a bandwidth trace file, relative to the preset), description.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import field_validator

from hardware_models.errors import UserError, suggest
from hardware_models.preset import AnyDuration, AnyEnergy, AnyRate, AnySize, StrictModel, validate_preset
from hardware_models.yaml_io import read_yaml
from simulator.network.link import Link
from simulator.network.link_models import link_model_names
from simulator.network.trace import BandwidthTrace

PRESET_DIR = Path(__file__).parent / "presets"


class NetworkPreset(StrictModel):
    """A network preset (human units). The values are parsed here and range-checked by `Link`, whose error
    names its own field (`loss_rate`, `rtt_s`)."""

    description: str | None = None
    link: str | None = None  # a registered link model (tcp, ideal)
    uplink: AnyRate | None = None
    downlink: AnyRate | None = None
    rtt: AnyDuration | None = None
    loss: float | None = None
    mtu: AnySize | None = None
    header: AnySize | None = None
    framing: AnySize | None = None
    initial_window: int | None = None
    jitter: AnyDuration | None = None
    radio_energy_per_bit: AnyEnergy | None = None
    shaper_burst: AnySize | None = None
    rto_min: AnyDuration | None = None
    new_connection: bool | None = None
    window_open: bool | None = None
    trace: str | None = None  # a bandwidth trace file, relative to the preset's folder

    @field_validator("link")
    @classmethod
    def _registered_link_model(cls, value: str | None) -> str | None:
        names = link_model_names()
        if value is not None and value not in names:
            raise ValueError(f"expected one of {', '.join(names)}, got {value!r}{suggest(value, names)}")
        return value

    def link_fields(self) -> dict[str, Any]:
        """The `Link` fields the preset gives (SI units)."""
        whole = {"mtu", "header", "framing"}  # bytes per packet: whole numbers
        return {LINK_FIELDS[key]: int(value) if key in whole else value
                for key, value in self.model_dump(exclude_none=True).items() if key in LINK_FIELDS}


LINK_FIELDS = {  # preset key -> Link field
    "link": "protocol", "uplink": "uplink_bps", "downlink": "downlink_bps", "rtt": "rtt_s", "loss": "loss_rate",
    "mtu": "mtu_bytes", "header": "header_bytes", "framing": "framing_bytes",
    "initial_window": "initial_window_segments", "jitter": "jitter_s", "radio_energy_per_bit": "radio_energy_j_per_bit",
    "shaper_burst": "shaper_burst_bytes", "rto_min": "rto_min_s", "new_connection": "new_connection",
    "window_open": "window_open",
}


def preset_names() -> list[str]:
    """Names of the built-in network presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def link_from_config(config: dict[str, Any], source: str, base_dir: Path | None = None, **overrides: Any) -> Link:
    """A `Link` from a preset mapping; `overrides` are Link fields in SI units that replace the preset's."""
    preset = validate_preset(NetworkPreset, config, source)
    fields: dict[str, Any] = {"name": source, **preset.link_fields()}
    if preset.trace is not None:
        trace_path = Path(preset.trace)
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


def load_link(spec: str, **overrides: Any) -> Link:
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
    config = read_yaml(path, "network preset")
    return link_from_config(config, str(path) if path.parent != PRESET_DIR else path.stem, path.parent, **overrides)
