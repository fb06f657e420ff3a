"""Source prompts that ship with bench: trained once, versioned, used with no training.

The ATTEMPT authors released their source prompts so that nobody has to train MNLI for a
day before trying a transfer method; a shipped set does the same for bench's offline
backbones. A set is a folder here (`<name>/manifest.json` and one safetensors file per
task). Its manifest records, per prompt, what made it (the library entry's full spec: the
schedule, the method options and the fingerprints of the rows it trained and was selected
on), its own dev and test scores beside its test split's floor (a set packed before floors were
recorded, such as minilm-cpu-v1, holds its training rows' majority instead), and the file's
SHA-256, checked on every load. A set is never edited: new prompts make a new version
(`-v2`), so a result that names a set names the exact tensors it started from.
`bench sources pack` writes a set from library entries.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from bench.core.registry import UsageError
from bench.core.results import atomic_write

SHIPPED_ROOT = Path(__file__).parent
PREFIX = "shipped:"

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ShippedSet:
    folder: Path

    @property
    def name(self) -> str:
        return self.folder.name

    @cached_property
    def manifest(self) -> dict:
        return json.loads((self.folder / "manifest.json").read_text())

    @property
    def backbone(self) -> str:
        return self.manifest["backbone"]

    @property
    def tasks(self) -> list[str]:
        return sorted(self.manifest["prompts"])

    def entry(self, task: str) -> dict:
        if task not in self.manifest["prompts"]:
            raise UsageError(f"shipped set {self.name} has no source prompt for {task!r}; it has "
                             f"{', '.join(self.tasks)}: leave {task} out of the sources or use --sources library")
        return self.manifest["prompts"][task]

    def prompt(self, task: str) -> torch.Tensor:
        from safetensors.torch import load  # torch only once a prompt is read: `bench methods` imports this package

        entry = self.entry(task)
        data = (self.folder / entry["file"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise RuntimeError(f"shipped prompt {self.name}/{entry['file']} does not match its manifest's SHA-256: "
                               "the package is damaged; reinstall bench")
        return load(data)["prompt"]


def shipped_sets(root: Path | None = None) -> list[ShippedSet]:
    """The sets under `root` (default: the ones bench ships)."""
    return [ShippedSet(path.parent) for path in sorted((root or SHIPPED_ROOT).glob("*/manifest.json"))]


def resolve_sources(value: str, backbone: str, root: Path | None = None) -> str:
    """`shipped` -> `shipped:<newest set for the backbone>`; `shipped:<name>` checked to exist and
    to fit the backbone. The resolved name goes into the run's config and identity."""
    sets = shipped_sets(root)
    fitting = [s for s in sets if s.backbone == backbone]
    if value == "shipped":
        if not fitting:
            have = ", ".join(f"{s.name} ({s.backbone})" for s in sets) or "none"
            raise UsageError(f"no shipped source prompts for {backbone}; shipped sets: {have}. "
                             "Use --sources library (train them here)")
        return PREFIX + max(fitting, key=lambda s: (s.manifest["version"], s.name)).name
    name = value[len(PREFIX):]
    found = next((s for s in sets if s.name == name), None)
    if found is None:
        raise UsageError(f"unknown shipped source set {name!r}; valid: {', '.join(s.name for s in sets) or 'none'}")
    if found.backbone != backbone:
        raise UsageError(f"shipped set {name} was trained on {found.backbone}, not {backbone}; "
                         f"sets for {backbone}: {', '.join(s.name for s in fitting) or 'none'}")
    return value


def shipped_set(sources: str, root: Path | None = None) -> ShippedSet:
    """The set a resolved `shipped:<name>` value names."""
    return ShippedSet((root or SHIPPED_ROOT) / sources[len(PREFIX):])


def pack(entries: list[dict], name: str, version: int, description: str, out: Path) -> Path:
    """Write library entries (one PT prompt per task, one backbone) as a shipped set in `out/name`."""
    from safetensors.torch import save

    from methods.library import own_scores

    backbones = {entry["spec"]["backbone"] for entry in entries}
    if len(backbones) != 1:
        raise UsageError(f"a shipped set holds one backbone's prompts; these entries are of {', '.join(sorted(backbones))}")
    folder = out / name
    if (folder / "manifest.json").exists():
        raise UsageError(f"{folder} already holds a shipped set: sets are never edited; give a new --name (e.g. -v{version + 1})")
    prompts = {}
    for entry in entries:
        (task,) = entry["spec"]["tasks"]
        if task in prompts:
            raise UsageError(f"two entries for {task!r} ({prompts[task]['library_key']}, {entry['key']}): pack one per task")
        prompt = entry["tensors"]["prompt"]
        data = save({"prompt": prompt.contiguous()})
        atomic_write(folder / f"{task}.safetensors", data)
        prompts[task] = {"file": f"{task}.safetensors", "sha256": hashlib.sha256(data).hexdigest(),
                         "shape": list(prompt.shape), "library_key": entry["key"],
                         **own_scores(entry), "dev_curve": entry["dev_curve"], "train_seconds": entry["train_seconds"],
                         "spec": entry["spec"]}
    manifest = {"name": name, "version": version, "backbone": backbones.pop(), "description": description,
                "prompts": prompts}
    atomic_write(folder / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return folder
