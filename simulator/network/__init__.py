"""Network between the edge device and the cloud: links and their models by protocol (`link_models`: tcp, the
TCP transfer-time model, and ideal), bandwidth traces, the segment-level SimPy simulation, the shared uplink
and the queueing oracles.

The search loop calls `Link.transfer_time_s` (analytic, vectorised over payload sizes); distributions
come from `simulate_transfer_times_s` and `simulate_shared_uplink`, never from the search loop.
"""
from simulator.network.link import Link
from simulator.network.link_models import (
    IdealLink,
    LinkModel,
    link_model,
    link_model_names,
    register_link_model,
    unregister_link_model,
)
from simulator.network.presets import link_from_config, load_link, preset_names
from simulator.network.queueing import (
    lindley_waits_s,
    md1_mean_wait_s,
    mg1_mean_wait_s,
    mm1_mean_wait_s,
    processor_sharing_mean_sojourn_s,
)
from simulator.network.shared_uplink import (
    UplinkTraffic,
    fifo_latencies_s,
    latency_summary,
    periodic_traffic,
    poisson_traffic,
    simulate_shared_uplink,
    simulate_uploads_s,
)
from simulator.network.simulation import TcpUpload, simulate_transfer_times_s, simulate_upload_s
from simulator.network.stages import DelayLine, FairShareTransmitter, Transmitter, make_transmitter, propagate, transmit
from simulator.network.tcp import TcpLink
from simulator.network.trace import BandwidthTrace

__all__ = [
    "BandwidthTrace", "DelayLine", "FairShareTransmitter", "IdealLink", "Link", "LinkModel", "TcpLink", "TcpUpload",
    "Transmitter", "UplinkTraffic", "fifo_latencies_s", "latency_summary", "lindley_waits_s", "link_from_config",
    "link_model", "link_model_names", "load_link", "make_transmitter", "md1_mean_wait_s", "mg1_mean_wait_s",
    "mm1_mean_wait_s", "periodic_traffic", "poisson_traffic", "preset_names", "processor_sharing_mean_sojourn_s",
    "propagate", "register_link_model", "simulate_shared_uplink", "simulate_transfer_times_s", "simulate_upload_s",
    "simulate_uploads_s", "transmit", "unregister_link_model",
]
