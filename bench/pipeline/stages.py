"""Library stages: the runs a method needs before its own (source prompts, SPoT-g's mixture,
SPoT-t's task embedding, ATTEMPT's pre-trained G, MPT's shared prompt, AMP's per-task prompts).

A stage is trained once and stored in the source-prompt library under a key made of
everything that determines its tensors, so that every method and seed asking for the same
stage gets the same tensors, and a stage trained under other settings is never reused:
the backbone, the stage's method and options, protocol and schedule, the *content* of its
data (fingerprints, not paths), where source prompts come from, and its own seed, derived
from its method and tasks so that no two stages start from the same random rows. Runs that
need the same stage at once (shards of a grid, sweep workers) take its lock in turn: one
trains it, the others wait and read what it stored.
"""
from __future__ import annotations

import copy
import json
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from filelock import Timeout

from bench.backbones.catalog import resolve_pair_encoding
from bench.core.baselines import stage_floor
from bench.core.config import profile_options, source_train
from bench.core.identity import keyed_train
from bench.core.registry import UsageError
from bench.core.results import SCHEMA_VERSION
from methods.base import derived_seed
from methods.library import DEFAULT_ROOT, PromptLibrary, entry_scores, imported_specs, missing_import, own_scores
from methods.shipped import PREFIX, shipped_set
from methods.registry import METHODS

STAGE_SEED = 0
"""The base of every stage's seed: stages are trained once, whatever the seed of the run that asks."""


@dataclass(frozen=True)
class StageRequest:
    """What a method asks for (methods/base.py `Stage` documents each field)."""

    method: str
    tasks: tuple[str, ...]
    options: dict
    epochs: int | None = None
    epoch_rule: str = "task"
    patience: int = 0
    on_target: bool = False
    source: bool = False

    @property
    def seed(self) -> int:
        return derived_seed(STAGE_SEED, f"{self.method}/{'+'.join(self.tasks)}")


def stage_config(config, request: StageRequest):
    """The run config of a stage: the asking run's settings, its own method, tasks and seed.

    Source stages train on their tasks' full training data with the source schedule
    (`source_epochs`, then the profile's `source_train`); stages on the run's own targets keep
    its few-shot draw and, by default, its schedule. The run's profile gives the stage's method
    its options too (a CPU profile's learning rates)."""
    stage = copy.deepcopy(config)
    stage.method, stage.tasks, stage.suite = request.method, list(request.tasks), None
    stage.seeds = [request.seed]
    config_cls = METHODS.get(request.method).config_cls
    stage.method_options = {**profile_options(config.profile, request.method, config_cls), **request.options}
    stage.train.early_stopping_patience = 0
    if not request.on_target:
        stage.k_shot, stage.k_shot_draws = 0, 1
        stage.train.epochs = config.train.source_epochs
        for name, value in source_train(config.profile).items():
            setattr(stage.train, name, value)
    if request.epochs is not None:
        stage.train.epochs = request.epochs
    if not stage.train.epochs:
        stage.train.epoch_rule = request.epoch_rule
    if request.patience:
        stage.train.early_stopping_patience = request.patience
    return stage


def stage_spec(stage, backbone: str, data: dict, uses_sources: bool) -> dict:
    """Everything that determines a stage's tensors: the library key. `data`: per task, the
    fingerprints of the examples the stage trains and selects on. The pair encoding is the one the
    stage resolves for its own tasks (`resolve_pair_encoding`), as a run's identity holds it; the
    evaluation-only settings are the profile's, as in a run's key (`keyed_train`)."""
    train = asdict(stage.train)
    train["pair_encoding"] = resolve_pair_encoding(stage.model, stage.train.pair_encoding, stage.tasks)
    return {
        "backbone": backbone, "method": stage.method, "tasks": stage.tasks,
        "method_config": asdict(METHODS.get(stage.method).make_config(stage.method_options)),
        "protocol": stage.protocol.as_dict(), "train": keyed_train(train, stage.profile),
        "data": data, "data_seed": stage.data_seed, "k_shot": stage.k_shot,
        "sources": stage.sources if uses_sources else None,
        "seed": stage.seeds[0], "schema_version": SCHEMA_VERSION,
    }


def run_stage(config, request: StageRequest, draw: int, backbone: str, data_of: Callable, train: Callable,
              progress, used: list | None = None) -> dict[str, torch.Tensor]:
    """The stage's tensors from the library when trained under the same settings, else trained now
    (source prompts from the shipped set or the newest import where `config.sources` says so).

    `data_of(stage_config, draw)` gives the stage's data identity (per-task fingerprints);
    `train(stage_config, tasks, seed, progress, keep_state, draw)` trains it and returns its results path.
    `used`, when given, receives where each stage came from and, for trained ones, its own scores
    (a run records them: which tensors it started from, and whether a source had learned its task).
    """
    library = PromptLibrary(config.library or DEFAULT_ROOT)
    if request.source and config.sources != "library":
        tensors, record = external_source(library, config.sources, backbone, request.tasks[0], progress)
    else:
        tensors, record = library_stage(library, config, request, draw, backbone, data_of, train, progress)
    record = {"method": request.method, "tasks": list(request.tasks), **record}
    name, floors = stage_floor(record)
    for task in [] if request.on_target else record.get("weak", []):  # a stage on the target transfers nothing
        progress.note_once(f"{request.method} stage on {task} is weak: its test score {record['test'][task]:.1f} is "
                           f"at or below its {name} ({floors[task]:.1f}); what it transfers was not learned")
    if used is not None:
        used.append(record)
    return tensors


def external_source(library: PromptLibrary, sources: str, backbone: str, task: str,
                    progress) -> tuple[dict, dict]:
    """A source prompt that was not trained by this library: a shipped set's, or an imported one."""
    if sources.startswith(PREFIX):
        shipped = shipped_set(sources)
        entry = shipped.entry(task)
        return {"prompt": shipped.prompt(task)}, {"origin": sources, "sha256": entry["sha256"], **own_scores(entry)}
    return imported_source(library, backbone, task, progress)


def imported_source(library: PromptLibrary, backbone: str, task: str, progress) -> tuple[dict, dict]:
    """The task's newest imported prompt, whatever its origin (a released file or a PEFT adapter),
    recorded by its library key, origin and file, with a note naming any older import passed over."""
    found = imported_specs(library, backbone, task)
    if not found:
        raise UsageError(missing_import(backbone, task))
    entry = library.entry(found[0])
    for older in found[1:]:
        progress.note(f"source prompt for {task}: the newest import ({found[0]['imported']}, {entry['file']}) "
                      f"is used, not the older {older['imported']} import ({library.entry(older)['file']})")
    return library.get(found[0]), {"origin": f"imported:{entry['key']}", "imported": found[0]["imported"],
                                   "file": entry["file"]}


def library_stage(library: PromptLibrary, config, request: StageRequest, draw: int, backbone: str, data_of: Callable,
                  train: Callable, progress) -> tuple[dict, dict]:
    stage = stage_config(config, request)
    stage_draw = draw if request.on_target else 0
    uses_sources = METHODS.get(request.method).cls.accepts_imported_sources
    spec = stage_spec(stage, backbone, data_of(stage, stage_draw), uses_sources)
    with stage_lock(library, spec, f"{request.method} on {'+'.join(request.tasks)}", progress) as waited:
        tensors = library.get(spec)
        if tensors is None:
            stage.output = str(library.folder(spec))
            state = {}
            path = train(stage, list(request.tasks), stage.seeds[0], progress, keep_state=state, draw=stage_draw)
            result = json.loads(path.read_text())
            library.put(spec, state["tensors"], {"results": str(path), "test": result["test"], "dev": result["dev"]})
            tensors = library.get(spec)  # as every later hit gets them: on the CPU, from the stored file
    entry = library.entry(spec)
    scores = entry_scores(entry) if Path(entry.get("results", "")).is_file() else {}
    wait = {"waited_seconds": waited} if waited else {}  # idle: the report's cost leaves it out
    return tensors, {"origin": f"library:{entry['key']}", **own_scores(scores), **wait}


@contextmanager
def stage_lock(library: PromptLibrary, spec: dict, label: str, progress):
    """The stage's library lock, held while it is looked up and trained (with a note where
    another process holds it). The processes of one distributed run train a stage together:
    the first takes the lock and the others wait for it at a barrier, so that all see the same
    library. That wait is bounded by the process group's timeout (30 minutes by default): a
    distributed run that waits longer for another run training the same stage fails.
    Yields the seconds the lock kept this process waiting for another one."""
    from accelerate import PartialState

    processes = PartialState(cpu=not torch.cuda.is_available())
    held, waited = acquired(library, spec, label, progress) if processes.is_main_process else (nullcontext(), 0.0)
    with held:
        processes.wait_for_everyone()
        yield waited
        processes.wait_for_everyone()


def acquired(library: PromptLibrary, spec: dict, label: str, progress):
    """The stage's lock, acquired (released on leaving the `with`), waiting as long as it takes,
    and the seconds it waited (0 where the lock was free)."""
    lock = library.lock(spec)
    try:
        return lock.acquire(timeout=0), 0.0
    except Timeout:
        progress.note(f"{label}: waiting for another process training this library stage")
        started = time.monotonic()
        held = lock.acquire()
        return held, time.monotonic() - started
