"""The one reader of a user's `.npz` data (`x`: model-ready inputs, batch first; `y`: integer labels).

Bounded before anything is allocated: each array's size is read from its `.npy` header inside the archive
(what numpy would allocate), so an archive that decompresses to gigabytes is refused in one line. Inputs must
be finite numbers and labels non-negative integers, one per input: NaN pixels or labels such as -1 would
otherwise give a float accuracy of 10% or 0% without a word.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from hardware_models.errors import UserError

MAX_NPZ_BYTES = 4 * 2**30  # 1,000 ImageNet-sized float32 images are 0.6 GB


def read_npz(path: str | Path, keys: tuple[str, ...], what: str = "--data") -> dict[str, np.ndarray]:
    """The arrays `keys` of the .npz at `path`, checked (see the module docstring); a UserError naming `what`
    (a flag; "" for a YAML key, which the caller names) and the file otherwise. `x` comes back as float32, `y` as a 1-D int64 array."""
    path = Path(path)
    where = f"{what}: {path}" if what else str(path)
    if not path.is_file():
        raise UserError(f"{where}: no such file")
    try:
        sizes = _array_bytes(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UserError(f"{where}: not a NumPy .npz file ({' '.join(str(exc).split())[:200]})") from None
    missing = [k for k in keys if k not in sizes]
    if missing:
        raise UserError(f"{where}: the .npz has no {' or '.join(repr(k) for k in missing)} array (expected x: "
                        "model-ready inputs, batch first" + (", y: integer labels)" if "y" in keys else ")"))
    total = sum(sizes[k] for k in keys)
    if total > MAX_NPZ_BYTES:
        raise UserError(f"{where}: its arrays would take {total / 2**30:.3g} GiB in memory (at most "
                        f"{MAX_NPZ_BYTES / 2**30:g} GiB); measure on a subset of the samples")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in keys}
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"{where}: not a NumPy .npz file ({' '.join(str(exc).split())[:200]})") from None
    x = arrays["x"]
    if x.ndim < 1 or len(x) == 0 or not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{where}: x must be a non-empty numeric array, batch first; got shape {x.shape} of {x.dtype}")
    arrays["x"] = x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise UserError(f"{where}: x holds {int((~np.isfinite(x)).sum()):,} NaN or infinite values; expected "
                        "finite model-ready inputs")
    if "y" in keys:
        y = arrays["y"]
        if not np.issubdtype(y.dtype, np.integer) or y.size != len(x):
            raise UserError(f"{where}: y must hold one integer label per input ({len(x)}); got shape {y.shape} "
                            f"of {y.dtype}")
        y = y.astype(np.int64).ravel()
        if (y < 0).any():
            raise UserError(f"{where}: y holds negative labels (e.g. {int(y[y < 0][0])}); expected class indices "
                            "0, 1, ...")
        arrays["y"] = y
    return arrays


def load_npz(path: str | Path, what: str = "--data") -> tuple[np.ndarray, np.ndarray]:
    """(x float32, y int64) of a labelled .npz file (`read_npz`'s checks)."""
    arrays = read_npz(path, ("x", "y"), what)
    return arrays["x"], arrays["y"]


def load_inputs(path: str | Path, what: str) -> np.ndarray:
    """The `x` array (float32) of an .npz of inputs such as a calibration file; a UserError naming `what`."""
    return read_npz(path, ("x",), what)["x"]


def _array_bytes(path: Path) -> dict[str, int]:
    """Bytes each array of the archive takes once loaded, from its .npy header (no array is read)."""
    sizes = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not name.endswith(".npy"):
                continue
            with archive.open(name) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
            sizes[name[:-4]] = math.prod(shape) * dtype.itemsize
    return sizes
