"""Every classification / regression / QA metric against values computed by hand."""
from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

from bench.core.presets import PRESETS, Protocol
from bench.core.registry import UsageError
from bench.pipeline.evaluation import score
from tasks.base import Example
from tasks.metrics import METRICS, PROTOCOL_VARIANTS, metric_function, normalize_answer
from tasks.registry import TASKS

PAPER, CODE = PRESETS.get("paper"), PRESETS.get("attempt-code")


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


# gold 1 1 0 0 1, one invalid prediction ("x", gold 1), every other prediction right
MCC_GOLD, MCC_PREDICTIONS = ex("1", "1", "0", "0", "1"), ["1", "x", "0", "0", "1"]
# paper: "x" flips to 0 -> TP 2, FN 1, TN 2, FP 0: (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))
#   = (2*2 - 0*1) / sqrt(2*3*2*3) = 4/6
MCC_FLIPPED = 100 * 4 / 6
# attempt-code: classes 0, 1, x. Multi-class MCC = (c*s - sum_k p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2))
# with s = 5 rows, c = 4 right, true counts t = (0: 2, 1: 3, x: 0), predicted p = (0: 2, 1: 2, x: 1):
#   (4*5 - (2*2 + 2*3 + 1*0)) / sqrt((25 - (4 + 4 + 1)) * (25 - (4 + 9))) = 10 / sqrt(16 * 12) = 10 / sqrt(192)
MCC_INVALID_CLASS = 100 * 10 / 192 ** 0.5


def test_matthews_flips_invalid_under_paper_and_counts_a_class_under_attempt_code():
    assert metric_function("matthews", PAPER)(MCC_PREDICTIONS, MCC_GOLD, ("0", "1")) == pytest.approx(MCC_FLIPPED)
    assert metric_function("matthews", CODE)(MCC_PREDICTIONS, MCC_GOLD, ("0", "1")) == pytest.approx(MCC_INVALID_CLASS)


def test_metric_function_reads_the_switch_not_the_preset():
    flipped_on = replace(PAPER, matthews_invalid_class=True)
    assert metric_function("matthews", flipped_on)(MCC_PREDICTIONS, MCC_GOLD, None) == pytest.approx(MCC_INVALID_CLASS)
    assert metric_function("accuracy", CODE) is METRICS.get("accuracy") is metric_function("accuracy", PAPER)
    with pytest.raises(UsageError, match="unknown metric 'matthew'.*did you mean 'matthews'"):
        metric_function("matthew", PAPER)


def test_every_metric_variant_has_a_boolean_protocol_switch():
    switches = {f.name for f in fields(Protocol)}
    assert PROTOCOL_VARIANTS and all(name in METRICS for name in PROTOCOL_VARIANTS)
    for switch, _ in PROTOCOL_VARIANTS.values():
        assert switch in switches and isinstance(getattr(Protocol(), switch), bool)


def test_score_keeps_the_matthews_key_in_both_presets():
    cola = TASKS.get("cola")
    assert score(cola, MCC_GOLD, MCC_PREDICTIONS, PAPER).metrics == {"matthews": pytest.approx(MCC_FLIPPED)}
    code = score(cola, MCC_GOLD, MCC_PREDICTIONS, CODE)
    assert code.metrics == {"matthews": pytest.approx(MCC_INVALID_CLASS)} and code.invalid == 1
    assert code.as_dict() == {"metrics": code.metrics, "mean": code.mean, "invalid": 1, "n": 5}  # no "details"


def test_pearson_and_spearman_with_unparsable_as_minus_one():
    assert m("pearson", ["1", "2", "4"], ex("1", "2", "3"), None) == pytest.approx(100 * 3 / (2 * 14 / 3) ** 0.5)
    assert m("spearman", ["3", "2", "x"], ex("1", "2", "3"), None) == pytest.approx(-100.0)


# gold 1 2 3 vs predictions -1 2 4: dx = (-1, 0, 1), dy = (-8/3, 1/3, 7/3);
# sum dx*dy = 8/3 + 7/3 = 5, sum dx^2 = 2, sum dy^2 = (64 + 1 + 49) / 9 = 38/3 -> r = 5 / sqrt(2 * 38/3)
PEARSON_WITH_MINUS_ONE = 100 * 5 / (2 * 38 / 3) ** 0.5


@pytest.mark.parametrize("text", ["nan", "NaN", "-nan", "inf", "-inf", "+inf", "Infinity", "-infinity", "1e999"])
def test_correlations_count_non_finite_predictions_as_minus_one(text):
    assert PEARSON_WITH_MINUS_ONE == pytest.approx(100 * np.corrcoef([1, 2, 3], [-1, 2, 4])[0, 1])  # the hand value
    assert m("pearson", [text, "2", "4"], ex("1", "2", "3"), None) == pytest.approx(PEARSON_WITH_MINUS_ONE)
    stsb = TASKS.get("stsb")
    assert not stsb.is_valid(text)
    result = score(stsb, ex("1", "2", "3"), [text, "2", "4"], PAPER)
    assert result.invalid == 1 and np.isfinite(result.mean)


def test_spearman_ranks_non_finite_predictions_as_tied_minus_ones():
    # predictions 0.5, -1, -1, 3 -> ranks 3, 1.5, 1.5, 4 against 1, 2, 3, 4: dx = (-1.5, -.5, .5, 1.5),
    # dy = (.5, -1, -1, 1.5): sum dx*dy = 1.5, sum dx^2 = 5, sum dy^2 = 4.5 -> 1.5 / sqrt(22.5) = sqrt(0.1)
    value = m("spearman", ["0.5", "inf", "NaN", "3"], ex("1", "2", "3", "4"), None)
    assert value == pytest.approx(100 * 0.1 ** 0.5)


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
    result = score(cb, ex("0", "1", "2", "0"), [" 0", "2 ", "2", "maybe"], PAPER)
    assert result.invalid == 1 and result.n == 4
    assert result.metrics["accuracy"] == 50.0
    assert result.mean == pytest.approx((50.0 + 100 * 4 / 9) / 2)
