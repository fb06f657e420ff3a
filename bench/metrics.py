"""Metrics on decoded strings, all reported x100, none fetched from the Hub.

Every function takes the stripped predictions, the examples (targets and
scoring context) and the task's label set. An invalid prediction (outside the
label set) always counts as wrong: for the F1 family it becomes the opposite of
the gold label, as the official code does; for correlations an unparsable
float becomes -1.
"""
from __future__ import annotations

import re
import string
from collections import Counter, defaultdict
from typing import Callable, Sequence

import numpy as np
from scipy import stats
from sklearn import metrics as sk

from bench.registry import Registry
from tasks.base import Example

MetricFn = Callable[[Sequence[str], Sequence[Example], tuple[str, ...] | None], float]
METRICS: Registry[MetricFn] = Registry("metric")


def metric(name: str):
    return METRICS.decorator(name)


def binary_ids(predictions, examples) -> tuple[np.ndarray, np.ndarray]:
    """Gold and predicted 0/1 ids; an invalid prediction flips the gold label."""
    gold = np.array([int(e.target) for e in examples])
    pred = np.array([int(p) if p in ("0", "1") else 1 - g for p, g in zip(predictions, gold)])
    return gold, pred


def to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return -1.0


@metric("accuracy")
def accuracy(predictions, examples, labels=None) -> float:
    return 100 * float(np.mean([p == e.target for p, e in zip(predictions, examples)]))


@metric("f1")
def binary_f1(predictions, examples, labels=None) -> float:
    """F1 of the positive class "1" (MRPC, QQP)."""
    gold, pred = binary_ids(predictions, examples)
    return 100 * sk.f1_score(gold, pred, zero_division=0.0)


@metric("f1a")
def multirc_f1a(predictions, examples, labels=None) -> float:
    """MultiRC F1a: binary F1 pooled over every answer option of every question."""
    return binary_f1(predictions, examples)


@metric("macro_f1")
def macro_f1(predictions, examples, labels) -> float:
    """Unweighted mean of the per-class F1 over all label classes (CB: 3)."""
    gold = [labels.index(e.target) for e in examples]
    pred = [labels.index(p) if p in labels else -1 for p in predictions]
    return 100 * sk.f1_score(gold, pred, labels=list(range(len(labels))), average="macro", zero_division=0.0)


@metric("matthews")
def matthews(predictions, examples, labels=None) -> float:
    gold, pred = binary_ids(predictions, examples)
    return 100 * sk.matthews_corrcoef(gold, pred)


def _correlation(fn, predictions, examples) -> float:
    gold = np.array([float(e.target) for e in examples])
    pred = np.array([to_float(p) for p in predictions])
    if np.all(pred == pred[0]) or np.all(gold == gold[0]):
        return 0.0  # undefined for a constant input; scipy would return nan
    return 100 * float(fn(gold, pred)[0])


@metric("pearson")
def pearson(predictions, examples, labels=None) -> float:
    return _correlation(stats.pearsonr, predictions, examples)


@metric("spearman")
def spearman(predictions, examples, labels=None) -> float:
    return _correlation(stats.spearmanr, predictions, examples)


@metric("em")
def grouped_exact_match(predictions, examples, labels=None) -> float:
    """MultiRC EM: the share of questions whose answer options are all right."""
    groups: dict[object, list[bool]] = defaultdict(list)
    for p, e in zip(predictions, examples):
        groups[e.extra["group"]].append(p == e.target)
    return 100 * float(np.mean([all(right) for right in groups.values()]))


PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower, drop punctuation, drop a/an/the, fold spaces."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _best_over_answers(fn, predictions, examples) -> float:
    scores = [max(fn(p, gold) for gold in (e.extra.get("answers") or [e.target])) for p, e in zip(predictions, examples)]
    return 100 * float(np.mean(scores))


@metric("squad_f1")
def squad_f1(predictions, examples, labels=None) -> float:
    return _best_over_answers(token_f1, predictions, examples)


@metric("squad_em")
def squad_em(predictions, examples, labels=None) -> float:
    return _best_over_answers(lambda p, g: float(normalize_answer(p) == normalize_answer(g)), predictions, examples)
