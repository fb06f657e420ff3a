"""Run identity: what makes two results the same experiment.

A run's numbers are determined by its method and options, protocol switches, schedule,
data (source and content), data seed, few-shot setting, backbone and profile, plus its
seed and few-shot draw. The *configuration* is all of that but the seed and draw: it
names the folder a run's results go to, so that no run ever overwrites another
configuration's, and it is what a leaderboard row averages over (seeds and draws only).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

IDENTITY_FIELDS = ("method", "tasks", "method_config", "protocol", "train", "data", "data_seed", "k_shot",
                   "backbone", "profile", "sources")


ADDED_NEUTRAL = {"train": {"group_by_length": False, "eval_mode": "generate", "backbone_dropout": True,
                           "precision": "fp32", "epoch_rule": "task", "epoch_cap": 0, "pair_encoding": "joint"},
                 "protocol": {"attempt_temperature": 0.0, "vocab_init_real_tokens": False,
                              "fewshot_dev_from_train": False}}
"""Settings added after results were first keyed, with the values that do what runs did before
the setting existed. At those values they are left out of keys and rows, so that results made
by an older bench keep their folder (`--resume` still finds them) and their leaderboard row."""


EVALUATION_ONLY = ("eval_batch_size",)
"""Training settings that change how many rows are scored at once, not what is learned or predicted:
a key holds the profile's value of each, whatever a run used, so that scoring in larger batches
neither forks a configuration's folder nor the library (the value used is still recorded)."""


def profile_evaluation(train: dict, profile: str | None) -> dict:
    """`train` with the evaluation-only settings at `profile`'s values (an unknown profile, e.g.
    one a plugin registered and then dropped, keeps them as they are)."""
    from bench.core.config import PROFILES, TrainConfig

    if profile not in PROFILES.names():
        return train
    defaults = {**asdict(TrainConfig()), **PROFILES.get(profile).train}
    return {**train, **{name: defaults[name] for name in EVALUATION_ONLY if name in train}}


def keyed_train(train: dict, profile: str | None) -> dict:
    """A `train` section as keys hold it, a run's and a library stage's alike: the added settings at
    their neutral values left out (`without_neutral`), the evaluation-only ones at the profile's."""
    return profile_evaluation(without_neutral("train", train), profile)


def digest(value) -> str:
    """A short stable hash of a JSON-able value (key order does not matter)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_identity(config, task_names: list[str], method_config: dict, backbone: str, data: dict) -> dict:
    """Everything but the seed and draw that changes a run's numbers. `data`: per task, its
    source (kind, and the Hub coordinates when from the Hub) and content fingerprints."""
    return {
        "method": config.method, "tasks": list(task_names), "method_config": method_config,
        "protocol": config.protocol.as_dict(), "train": asdict(config.train), "data": data,
        "data_seed": config.data_seed, "k_shot": config.k_shot, "backbone": backbone,
        "profile": config.profile, "sources": config.sources,
    }


def keyed(identity: dict) -> dict:
    """The identity's fields that name a configuration: all of IDENTITY_FIELDS, less the added
    settings at their neutral values (absent, as in results from before they existed, or neutral),
    with the evaluation-only settings at the profile's values."""
    key = {name: identity[name] for name in IDENTITY_FIELDS}
    key["protocol"] = without_neutral("protocol", key["protocol"])
    key["train"] = keyed_train(key["train"], identity["profile"])
    return key


def without_neutral(section: str, values: dict) -> dict:
    """`values` of an identity section, less the settings added later at their neutral values
    (library keys of stages use it too: a newer bench finds the stages an older one trained)."""
    neutral = ADDED_NEUTRAL.get(section, {})
    return {k: v for k, v in values.items() if not (k in neutral and v == neutral[k])}


def configuration_key(identity: dict) -> str:
    return digest(keyed(identity))


def result_path(output: Path, identity: dict, seed: int, draw: int = 0) -> Path:
    """`<output>/<method>/<tasks>/<configuration>/[k<K>-draw<r>-]seed<s>.json`."""
    shots = f"k{identity['k_shot']}-draw{draw}-" if identity["k_shot"] else ""
    return (Path(output) / identity["method"] / "+".join(identity["tasks"]) / configuration_key(identity)
            / f"{shots}seed{seed}.json")


def row_identity(identity: dict, per_task: tuple[str, ...] = (), pair_encoding: str | None = None) -> dict:
    """The part of a configuration a leaderboard row shares across its tasks: all but the tasks
    and their data content (each task's content is told apart by `data_variant`), and the method
    options named `per_task` (e.g. each target's leave-one-out `sources`). `pair_encoding`: what
    the run asked for (its config's), in place of what it resolved for its tasks, so that one
    request (`auto`: two towers for MRPC, one segment for SST-2) is one row."""
    shared = {name: value for name, value in keyed(identity).items() if name not in ("tasks", "data")}
    if pair_encoding is not None:
        shared["train"] = without_neutral("train", {**shared["train"], "pair_encoding": pair_encoding})
    shared["method_config"] = {k: v for k, v in shared["method_config"].items() if k not in per_task}
    shared["data_sources"] = sorted({json.dumps(d["source"], sort_keys=True) for d in identity["data"].values()})
    return shared


def flatten(value, prefix: str = "") -> dict[str, object]:
    """Nested dicts as `a.b.c -> leaf`, so two configurations' differences can be listed."""
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}
