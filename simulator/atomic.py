"""Atomic file writing: everything goes to a hidden temporary name in the same folder, is flushed to disk, then
`os.replace`d onto its name (results tables, figures, checkpoints, capacity files).

A run killed at any moment leaves either the previous complete file or none under a final name, never half
a file; leftover temporaries start with `.tmp-` and are removed by the next run in that folder.
"""
from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from hardware_models.errors import UserError

TEMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside `path` (same suffix); renamed onto `path` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{path.name}")
    try:
        yield temporary
        with open(temporary, "rb+") as handle:  # the bytes are on disk before the name points at them
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise UserError(f"{path}: cannot write it: {os.strerror(exc.errno)}; nothing written before was lost "
                        "(every file is whole or absent, finished runs are checkpointed): free some space and "
                        "run the same command again to continue") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_with(path: Path, writer: Callable[[Path], object]) -> Path:
    """Atomically write `path` with `writer(temporary_path)` (e.g. DataFrame.to_parquet, Figure.savefig)."""
    with atomic_path(path) as temporary:
        writer(temporary)
    return Path(path)


def make_dir(folder: Path, flag: str = "--out") -> Path:
    """Create `folder` (and its parents), or a UserError naming it when that is impossible (a file in the way,
    a read-only or virtual file system)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"{flag} {folder}: cannot create the results directory: {reason}") from None
    return folder


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporaries a killed run left in `folder` (recursively); returns how many."""
    removed = 0
    if Path(folder).is_dir():
        for stale in Path(folder).rglob(f"{TEMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                stale.unlink()
                removed += 1
    return removed
