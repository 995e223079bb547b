"""How a split's crossing tensors become bytes on the wire, and back.

Every crossing tensor is a flat run of fixed-width values in C order: a quantized tensor's unsigned codes
q = round(x / scale) + zero_point in 0..2^bits-1 (`bits` bits each), a 16-bit tensor's IEEE half-precision
floats (16 bits each). The tensors of one request follow each other in the plan's order and form a single
bit stream, least significant bit first within a value and within a byte (numpy's `bitorder="little"`), with
no padding between tensors: the stream ends on a byte boundary only once, so a request carries
ceil(sum(elements x bits) / 8) bytes, exactly the simulator's raw `payload_bytes`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FLOAT_WIRE_BITS = 16


@dataclass(frozen=True)
class WireTensor:
    """One crossing tensor as it travels: its ONNX name in the cloud model, shape (batch first), bits."""

    name: str
    shape: tuple[int, ...]
    bits: int

    @property
    def elements(self) -> int:
        return int(math.prod(self.shape))

    @property
    def dtype(self) -> np.dtype:
        """The array type on either side: uint8 codes below 16 bits, float16 at 16."""
        return np.dtype(np.float16) if self.bits >= FLOAT_WIRE_BITS else np.dtype(np.uint8)


def packed_bytes(tensors: list[WireTensor]) -> int:
    """Bytes of one request's bit stream."""
    return math.ceil(sum(t.elements * min(t.bits, FLOAT_WIRE_BITS) for t in tensors) / 8)


def _bits_of(array: np.ndarray, tensor: WireTensor) -> np.ndarray:
    """(elements x bits) bit array of a tensor's values, least significant bit first."""
    if tensor.bits >= FLOAT_WIRE_BITS:
        raw = np.ascontiguousarray(array, dtype="<f2").reshape(-1).view(np.uint8)
        return np.unpackbits(raw, bitorder="little")
    codes = np.ascontiguousarray(array, dtype=np.uint8).reshape(-1, 1)
    return np.unpackbits(codes, axis=1, bitorder="little")[:, : tensor.bits].reshape(-1)


def pack(arrays: dict[str, np.ndarray], tensors: list[WireTensor]) -> bytes:
    """The request's bytes from the edge model's outputs (one array per tensor, shaped as the plan says).

    A code that does not fit its bits is an error, never silently truncated."""
    streams = []
    for tensor in tensors:
        array = np.asarray(arrays[tensor.name])
        if array.shape != tensor.shape:
            raise ValueError(f"{tensor.name}: shape {array.shape}, the plan says {tensor.shape}")
        if tensor.bits < FLOAT_WIRE_BITS and array.size and int(array.max()) >= 1 << tensor.bits:
            raise ValueError(f"{tensor.name}: code {int(array.max())} does not fit {tensor.bits} bits")
        streams.append(_bits_of(array, tensor))
    bits = np.concatenate(streams) if streams else np.zeros(0, np.uint8)
    return np.packbits(bits, bitorder="little").tobytes()


def unpack(payload: bytes, tensors: list[WireTensor]) -> dict[str, np.ndarray]:
    """The arrays of one request's bytes (the length must be `packed_bytes(tensors)`)."""
    expected = packed_bytes(tensors)
    if len(payload) != expected:
        raise ValueError(f"payload of {len(payload)} bytes, the plan's tensors pack into {expected}")
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), bitorder="little")
    out: dict[str, np.ndarray] = {}
    offset = 0
    for tensor in tensors:
        width = min(tensor.bits, FLOAT_WIRE_BITS)
        chunk = bits[offset: offset + tensor.elements * width]
        offset += tensor.elements * width
        if tensor.bits >= FLOAT_WIRE_BITS:
            values: np.ndarray = np.packbits(chunk, bitorder="little").view("<f2").astype(np.float16)
        else:
            grid = np.zeros((tensor.elements, 8), np.uint8)
            grid[:, :width] = chunk.reshape(tensor.elements, width)
            values = np.packbits(grid, axis=1, bitorder="little").reshape(-1)
        out[tensor.name] = values.reshape(tensor.shape)
    return out
