"""The frames between `run-edge` and `serve-cloud`: a fixed 32-byte header, then a body of a length the plan fixes.

Header (network byte order): magic b"ASPL", version (1 byte), kind (1 byte), reserved (2 bytes, zero),
request id (8 bytes), the plan's digest (8 bytes: the first 8 of the SHA-256 of its crossing tensors and
outputs), body length (8 bytes).
Kinds: HELLO (edge -> cloud, once per connection: the edge's plan as JSON, at most `HELLO_MAX_BYTES`), READY
(cloud -> edge: the plans match), REQUEST (the packed crossing tensors, exactly the plan's payload bytes),
RESULT (two float64: the cloud's receive time of the request's last byte, UNIX seconds, and its compute
seconds; then the model's outputs as little-endian float32), ERROR (a UTF-8 message, at most
`ERROR_MAX_BYTES`). A receiver checks the header against the plan before it reads or allocates a body; nothing
received is ever unpickled or evaluated (HELLO is parsed as JSON, nothing else).
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

MAGIC = b"ASPL"
VERSION = 1
HEADER = struct.Struct("!4sBBHQ8sQ")
HELLO, READY, REQUEST, RESULT, ERROR = 1, 2, 3, 4, 5
KIND_NAMES = {HELLO: "HELLO", READY: "READY", REQUEST: "REQUEST", RESULT: "RESULT", ERROR: "ERROR"}
HELLO_MAX_BYTES = 64 * 1024
ERROR_MAX_BYTES = 4096
RESULT_TIMES = struct.Struct("<dd")


class FrameError(Exception):
    """A frame that breaks the protocol or does not match the plan (the message says how)."""


@dataclass(frozen=True)
class Header:
    kind: int
    request_id: int
    digest: bytes
    body_bytes: int


def encode(kind: int, request_id: int, digest: bytes, body: bytes = b"") -> bytes:
    return HEADER.pack(MAGIC, VERSION, kind, 0, request_id, digest, len(body)) + body


def decode_header(data: bytes) -> Header:
    """The header of a frame; a FrameError for a wrong magic, version or kind."""
    if len(data) != HEADER.size:
        raise FrameError(f"truncated header: {len(data)} of {HEADER.size} bytes")
    magic, version, kind, reserved, request_id, digest, body_bytes = HEADER.unpack(data)
    if magic != MAGIC:
        raise FrameError(f"not an autosplit frame (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise FrameError(f"protocol version {version}, this side speaks {VERSION}")
    if kind not in KIND_NAMES or reserved != 0:
        raise FrameError(f"unknown frame kind {kind}" if kind not in KIND_NAMES else "reserved header bits set")
    return Header(kind, request_id, digest, body_bytes)


def plan_digest(plan: dict) -> bytes:
    """8 bytes that change whenever the crossing tensors (names, shapes, bits, scales, zero points) or the
    outputs do."""
    return hashlib.sha256(json.dumps(plan_description(plan), sort_keys=True).encode()).digest()[:8]


def plan_description(plan: dict) -> dict:
    """What both ends must agree on, as the edge states it in HELLO."""
    return {"crossing": [{k: c[k] for k in ("name", "shape", "bits", "scale", "zero_point")} for c in plan["crossing"]],
            "outputs": plan["outputs"], "payload_bytes": plan["payload_bytes"]}


def describe_mismatch(mine: dict, theirs: object) -> str | None:
    """None when the two plan descriptions agree, else the first difference in words."""
    if not isinstance(theirs, dict) or not isinstance(theirs.get("crossing"), list):
        return "the edge's HELLO is not a plan description"
    names = [c.get("name") if isinstance(c, dict) else None for c in theirs["crossing"]]
    want = [c["name"] for c in mine["crossing"]]
    if names != want:
        return f"the edge sends tensors {names}, the cloud's plan expects {want}"
    for a, b in zip(mine["crossing"], theirs["crossing"]):
        for key in ("shape", "bits", "scale", "zero_point"):
            if a[key] != b.get(key):
                return f"tensor {a['name']}: the edge's {key} is {b.get(key)!r}, the cloud's plan says {a[key]!r}"
    if theirs.get("outputs") != mine["outputs"] or theirs.get("payload_bytes") != mine["payload_bytes"]:
        return "the two plans differ in their outputs or payload size"
    return None
