"""A batching GPU's service time per batch size: the cloud part of a split plan run on a batch of requests."""
from __future__ import annotations

import numpy as np

from hardware_models.base import Accelerator
from simulator.graph.ir import Graph


def gpu_batch_latency_s(gpu: Accelerator, graph: Graph, edge_layers: set[str], bits: int, max_batch: int,
                        payload_bytes: float) -> np.ndarray:
    """(max_batch + 1,) seconds: at index b, `gpu`'s latency for the layers of `graph` outside `edge_layers` at
    batch b (weights and activations at `bits`, in the preset's execution mode), plus the host-to-device copy of
    b payloads of `payload_bytes`; all zeros when the cloud runs nothing or receives nothing (edge-only)."""
    specs = graph.layer_specs()
    cloud = [i for i, layer in enumerate(graph.layers) if layer.name not in edge_layers]
    latency = np.zeros(max_batch + 1)
    if not cloud or payload_bytes <= 0:
        return latency
    cloud_specs = [specs[i] for i in cloud]
    for batch in range(1, max_batch + 1):
        total = gpu.network_cost(cloud_specs, bits, bits, batch)[1].latency_s
        latency[batch] = total + gpu.copy_to_device_s(payload_bytes * batch)
    return latency
