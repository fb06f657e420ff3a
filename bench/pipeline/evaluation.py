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
    """The scores of always predicting the most frequent target of the run's own training rows
    (`baselines.majority`): what the run could have learned from its label counts alone. Not the
    floor: a few-shot draw's most frequent label can be the test split's rarer one (`floor_baseline`).
    None for open-ended targets, where no answer is frequent."""
    if not has_floor(task):
        return None
    common = Counter(example.target for example in train).most_common(1)[0][0]
    return score(task, test, [common] * len(test), protocol)


TIE_TOLERANCE = 1e-9
"""Constant answers whose scores differ by less are tied: each reaches the floor."""
EVERY_CONSTANT = "any constant"
"""The answer a regression floor names: a correlation is 0 for every constant prediction."""


def has_floor(task: Task) -> bool:
    """Whether a constant answer means anything: a label set, or a number (regression); open-ended
    targets (QA, ReCoRD, data-to-text) have no constant answer to speak of."""
    return task.labels is not None or task.head_form is not None


def constant_answers(task: Task, test: list[Example]) -> dict[str, str]:
    """Every constant answer the task allows -> the prediction scored for it: each label; for a
    regression one number stands for all (the test split's first target: any constant scores the
    same, the metric's value for a constant prediction)."""
    if task.labels is not None:
        return {label: label for label in task.labels}
    return {EVERY_CONSTANT: test[0].target}


def floor_baseline(task: Task, test: list[Example], protocol: Protocol) -> dict | None:
    """The run's floor (`baselines.floor`): per metric, the best score any constant answer reaches
    on the split the run is scored on, and every answer that reaches it (ties named, not broken).
    Scored by `score`, so the protocol's metric variants apply. `mean`: the best constant's
    checkpoint-selection mean (`Score.mean`), what a source prompt's own test mean is held to.
    None where the task has no constant answer (`has_floor`)."""
    if not has_floor(task):
        return None
    scores = {answer: score(task, test, [prediction] * len(test), protocol)
              for answer, prediction in constant_answers(task, test).items()}
    best = {name: max(s.metrics[name] for s in scores.values()) for name in task.metrics}
    return {"metrics": best,
            "answers": {name: [answer for answer, s in scores.items() if s.metrics[name] >= value - TIE_TOLERANCE]
                        for name, value in best.items()},
            "mean": max(s.mean for s in scores.values()), "n": len(test)}
