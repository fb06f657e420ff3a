"""Decoded strings -> validity -> the task's metrics."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from bench.core.presets import Protocol
from tasks.base import Example, Task
from tasks.metrics import TOKENIZED_METRICS, generation_tokenizer, metric_function


@dataclass(frozen=True)
class Score:
    metrics: dict[str, float]
    invalid: int
    n: int
    selection: tuple[str, ...] = ()
    """Metrics the checkpoint-selection mean averages (empty: all)."""
    details: dict[str, str] = field(default_factory=dict)
    """How the metrics were computed where that can vary by machine (the generation tokenizer)."""
    predictions: tuple[str, ...] = ()
    """The (stripped) predictions scored, in example order: what a paired comparison of two runs resamples."""

    @property
    def mean(self) -> float:
        """The official code's `average_metrics`: the checkpoint-selection criterion."""
        return float(np.mean([self.metrics[name] for name in self.selection or self.metrics]))

    def as_dict(self) -> dict:
        """Details only where there are any, so classification results keep their layout."""
        result = {"metrics": self.metrics, "mean": self.mean, "invalid": self.invalid, "n": self.n}
        return {**result, "details": self.details} if self.details else result


def score(task: Task, examples: list[Example], predictions: list[str], protocol: Protocol,
          metric_names: tuple[str, ...] | None = None) -> Score:
    """The task's metrics (or `metric_names`, to reproduce the official multi-task evaluation),
    each in the variant `protocol` selects."""
    if len(examples) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    predictions = [p.strip() for p in predictions]
    names = metric_names or task.metrics
    metrics = {name: metric_function(name, protocol)(predictions, examples, task.labels) for name in names}
    invalid = sum(not task.is_valid(p) for p in predictions)
    selection = tuple(name for name in task.selection_metrics or () if name in metrics)
    details = {"tokenizer": generation_tokenizer()} if TOKENIZED_METRICS.intersection(names) else {}
    return Score(metrics, invalid, len(examples), selection, details, tuple(predictions))


def majority_baseline(task: Task, train: list[Example], test: list[Example], protocol: Protocol) -> Score | None:
    """The scores of always predicting the training split's most frequent target: the floor a run
    has to beat (none for open-ended targets, where no answer is frequent)."""
    if task.labels is None and task.head_form is None:
        return None
    common = Counter(example.target for example in train).most_common(1)[0][0]
    return score(task, test, [common] * len(test), protocol)
