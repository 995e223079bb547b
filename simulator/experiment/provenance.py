"""Provenance of a run: package versions, Python, platform, git revision, the command line, input digests."""
from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("autosplit", "numpy", "pandas", "optuna", "simpy", "pydantic", "pyyaml", "matplotlib", "pyarrow",
            "tqdm", "onnx", "onnxruntime")


def package_versions() -> dict[str, str | None]:
    """Installed version of each package autosplit's results depend on (None when not installed)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision(folder: Path | None = None) -> dict[str, object]:
    """{'commit': sha or None, 'dirty': bool or None} of the git checkout holding the autosplit sources."""
    folder = folder or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(status.strip())}


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def provenance(source: Path, argv: list[str] | None = None) -> dict:
    """Everything needed to say which code and inputs produced a results directory."""
    return {
        "experiment_file": str(source),
        "experiment_sha256": file_sha256(source),
        "command": "autosplit " + " ".join(argv if argv is not None else sys.argv[1:]),
        "git": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
    }
