"""The papers' split protocol: which rows become train, dev and test.

The official code shuffles with `torch.randperm` under a generator seeded with
the data seed (42), independent of the training seed; reproducing that call
exactly reproduces its splits.
"""
from __future__ import annotations

from typing import Callable

LARGE_DEV_SIZE = 1000


def permutation(n: int, data_seed: int) -> list[int]:
    import torch  # here, not at the top: listing tasks must not load torch

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


def split(task, read: Callable[[str], list[dict]], data_seed: int, group_key, name: str) -> list[dict]:
    """One split (train / validation = dev / test) under the task's protocol.

    `read(hub_split)` returns Hub-schema rows; only the Hub splits that this
    split is made from are read, so a test set can be shown without the train file.
    """
    protocol = task.split_protocol
    if protocol == "small":
        if name == "train":
            rows = read(task.hub_train)
        else:
            dev, test = halve(read(task.hub_validation), data_seed, group_key)
            rows = dev if name == "validation" else test
    elif protocol == "large":
        if name == "test":
            rows = read(task.hub_test)
        else:
            dev, train = carve_dev(read(task.hub_train), data_seed)
            rows = dev if name == "validation" else train
    elif protocol == "own":
        rows = read({"train": task.hub_train, "validation": task.hub_validation, "test": task.hub_test}[name])
    else:
        raise ValueError(f"task {task.name}: unknown split protocol {protocol!r}")
    if name == "train" and task.max_train is not None:
        rows = rows[: task.max_train]
    return rows


def draw(rows: list[dict], k: int, seed: int, start: int = 0) -> list[dict]:
    """A few-shot training set: the first `k` rows of a seeded permutation; from `start`, the `k`
    after them (the few-shot dev of `fewshot_eval_split`)."""
    if start + k > len(rows):
        from bench.core.registry import UsageError

        if start:
            raise UsageError(f"--k-shot {k} needs {k} for training and {k} for dev of the {len(rows)} training rows "
                             "available")
        raise UsageError(f"--k-shot {k} exceeds the {len(rows)} training rows available")
    return [rows[i] for i in permutation(len(rows), seed)[start : start + k]]


def fewshot_eval_split(task, read: Callable[[str], list[dict]], data_seed: int, group_key, name: str, k: int,
                       shot_seed: int) -> list[dict]:
    """Dev or test of a few-shot run under `fewshot_dev_from_train`: dev = the `k` training rows
    after the draw's `k` (disjoint from them, drawn anew with each draw); test = the protocol's
    test split, except that a small-protocol task is tested on its whole validation split."""
    if name == "validation":
        return draw(split(task, read, data_seed, group_key, "train"), k, shot_seed, start=k)
    if task.split_protocol == "small":
        return read(task.hub_validation)
    return split(task, read, data_seed, group_key, "test")
