"""Reading a user's file with a size bound, so that /dev/zero or a multi-GB file ends in one line, not a
MemoryError."""
from __future__ import annotations

from pathlib import Path

from hardware_models.errors import UserError


def read_bounded(path: Path, limit_bytes: int, expected: str) -> bytes:
    """The bytes of `path`; a UserError naming the file when it holds more than `limit_bytes`
    (`expected` says what the file should be, e.g. "a YAML experiment (a few kB)")."""
    with path.open("rb") as stream:
        raw = stream.read(limit_bytes + 1)
    if len(raw) > limit_bytes:
        raise UserError(f"{path}: larger than {limit_bytes / 2**20:g} MiB; expected {expected}")
    return raw
