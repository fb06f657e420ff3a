"""One JSON file per run (method, task set, seed), written atomically.

The file holds everything needed to rerun and to audit the run: the resolved
config, data sources and fingerprints, package versions and the git commit.
Reading a folder of them back (`load_results`) refuses unreadable results files rather
than leave their runs out without a word.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

from bench.core.registry import UsageError

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


RESULT_NAME = re.compile(r"(k\d+-draw\d+-)?seed-?\d+\.json")
"""How the runner names a results file (bench/core/identity.py `result_path`): a JSON file so
named is a results file, and must read as one."""
REQUIRED = ("schema_version", "run", "test")
"""What a results file of this schema version holds at least (one of another version: the first two)."""
SKIP_UNREADABLE = "--skip-unreadable"
JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
              type(None): "null"}


class Unreadable(NamedTuple):
    """A results file that cannot be read as one: its path (relative to the folder read) and why."""

    path: str
    reason: str


class Loaded(NamedTuple):
    """A results folder as read (`load_results(...)[0]` is the results, as it always was)."""

    results: list[dict]
    """Runs of this schema version with test scores."""
    other_schema: int
    """Results of another schema version, left out."""
    untested: int
    """Runs whose test split was not evaluated (sweep trials: bench/studies/sweep.py), left out."""
    skipped: list[Unreadable]
    """Unreadable results files left out (only ever with `skip_unreadable`)."""

    def note(self) -> str:
        """What was left out besides unreadable files, and why, for a table's header or stderr ('' when nothing)."""
        other = (f"{self.other_schema} results of another schema version left out (rerun them with this version)"
                 if self.other_schema else "")
        untested = (f"{self.untested} runs without test scores (sweep trials, whose test split is not evaluated) "
                    "left out" if self.untested else "")
        return "; ".join(part for part in (other, untested) if part)


def read_json(path: Path) -> tuple[object, str | None]:
    """(the parsed value, None), or (None, why the file cannot be parsed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        return None, f"not UTF-8 text (byte {error.start})"
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, json_error(text, error)


def json_error(text: str, error: json.JSONDecodeError) -> str:
    """Why a text is not JSON; `truncated` where it ends inside the document (a copy or a write cut
    short): the parser stopped at its end, inside a string, or inside a last number or literal."""
    content = text.rstrip()
    if not content:
        return "empty file"
    rest = content[error.pos:]
    if error.msg.startswith("Unterminated string") or (error.msg != "Extra data" and re.fullmatch(r"[\w.+-]*", rest)):
        return f"truncated JSON at line {content.count(chr(10)) + 1}"
    return f"invalid JSON at line {error.lineno} column {error.colno} ({error.msg})"


def results_problem(data: object) -> str | None:
    """Why a parsed results file is not one, or None."""
    if not isinstance(data, dict):
        return f"not a JSON object ({JSON_TYPES.get(type(data), type(data).__name__)})"
    if not data:
        return "empty object"
    required = REQUIRED if data.get("schema_version") == SCHEMA_VERSION else REQUIRED[:2]
    missing = [key for key in required if key not in data]
    return f"not a results file: no {', '.join(f'`{key}`' for key in missing)}" if missing else None


def scan_results(directory: Path) -> list[tuple[Path, dict | str]]:
    """Every results file under `directory` (any schema version), sorted: (path, its contents or
    why it cannot be read as results). A JSON file named as the runner names results is one;
    any other is one only where it reads as an object with `run` and `schema_version`, so that
    the other JSON files a results folder holds (an exported adapter's config, a baseline, a
    tracker's files) are not taken for results."""
    found = []
    for path in sorted(Path(directory).rglob("*.json")):
        named = RESULT_NAME.fullmatch(path.name) is not None
        data, error = read_json(path)
        if named or (isinstance(data, dict) and {"run", "schema_version"} <= data.keys()):
            found.append((path, error or results_problem(data) or data))
    return found


def read_results(directory: Path, skip_unreadable: bool = False) -> tuple[list[tuple[Path, dict]], list[Unreadable]]:
    """The readable results files under `directory` (any schema version), and the unreadable ones.

    An unreadable results file would drop its run from every table without a word (a mean moves,
    the row still looks complete), so by default it is refused: one UsageError naming each,
    relative to the folder, with why, and the flag that skips them. With `skip_unreadable` the
    rest is read and stderr gets a line per file skipped and their count."""
    readable, unreadable = [], []
    for path, found in scan_results(directory):
        if isinstance(found, str):
            unreadable.append(Unreadable(str(path.relative_to(directory)), found))
        else:
            readable.append((path, found))
    if unreadable and not skip_unreadable:
        raise UsageError(f"{directory} holds {described(unreadable)}; repair or remove "
                         f"{'them' if len(unreadable) > 1 else 'it'}, or give {SKIP_UNREADABLE} to read the rest")
    for bad in unreadable:
        print(f"bench: skipped {Path(directory) / bad.path}: {bad.reason}", file=sys.stderr)
    if unreadable:
        print(f"bench: {len(unreadable)} unreadable results file{'s' * (len(unreadable) > 1)} skipped "
              f"({SKIP_UNREADABLE})", file=sys.stderr)
    return readable, unreadable


def described(unreadable: list[Unreadable]) -> str:
    """`2 unreadable results files: a/seed1.json (empty object); b/seed0.json (truncated JSON at line 40)`."""
    return (f"{len(unreadable)} unreadable results file{'s' * (len(unreadable) > 1)}: "
            + "; ".join(f"{bad.path} ({bad.reason})" for bad in unreadable))


def load_results(directory: Path, skip_unreadable: bool = False) -> Loaded:
    """The runs of a results folder that tables read: this schema version, test evaluated; the
    others counted (see `Loaded`). Unreadable results files: see `read_results`."""
    readable, skipped = read_results(directory, skip_unreadable)
    current = [data for _, data in readable if data["schema_version"] == SCHEMA_VERSION]
    results = [data for _, data in readable if tabled(data)]
    return Loaded(results, len(readable) - len(current), len(current) - len(results), skipped)


def tabled(result: dict) -> bool:
    """Whether tables read a run: this schema version, its test split evaluated."""
    return result["schema_version"] == SCHEMA_VERSION and result.get("test_evaluated", True)


def require_results(loaded: Loaded, directory: Path) -> list[dict]:
    """The results read, or one line saying there are none (and what was left out)."""
    if not loaded.results:
        note = loaded.note()
        raise UsageError(f"no results in {directory}" + (f" ({note})" if note else ""))
    return loaded.results
