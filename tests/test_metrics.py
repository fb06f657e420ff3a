"""Every classification / regression / QA metric against values computed by hand."""
from __future__ import annotations

import pytest

from bench.evaluation import score
from bench.metrics import METRICS, normalize_answer
from tasks.base import Example
from tasks.registry import TASKS


def ex(*targets, groups=None, answers=None):
    return [Example("s", t, "t", {**({"group": groups[i]} if groups else {}), **({"answers": answers[i]} if answers else {})})
            for i, t in enumerate(targets)]


def m(name, predictions, examples, labels=("0", "1")):
    return METRICS.get(name)(predictions, examples, labels)


def test_accuracy_counts_invalid_as_wrong():
    assert m("accuracy", ["1", "0", "x", "1"], ex("1", "1", "0", "1")) == 50.0


def test_binary_f1_flips_invalid_predictions():
    # pred ids after flipping "bad" (gold 0) -> 1: [1,0,1,1,1]; TP 2, FP 2, FN 1: P 1/2, R 2/3
    assert m("f1", ["1", "0", "1", "bad", "1"], ex("1", "1", "0", "0", "1")) == pytest.approx(100 * 4 / 7)


def test_cb_macro_f1_over_three_classes():
    # class 0: P 1, R 1/2 -> 2/3; class 1: 0; class 2: P 1/2, R 1 -> 2/3
    value = m("macro_f1", ["0", "2", "2", "x"], ex("0", "1", "2", "0"), labels=("0", "1", "2"))
    assert value == pytest.approx(100 * (4 / 9))


def test_matthews():
    # TP 1, TN 2, FP 0, FN 1: (1*2 - 0*1) / sqrt(1*2*2*3)
    assert m("matthews", ["1", "0", "0", "0"], ex("1", "1", "0", "0")) == pytest.approx(100 * 2 / 12 ** 0.5)


def test_pearson_and_spearman_with_unparsable_as_minus_one():
    assert m("pearson", ["1", "2", "4"], ex("1", "2", "3"), None) == pytest.approx(100 * 3 / (2 * 14 / 3) ** 0.5)
    assert m("spearman", ["3", "2", "x"], ex("1", "2", "3"), None) == pytest.approx(-100.0)


def test_multirc_grouped_exact_match_and_pooled_f1():
    examples = ex("1", "0", "1", "0", groups=["q1", "q1", "q2", "q2"])
    predictions = ["1", "0", "1", "1"]
    assert m("em", predictions, examples) == 50.0
    # pooled: TP 2, FP 1, FN 0 -> P 2/3, R 1 -> F1 0.8
    assert m("f1a", predictions, examples) == pytest.approx(80.0)


def test_squad_normalisation_and_max_over_answers():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    examples = ex("a cat sat", "the cat sat on the mat", answers=[["a cat sat", "dog"], ["the cat sat on the mat"]])
    predictions = ["The Cat sat!", "cat on mat"]
    assert m("squad_em", predictions, examples, None) == 50.0
    # second: tokens [cat on mat] vs [cat sat on mat]: P 1, R 3/4 -> F1 6/7
    assert m("squad_f1", predictions, examples, None) == pytest.approx(100 * (1 + 6 / 7) / 2)


def test_score_counts_invalid_predictions_and_averages_metrics():
    cb = TASKS.get("cb")
    result = score(cb, ex("0", "1", "2", "0"), [" 0", "2 ", "2", "maybe"])
    assert result.invalid == 1 and result.n == 4
    assert result.metrics["accuracy"] == 50.0
    assert result.mean == pytest.approx((50.0 + 100 * 4 / 9) / 2)
