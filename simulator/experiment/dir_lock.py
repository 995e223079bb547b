"""One run per results directory: a second `run` or `capacity` into a directory in use is refused in one line
naming the PID that holds it, instead of both writing (and reporting) each other's tables.

An advisory `flock` on `<out>/.autosplit.lock`: the kernel releases it when the holder exits, killed or not, so
a crashed run never leaves the directory locked; the file itself (holding the PID) may stay and is ignored.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hardware_models.errors import UserError

LOCK_NAME = ".autosplit.lock"


@contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Hold `out_dir`'s lock for the block (the directory must exist); a UserError when another process has it."""
    stream = open(out_dir / LOCK_NAME, "a+")
    try:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            stream.seek(0)
            holder = stream.read().strip() or "unknown"
            raise UserError(f"{out_dir}: in use by another autosplit run (PID {holder}); wait for it to finish "
                            "or give another --out") from None
        stream.seek(0)
        stream.truncate()
        stream.write(f"{os.getpid()}\n")
        stream.flush()
        yield
    finally:
        stream.close()
