"""One cell's test (bench/studies/inference.py): paired units, the interval that holds both sources
of variance (its coverage simulated with known components), the verdict rule, the sign-flip
test by hand, and the power and MDE against scipy and simulation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from bench.core.presets import PRESETS
from bench.studies.compare import Side, bootstrap_summary, replicate_scores
from bench.studies.inference import cell_test, mde, power, sign_flip_p, smallest_effect, verdict
from tasks.base import Example

PT_DRAWS = np.array([61.5, 57.9, 60.1])
"""PT's SST-2 k=16 test scores over three draws (leaderboards/minilm-fewshot)."""


def test_a_consistent_paired_gain_over_three_draws_is_called():
    """+10 on every draw, ±0.5 of noise, a test-set SE of 1.2 points: called even at α/22, where
    Welch over the same six scores (their draw spread, 1.8, in the error term) is far from it."""
    gain = PT_DRAWS + 10 + np.array([0.4, -0.5, 0.1])
    test = cell_test(gain, PT_DRAWS, True, 1.2**2, 0.05)
    d = gain - PT_DRAWS
    se = math.sqrt(d.var(ddof=1) / 3 + 1.44)
    df = se**4 / ((d.var(ddof=1) / 3) ** 2 / 2)
    assert test.design == "paired" and test.n == 3
    assert (test.se, test.df) == pytest.approx((se, df), rel=1e-12)
    assert test.p == pytest.approx(2 * sps.t.sf(d.mean() / se, df), rel=1e-9)
    assert test.p * 22 < 0.05 and verdict(test, test.p * 22, 0.05) == "A better"
    welch = sps.ttest_ind(gain, PT_DRAWS, equal_var=False).pvalue
    assert welch * 22 > 0.05  # 0.0018 × 22: the unpaired test misses it


def test_a_consistent_loss_names_b():
    test = cell_test(PT_DRAWS - 8 + np.array([0.2, 0.0, -0.3]), PT_DRAWS, True, 1.0, 0.05)
    assert verdict(test, test.p, 0.05) == "B better"


def test_one_pair_is_never_called_and_shows_the_test_set_interval():
    test = cell_test(np.array([80.0]), np.array([50.0]), True, 2.0**2, 0.05)
    assert test.p is None and test.blocked == "1 matched unit"
    assert (test.low, test.high) == pytest.approx((30 - 1.959964 * 2, 30 + 1.959964 * 2), abs=1e-5)
    assert verdict(test, None, 0.05) == "no winner named: 1 matched unit"


def test_no_spread_over_units_is_never_called():
    """The same +10 on every draw: the units' variance is 0, an estimate no test may stand on."""
    test = cell_test(PT_DRAWS + 10, PT_DRAWS, True, 1.0, 0.05)
    assert test.p is None and verdict(test, None, 0.05) == "no winner named: no spread over 3 units"
    assert mde(test, 0.05, 1) is None


def test_a_gain_the_test_set_cannot_resolve_is_not_called():
    """Units agree (+3 ± 0.1), but the test set's SE of the difference is 4 points: the paired t over
    units alone would reject (p 0.0004); the cell's test, which holds the test set's variance, does not."""
    test = cell_test(PT_DRAWS + 3 + np.array([0.1, -0.1, 0.0]), PT_DRAWS, True, 4.0**2, 0.05)
    assert test.units_p < 0.001
    assert test.p > 0.4 and verdict(test, test.p, 0.05) == "no significant difference"


def test_corrected_p_at_alpha_is_not_called():
    test = cell_test(PT_DRAWS + 5 + np.array([1.0, -1.0, 0.0]), PT_DRAWS, True, 1.0, 0.05)
    assert verdict(test, 0.05, 0.05) == "no significant difference"
    assert verdict(test, 0.0499, 0.05) == "A better"


def test_sign_flip_by_hand():
    # d = (3, -1, 2), |mean| 4/3; the 8 sign assignments give means ±(3-1+2)/3 = ±4/3, ±(3+1+2)/3 = ±2,
    # ±(3-1-2)/3 = 0, ±(-3-1+2)/3 = ∓2/3: |mean| >= 4/3 for 4 of 8
    assert sign_flip_p(np.array([3.0, -1.0, 2.0])) == 0.5
    assert sign_flip_p(np.array([1.0, 2.0, 3.0])) == 0.25  # the smallest p of three pairs: 2/2^3
    assert sign_flip_p(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])) == 2 / 64


def test_the_unit_level_variance_is_the_paired_t():
    """Without test-set variance the cell's test is the paired t (scipy's ttest_rel)."""
    a, b = np.array([71.0, 69.5, 74.2, 70.0]), np.array([68.0, 69.0, 70.1, 66.2])
    test = cell_test(a, b, True, None, 0.05)
    reference = sps.ttest_rel(a, b)
    assert test.p == pytest.approx(reference.pvalue, rel=1e-9) and test.df == 3
    assert test.units_p == test.p
    low, high = reference.confidence_interval(0.95)
    assert (test.low, test.high) == pytest.approx((low, high), rel=1e-9)


# -- the interval holds both sources of variance: a simulation with known components ---------------


def simulated_study(rng: np.random.Generator, n: int = 3, size: int = 300, base=(0.70, 0.65), shared: float = 0.04,
                    own: float = 0.03, resamples: int = 400):
    """One study of a true 5-point gain: a fresh test set of `size` examples; n draws, each moving
    both sides' accuracy by a shared N(0, shared) and each side by its own N(0, own); a run answers
    example j right where the example's ease (shared by all runs) is below its accuracy. Returns the
    cell's test and the test-set-only bootstrap interval, from the real resampling code."""
    paper = PRESETS.get("paper")
    gold = rng.integers(0, 2, size).astype(str)
    examples = [Example(f"sst2 sentence: {j}", g, "sst2") for j, g in enumerate(gold)]
    ease = rng.random(size)
    draw = rng.normal(0, shared, n)
    sides = []
    for accuracy in base:
        runs = []
        for i in range(n):
            right = ease < np.clip(accuracy + draw[i] + rng.normal(0, own), 0.01, 0.99)
            runs.append({"predictions": {"sst2": [g if ok else str(1 - int(g)) for g, ok in zip(gold, right)]}})
        sides.append(Side(runs, "sst2", examples, paper))
    everything = np.ones((1, size), dtype=int)
    a, b = (side.per_run(everything)[:, 0] for side in sides)
    replicates_a, replicates_b = replicate_scores(*sides, resamples, int(rng.integers(1 << 30)))
    d = replicates_a.mean(axis=1) - replicates_b.mean(axis=1)
    test = cell_test(a, b, True, float(np.var(d, ddof=1)), 0.05)
    return test, bootstrap_summary(float(a.mean() - b.mean()), d, 0.05)


def test_the_interval_covers_the_true_gain_over_draws_and_test_sets():
    """300 studies of 3 draws with a draw-to-draw sd of the difference of 4.2 points and a test-set
    SE of about 0.9: the cell's 95% interval holds the true +5 in 94% of them (binomial SE 1.4%),
    while the bootstrap over test examples alone, blind to the draws, holds it in about half."""
    rng = np.random.default_rng(1)
    studies = [simulated_study(rng) for _ in range(300)]
    covered = np.mean([t.low <= 5 <= t.high for t, _ in studies])
    test_only = np.mean([b.low <= 5 <= b.high for _, b in studies])
    assert covered >= 0.91
    assert test_only <= 0.65


# -- power and the minimum detectable effect ---------------------------------------------------


@pytest.mark.parametrize("effect, sd, n, alpha", [(3.0, 4.0, 5, 0.05), (6.0, 4.0, 3, 0.01), (2.0, 1.5, 10, 0.05 / 22)])
def test_power_without_test_set_variance_is_the_noncentral_t(effect, sd, n, alpha):
    df = n - 1
    quantile = sps.t.ppf(1 - alpha / 2, df)
    nc = effect / (sd / math.sqrt(n))
    reference = sps.nct.sf(quantile, df, nc) + sps.nct.cdf(-quantile, df, nc)
    assert power(effect, sd**2, 0.0, n, df, alpha) == pytest.approx(reference, abs=2e-4)


def test_power_matches_a_simulation_of_the_real_test():
    """Components sd 3, test-set SE 1.5, n 4, α/5: 20,000 simulated studies run through `cell_test`."""
    effect, sd, se_test, n, alpha = 6.0, 3.0, 1.5, 4, 0.05 / 5
    rng = np.random.default_rng(0)
    rejected = 0
    for _ in range(20_000):
        d = effect + sd * rng.standard_normal(n) + se_test * rng.standard_normal()
        test = cell_test(d, np.zeros(n), True, se_test**2, 0.05, with_sign_flip=False)
        rejected += test.p < alpha
    assert power(effect, sd**2, se_test**2, n, n - 1, alpha) == pytest.approx(rejected / 20_000, abs=0.01)


def test_the_mde_is_the_effect_found_with_power_point_eight():
    test = cell_test(PT_DRAWS + 4 + np.array([1.5, -2.0, 0.5]), PT_DRAWS, True, 1.1**2, 0.05)
    effect = mde(test, 0.05, 22)
    per_unit = test.var_units * 3
    assert power(effect, per_unit, 1.21, 3, 2, 0.05 / 22) == pytest.approx(0.8, abs=1e-4)
    assert effect > mde(test, 0.05, 1)  # more comparisons, a larger detectable effect
    assert smallest_effect(per_unit, 1.21, 3, 2, 0.05 / 22) == effect
