"""A grid: methods × task sets × seeds × few-shot draws, in one fixed order, and its shards.

The order depends only on the configs, so `--shard K/N` on N machines (or a SLURM array)
splits the same list the same way everywhere: every unit is run by exactly one shard, and the
union of the shards is the grid.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from bench.core.registry import UsageError


@dataclass(frozen=True)
class Unit:
    """One run of a grid."""

    tasks: tuple[str, ...]
    seed: int
    draw: int = 0


def units_of(config, multi_task: bool) -> list[Unit]:
    """Every seed of every task set of a config, for each few-shot draw."""
    task_sets = [tuple(config.tasks)] if multi_task else [(name,) for name in config.tasks]
    return [Unit(names, seed, draw) for draw in range(config.k_shot_draws if config.k_shot else 1)
            for seed in config.seeds for names in task_sets]


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` -> (K, N), 1 <= K <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"--shard takes K/N with 1 <= K <= N (e.g. 2/4 for the second of four), not {text!r}")
    return int(match[1]), int(match[2])


def shard_of(items: list, shard: tuple[int, int] | None) -> list:
    """The K-th of N interleaved slices (interleaved, so that slow methods spread over the shards)."""
    if shard is None:
        return items
    k, n = shard
    return items[k - 1 :: n]
