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

SCHEMA_VERSION = 1
PACKAGES = ("bench", "torch", "transformers", "datasets", "accelerate", "safetensors", "numpy", "scipy", "scikit-learn")


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write beside the target and rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(text.encode() if isinstance(text, str) else text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


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
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def run_path(output: Path, method: str, tasks: list[str], seed: int, k_shot: int = 0, draw: int = 0) -> Path:
    shots = f"k{k_shot}-draw{draw}-" if k_shot else ""
    return output / method / "+".join(tasks) / f"{shots}seed{seed}.json"


def load_results(directory: Path) -> list[dict]:
    """Every results file under a directory (other JSON files are skipped)."""
    results = []
    for path in sorted(Path(directory).rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(data, dict) and data.get("schema_version") == SCHEMA_VERSION and "run" in data:
            results.append(data)
    return results
