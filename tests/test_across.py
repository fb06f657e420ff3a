"""Across cells (bench/studies/across.py): the suite-level mean, IQM and P(A > B) by hand, their
stratified bootstrap, and the rank test against scipy and Demšar's table."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from bench.studies.across import (CellSamples, across_cells, cd_text, improvement, iqm, plot_cd, rank_groups,
                                  rank_test, scaled_mean)


def test_improvement_by_hand():
    # paired: differences (+1, 0, -2, +3) -> (1 + 0.5 + 0 + 1) / 4
    assert improvement(np.array([5.0, 4.0, 1.0, 7.0]), np.array([4.0, 4.0, 3.0, 4.0]), True) == 0.625
    # unpaired: A (1, 3) against B (2, 3, 0): pairs 1>2 no, 1>3 no, 1>0 yes, 3>2 yes, 3=3 half, 3>0 yes -> 3.5/6
    assert improvement(np.array([1.0, 3.0]), np.array([2.0, 3.0, 0.0]), False) == pytest.approx(3.5 / 6)


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 1000.0])) == 35.0  # mean of 20, 30, 40, 50


def test_scaled_resampling_has_the_unbiased_variance():
    """Over every one of the 27 resamples of 3 values, the mean of the scaled draws has variance
    s²/n exactly (plain draws: (n - 1)/n of it)."""
    values = np.array([1.0, 4.0, 10.0])
    draws = np.array(np.meshgrid(*[range(3)] * 3)).reshape(3, -1).T
    means = scaled_mean(np.broadcast_to(values, draws.shape), draws)
    plain = np.array([values[d].mean() for d in draws])
    assert means.var() == pytest.approx(values.var(ddof=1) / 3, rel=1e-12)
    assert plain.var() == pytest.approx(values.var(ddof=1) / 3 * 2 / 3, rel=1e-12)


def test_without_spread_the_intervals_are_points():
    """Two cells whose units all differ by exactly +2 and +4, no test-set resamples: every
    replicate's mean is 3 and P(A > B) is 1."""
    cells = [CellSamples(True, np.array([52.0, 53.0, 50.0]), np.array([50.0, 51.0, 48.0]), None, None),
             CellSamples(True, np.array([64.0, 60.0, 61.0]), np.array([60.0, 56.0, 57.0]), None, None)]
    result = across_cells(cells, 200, 0, 0.05)
    assert (result.mean.value, result.mean.low, result.mean.high) == (3.0, 3.0, 3.0)
    assert (result.improvement.value, result.improvement.low, result.improvement.high) == (1.0, 1.0, 1.0)
    assert result.iqm is None and result.cells == 2


def test_the_stratified_interval_of_the_mean_by_simulation():
    """Five paired cells of 4 units, true mean difference 2, unit sd 3 in every cell: the 95% interval
    holds 2 in about 95% of 400 simulated suites (the √(n/(n - 1)) scaling keeps it from being narrow)."""
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        cells = []
        for _ in range(5):
            b = rng.normal(60, 5, 4)
            cells.append(CellSamples(True, b + 2 + rng.normal(0, 3, 4), b, None, None))
        result = across_cells(cells, 300, int(rng.integers(1 << 30)), 0.05)
        hits += result.mean.low <= 2 <= result.mean.high
    assert 0.91 <= hits / 400 <= 0.98


def test_test_set_resamples_enter_the_interval():
    """One unit a cell (no unit variance) but test-set resamples: the interval is theirs."""
    a_resampled = np.array([[70.0], [72.0], [74.0], [76.0]])
    b_resampled = np.array([[70.0], [70.0], [70.0], [70.0]])
    cell = CellSamples(True, np.array([73.0]), np.array([70.0]), a_resampled, b_resampled)
    result = across_cells([cell, cell], 400, 0, 0.05)
    assert result.mean.value == 3.0 and result.mean.low == 0.0 and result.mean.high == 6.0


def test_iqm_from_five_cells():
    cells = [CellSamples(False, np.array([float(i), float(i + 2)]), np.array([float(i)]), None, None) for i in range(5)]
    result = across_cells(cells, 50, 0, 0.05)
    a = np.concatenate([c.a for c in cells])
    b = np.concatenate([c.b for c in cells])
    assert result.iqm.value == pytest.approx(iqm(a) - iqm(b))


def test_friedman_matches_scipy_and_the_critical_difference_demsar():
    scores = {"a": {"t1": 80.0, "t2": 70.0, "t3": 60.0, "t4": 90.0},
              "b": {"t1": 78.0, "t2": 71.0, "t3": 58.0, "t4": 85.0},
              "c": {"t1": 70.0, "t2": 65.0, "t3": 55.0, "t4": 80.0}}
    test = rank_test(scores, 0.05)
    reference = sps.friedmanchisquare([80, 70, 60, 90], [78, 71, 58, 85], [70, 65, 55, 80])
    assert (test.statistic, test.p) == pytest.approx((reference.statistic, reference.pvalue), rel=1e-12)
    assert test.methods == ["a", "b", "c"] and test.ranks == pytest.approx([1.25, 1.75, 3.0])
    # Demšar (2006), Table 5(a): q_0.05 = 2.343 for 3 classifiers; CD = q sqrt(k (k + 1) / (6 N))
    assert test.cd == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 4)), abs=1e-3)
    assert test.groups == [["a", "b"], ["b", "c"]]  # a-c 1.75 apart > CD 1.657; a-b and b-c within it
    assert "Not told apart" in cd_text(test) and "- a — b" in cd_text(test)


def test_ranks_need_three_methods_on_two_common_cells():
    test = rank_test({"a": {"t1": 1.0, "t2": 2.0}, "b": {"t1": 2.0, "t3": 1.0}, "c": {"t1": 0.0}}, 0.05)
    assert test.cd is None and test.blocks == ["t1"] and test.left_out == []
    # cells more than half the methods ran; a method missing one of them is left out, and named
    partial = rank_test({"a": {"t1": 1.0, "t2": 2.0}, "b": {"t1": 2.0, "t2": 1.0}, "c": {"t1": 0.0, "t2": 3.0},
                         "d": {"t1": 5.0}}, 0.05)
    assert partial.blocks == ["t1", "t2"] and partial.left_out == ["d"] and sorted(partial.methods) == ["a", "b", "c"]
    assert "Left out, for not running all of those cells: d." in cd_text(partial)
    assert cd_text(test).startswith("Ranks need 3 methods or more over 2 cells or more")


def test_rank_groups_by_hand():
    methods = ["a", "b", "c", "d"]
    assert rank_groups(methods, [1.0, 1.5, 2.4, 4.0], 1.0) == [["a", "b"], ["b", "c"]]
    assert rank_groups(methods, [1.0, 1.2, 1.4, 1.6], 1.0) == [["a", "b", "c", "d"]]
    assert rank_groups(methods, [1.0, 2.5, 4.0, 5.5], 1.0) == []


def test_the_critical_difference_diagram_is_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    scores = {m: {f"t{j}": float(10 * i + j) for j in range(4)} for i, m in enumerate("abcd")}
    out = tmp_path / "cd.png"
    plot_cd(rank_test(scores, 0.05), out, "cd")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
