"""From plan to deployment: a plan exported as two ONNX models (`export`), their crossing tensors packed into
bytes (`packing`), the frames that carry them (`protocol`) and the two processes that run the split over TCP
(`runtime`)."""
from simulator.deploy.export import build_split, export_split, read_plan, wires_of
from simulator.deploy.packing import WireTensor, pack, packed_bytes, unpack

__all__ = ["WireTensor", "build_split", "export_split", "pack", "packed_bytes", "read_plan", "unpack", "wires_of"]
