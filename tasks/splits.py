"""The papers' split protocol: which rows become train, dev and test.

The official code shuffles with `torch.randperm` under a generator seeded with
the data seed (42), independent of the training seed; reproducing that call
exactly reproduces its splits.
"""
from __future__ import annotations

from typing import Callable

import torch

LARGE_DEV_SIZE = 1000


def permutation(n: int, data_seed: int) -> list[int]:
    generator = torch.Generator()
    generator.manual_seed(data_seed)
    return torch.randperm(n, generator=generator).tolist()


def halve(rows: list[dict], data_seed: int, group_key: Callable[[dict], object] | None):
    """Shuffle a validation split and cut it in two: dev = first half, test = the rest.

    With a group key the shuffle and the cut act on groups (first-appearance
    order), so all rows of a group land on the same side.
    """
    if group_key is None:
        order = permutation(len(rows), data_seed)
        half = len(rows) // 2
        return [rows[i] for i in order[:half]], [rows[i] for i in order[half:]]
    groups: dict[object, list[dict]] = {}
    for row in rows:
        groups.setdefault(group_key(row), []).append(row)
    keys = list(groups)
    order = permutation(len(keys), data_seed)
    half = len(keys) // 2
    dev = [row for i in order[:half] for row in groups[keys[i]]]
    test = [row for i in order[half:] for row in groups[keys[i]]]
    return dev, test


def carve_dev(rows: list[dict], data_seed: int) -> tuple[list[dict], list[dict]]:
    """Shuffle train; dev = first 1,000 rows, train = the rest.

    Data smaller than 2,000 rows (only the shipped fixtures) gives half to dev
    so that train is never empty.
    """
    order = permutation(len(rows), data_seed)
    size = min(LARGE_DEV_SIZE, len(rows) // 2)
    return [rows[i] for i in order[:size]], [rows[i] for i in order[size:]]


def split(task, read: Callable[[str], list[dict]], data_seed: int, group_key=None) -> dict[str, list[dict]]:
    """Apply the task's protocol; `read(hub_split)` returns Hub-schema rows."""
    protocol = task.split_protocol
    if protocol == "small":
        dev, test = halve(read(task.hub_validation), data_seed, group_key)
        train = read(task.hub_train)
    elif protocol == "large":
        dev, train = carve_dev(read(task.hub_train), data_seed)
        test = read(task.hub_test)
    elif protocol == "own":
        train, dev, test = read(task.hub_train), read(task.hub_validation), read(task.hub_test)
    else:
        raise ValueError(f"task {task.name}: unknown split protocol {protocol!r}")
    if task.max_train is not None:
        train = train[: task.max_train]
    return {"train": train, "validation": dev, "test": test}


def draw(rows: list[dict], k: int, seed: int) -> list[dict]:
    """A few-shot training set: the first `k` rows of a seeded permutation."""
    if k > len(rows):
        from bench.registry import UsageError

        raise UsageError(f"--k-shot {k} exceeds the {len(rows)} training rows available")
    return [rows[i] for i in permutation(len(rows), seed)[:k]]
