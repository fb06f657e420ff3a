"""One JSON file per run (method, task set, seed), written atomically.

The file holds everything needed to rerun and to audit the run: the resolved
config, data sources and fingerprints, package versions and the git commit.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

SCHEMA_VERSION = 2
"""2: results carry their `identity` and live in one folder per configuration."""
PACKAGES = ("bench", "torch", "transformers", "datasets", "accelerate", "safetensors", "numpy", "scipy", "scikit-learn")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


FILE_MODE = 0o666 & ~_umask()
"""What `open()` would give a new file (0644 under the usual umask): outputs are for others to read."""


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write beside the target and rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(text.encode() if isinstance(text, str) else text)
        os.chmod(temp, FILE_MODE)  # mkstemp makes files private (0600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def check_writable(folder: Path, flag: str) -> None:
    """Fail before any work, not with a traceback after hours of training."""
    from bench.core.registry import UsageError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as error:
        raise UsageError(f"{flag} {str(folder)!r} is not writable ({error.strerror or error})") from None


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def load_results(directory: Path) -> tuple[list[dict], int]:
    """Every results file under a directory, and how many results of another schema version
    were left out (other JSON files are skipped)."""
    results, other_schema = [], 0
    for path in sorted(Path(directory).rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(data, dict) or "run" not in data or "schema_version" not in data:
            continue
        if data["schema_version"] == SCHEMA_VERSION:
            results.append(data)
        else:
            other_schema += 1
    return results, other_schema
