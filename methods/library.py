"""The source-prompt library: trained tensors stored once, content-addressed.

An entry is keyed by a hash of everything that determines its tensors
(backbone, method and options, tasks, protocol, schedule, data source, seeds),
so every method and seed that needs the MNLI prompt of T5-base under the
same settings finds the same file, and a change of any setting trains anew.
Entries are folders holding `tensors.safetensors` and `entry.json`; the
run's full results file sits beside them when the entry was trained here.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from filelock import FileLock
from safetensors.torch import load_file, save

from bench.core.baselines import has_test_floor, result_floors
from bench.core.results import atomic_write

DEFAULT_ROOT = Path(os.environ.get("BENCH_LIBRARY", Path.home() / ".cache" / "bench" / "library"))


def entry_key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


class PromptLibrary:
    def __init__(self, root: Path | str = DEFAULT_ROOT):
        self.root = Path(root)

    def folder(self, spec: dict) -> Path:
        return self.root / entry_key(spec)

    def get(self, spec: dict) -> dict[str, torch.Tensor] | None:
        path = self.folder(spec) / "tensors.safetensors"
        return load_file(str(path)) if path.is_file() else None

    def put(self, spec: dict, tensors: dict[str, torch.Tensor], summary: dict | None = None) -> Path:
        """Store tensors; the entry file is written last, so a half-written entry is never listed."""
        folder = self.folder(spec)
        atomic_write(folder / "tensors.safetensors", save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}))
        atomic_write(folder / "entry.json", json.dumps({"key": entry_key(spec), "spec": spec, **(summary or {})}, indent=2) + "\n")
        return folder

    def entry(self, spec: dict) -> dict:
        return json.loads((self.folder(spec) / "entry.json").read_text())

    def lock(self, spec: dict) -> FileLock:
        """The entry's lock (`<key>.lock` beside the entry folders): processes that may train the
        same entry at once take it in turn, so that it is trained once and then read."""
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(self.root / f"{entry_key(spec)}.lock")

    def entries(self) -> list[dict]:
        found = []
        for path in sorted(self.root.glob("*/entry.json")):
            found.append(json.loads(path.read_text()))
        return found


def entry_scores(entry: dict) -> dict:
    """A trained entry's own scores, from its results file: dev and test per task (checkpoint
    metric means), its test split's floor (the best constant answer's mean; under `majority`, the
    trained majority's, where the results predate floors: bench/core/baselines.py), the tasks
    where the test score is at or below it (`weak`: a source prompt that learned nothing
    transfers nothing), the dev curve and the training time."""
    result = json.loads(Path(entry["results"]).read_text())
    tasks = entry["spec"]["tasks"]
    floors = result_floors(result)
    scores = {split: {t: result[split][t]["mean"] for t in tasks} for split in ("dev", "test")}
    return {**scores, "floor" if has_test_floor(result) else "majority": {t: floors[t]["mean"] for t in tasks if t in floors},
            "weak": [t for t in tasks if t in floors and scores["test"][t] <= floors[t]["mean"]],
            "dev_curve": [round(epoch["dev_mean"], 2) for epoch in result["epochs"]],
            "train_seconds": round(result["timing"]["train_seconds"], 1)}


SCORE_KEYS = ("dev", "test", "floor", "majority", "weak")
"""A source prompt's own scores as stage records and shipped sets carry them: its floor under
`floor`, or in one made before floors were recorded (the shipped minilm-cpu-v1, older
entries), its trained majority under `majority` (bench/core/baselines.py `stage_floor` reads either)."""


def own_scores(record: dict) -> dict:
    """The SCORE_KEYS a record holds: what a stage record or a shipped entry copies of a prompt's scores."""
    return {key: record[key] for key in SCORE_KEYS if key in record}


IMPORT_ORIGINS = ("attempt-release", "peft")
"""Where `bench sources import` takes a prompt from: a released prompt file (the ATTEMPT authors'),
or with `--peft` a PEFT prompt-tuning adapter folder."""


def imported_spec(backbone: str, task: str, origin: str) -> dict:
    """Key of a prompt imported from outside (e.g. the ATTEMPT authors' release)."""
    return {"imported": origin, "backbone": backbone, "task": task}


def missing_import(backbone: str, task: str) -> str:
    """The one line that says `--sources imported` finds no prompt of `task`, and how to import one."""
    command = f"--task {task} --model {backbone}"
    return (f"no imported source prompt for {task!r} on {backbone}; run `bench sources import FILE {command}` "
            f"(a released prompt file) or `bench sources import DIR --peft {command}` (a PEFT prompt-tuning "
            "adapter), or use --sources library")


def imported_specs(library: PromptLibrary, backbone: str, task: str) -> list[dict]:
    """The task's imported prompts in the library, newest import first (by when its entry was
    written; on a tie, in `IMPORT_ORIGINS` order): `--sources imported` uses the first, so the
    last import wins whatever its origin, as a new import of the same origin replaces the old."""
    found = [spec for spec in (imported_spec(backbone, task, origin) for origin in IMPORT_ORIGINS)
             if (library.folder(spec) / "entry.json").is_file()]
    return sorted(found, key=lambda spec: (library.folder(spec) / "entry.json").stat().st_mtime_ns, reverse=True)
