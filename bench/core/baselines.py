"""A result's floors, for every reader (statistics, boards, the source-prompt library).

Results record two baselines (bench/pipeline/evaluation.py): `floor`, per metric the best
constant answer on the test split the run was scored on, and `majority`, always answering the
most frequent label of the run's own training rows. A run collapsed when it scores at or below
its floor; the trained majority is no floor, since a few-shot draw's most frequent label can be
the test split's rarer one (MRPC's 16-row draw 0: "0", accuracy 31.9 on a test split that is
68.1% "1"). Results made before floors were recorded hold only `majority`: readers fall back to
it, and say so (`bench floors DIR --write` adds the floors).
"""
from __future__ import annotations


def result_floors(result: dict) -> dict[str, dict]:
    """Task -> its floor record (`metrics`: metric -> value, and `mean`): the test floor, or in a
    result made before floors were recorded, its trained majority (`has_test_floor` tells which)."""
    baselines = result.get("baselines", {})
    return baselines["floor"] if has_test_floor(result) else baselines.get("majority", {})


def has_test_floor(result: dict) -> bool:
    """Whether the result records its test split's floors (every result made since they exist)."""
    return "floor" in result.get("baselines", {})


def stage_floor(record: dict) -> tuple[str, dict[str, float]]:
    """(its name, task -> value): what a source prompt's test mean was held to for `weak` in a
    stage record or shipped entry (methods/library.py `entry_scores`): its floor, or where the
    record predates floors its `training majority`, named so and not as a floor."""
    return ("floor", record["floor"]) if "floor" in record else ("training majority", record.get("majority", {}))
