"""Stability statistics of a configuration over its runs (seeds × few-shot draws).

The ATTEMPT replication study's main finding was instability across runs on
small datasets, and that "best of runs" numbers flatter methods. A mean ± std
alone hides both, so every task and every suite average gets: the number of
runs, mean, standard deviation (ddof=1), a 95% confidence interval of the mean
over runs (Student t, two-sided), min, max, the best-of-runs value (labelled as
such wherever it is shown) and how many runs collapsed, i.e. scored at or below
the floor of the split they are scored on: the best constant answer there
(`baselines.floor` in each result, bench/core/baselines.py), a run that learned
nothing a constant answer would not give. Results made before floors were
recorded fall back to their trained majority (`baselines.majority`).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
from scipy import stats as sps

from bench.core.baselines import result_floors
from tasks.registry import TASKS

CONFIDENCE = 0.95

RunKey = tuple[int, int]
"""A run within a configuration: (seed, few-shot draw)."""


class RunScore(NamedTuple):
    score: float
    """The test score in the task's report metric (the papers' column)."""
    floor: float | None
    """The best constant answer's score on the same test split (in old results, the trained
    majority's); None where the task has none (open-ended targets)."""


@dataclass(frozen=True)
class Stability:
    n: int
    mean: float
    std: float | None
    """Sample standard deviation (ddof=1); None for a single run."""
    ci: tuple[float, float] | None
    """95% Student-t interval of the mean; None for a single run (no spread to estimate)."""
    min: float
    max: float
    best: float
    """Best of runs: what a table printing the best of N runs shows (never the expected score)."""
    collapsed: int | None
    """Runs at or below their floor; None where no run has a floor."""
    floored: int
    """Runs that have a floor (the denominator of `collapsed`)."""


def stability(runs: Sequence[RunScore], best: float | None = None) -> Stability:
    """The statistics of one task (or suite average) over runs. `best` defaults to the highest
    score; a suite average passes its own (see `best_of_runs_average`)."""
    values = np.array([run.score for run in runs], dtype=float)
    n = len(values)
    if n == 0:
        raise ValueError("no runs")
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else None
    ci = None
    if std is not None:
        half = float(sps.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * std / math.sqrt(n)
        ci = (mean - half, mean + half)
    floors = [run for run in runs if run.floor is not None]
    collapsed = sum(run.score <= run.floor for run in floors) if floors else None
    return Stability(n, mean, std, ci, float(values.min()), float(values.max()),
                     float(values.max()) if best is None else best, collapsed, len(floors))


def run_scores(results: list[dict]) -> dict[str, dict[RunKey, RunScore]]:
    """Per task, per run: its report-metric test score and the floor of the split it was scored on
    (`result_floors`: each run keeps its own, since runs of one row may be scored on different
    test data, and an old result's fallback is its own draw's trained majority)."""
    scores: dict[str, dict[RunKey, RunScore]] = defaultdict(dict)
    for result in results:
        key = (result["run"]["seed"], result["run"]["draw"])
        floors = result_floors(result)
        for task, test in result["test"].items():
            metric = TASKS.get(task).report_metric
            floor = floors[task]["metrics"][metric] if task in floors else None
            scores[task][key] = RunScore(test["metrics"][metric], floor)
    return scores


def suite_average(scores: dict[str, dict[RunKey, RunScore]], tasks: list[str]) -> dict[RunKey, RunScore]:
    """Per run, the average over the tasks (only runs that have all of them: an average over
    fewer tasks is another number); its floor is the average of the tasks' floors."""
    runs = sorted({run for task in tasks for run in scores.get(task, {})})
    complete = [run for run in runs if all(run in scores.get(task, {}) for task in tasks)]
    averages = {}
    for run in complete:
        floors = [scores[task][run].floor for task in tasks]
        averages[run] = RunScore(float(np.mean([scores[task][run].score for task in tasks])),
                                 None if None in floors else float(np.mean(floors)))
    return averages


def best_of_runs_average(scores: dict[str, dict[RunKey, RunScore]], tasks: list[str]) -> float:
    """The average over tasks of each task's best run: what a paper printing "best of N runs"
    cells averages to. It beats every single run's average unless one run is best on every task,
    which is how best-of-runs tables flatter a method."""
    return float(np.mean([max(run.score for run in scores[task].values()) for task in tasks]))


def row_statistics(results: list[dict], tasks: list[str]) -> tuple[dict[str, Stability], Stability | None]:
    """(per task, the suite average) statistics of one leaderboard row; the average is None
    where no run has every task."""
    scores = run_scores(results)
    per_task = {task: stability(list(scores[task].values())) for task in tasks if scores.get(task)}
    averages = suite_average(scores, tasks)
    average = stability(list(averages.values()), best_of_runs_average(scores, tasks)) if averages else None
    return per_task, average
