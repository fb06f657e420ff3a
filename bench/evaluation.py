"""Decoded strings -> validity -> the task's metrics."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.metrics import METRICS
from tasks.base import Example, Task


@dataclass(frozen=True)
class Score:
    metrics: dict[str, float]
    invalid: int
    n: int
    selection: tuple[str, ...] = ()
    """Metrics the checkpoint-selection mean averages (empty: all)."""

    @property
    def mean(self) -> float:
        """The official code's `average_metrics`: the checkpoint-selection criterion."""
        return float(np.mean([self.metrics[name] for name in self.selection or self.metrics]))

    def as_dict(self) -> dict:
        return {"metrics": self.metrics, "mean": self.mean, "invalid": self.invalid, "n": self.n}


def score(task: Task, examples: list[Example], predictions: list[str], metric_names: tuple[str, ...] | None = None) -> Score:
    """The task's metrics (or `metric_names`, to reproduce the official multi-task evaluation)."""
    if len(examples) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    predictions = [p.strip() for p in predictions]
    metrics = {name: METRICS.get(name)(predictions, examples, task.labels) for name in metric_names or task.metrics}
    invalid = sum(not task.is_valid(p) for p in predictions)
    selection = tuple(name for name in task.selection_metrics or () if name in metrics)
    return Score(metrics, invalid, len(examples), selection)
