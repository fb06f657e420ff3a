"""Is A better than B in one cell (a task at one setting), and by how much: the test, the
interval and the smallest effect the design could have detected.

Two sources of variance move a cell's difference. Runs differ by their units (training seed,
few-shot draw: which rows a run trained on), and every run is scored on one finite test set.
A verdict has to hold against both, so each cell gets:

- **Units.** Runs of A and B that share a seed and a few-shot draw, and whose training rows
  have the same fingerprint, are a *pair*: the unit is what they share, and the test works on
  the per-unit differences d_i (paired). Where the sides share no unit, the runs are
  independent samples (Welch). Unmatched runs of a partly paired design are left out, and said.
- **Variance of the difference** = V_units + V_test. V_units is s²/n over the paired
  differences (s_A²/n_A + s_B²/n_B unpaired): the run-to-run spread, each run's own test-set
  errors included. V_test is the variance of the difference over test-set resamples (the
  paired bootstrap of bench/studies/compare.py: every run of both sides resampled with the
  *same* draws of the test split's units, since all were scored on one split, MultiRC's
  questions and ReCoRD's queries drawn whole). Together they are the two-level (hierarchical)
  bootstrap's variance: units resampled, then test examples, with the unit level computed
  exactly (resampling n of n units would shrink it by (n - 1)/n) and the test level by Monte
  Carlo. The test-set component does not shrink with more units: every unit shares the split.
- **Interval and test.** Δ ± t(ν) · SE with ν Welch–Satterthwaite's degrees of freedom of the
  two components (the units' variance on n - 1, or Welch's df unpaired; the test set's as
  known): n - 1 where the units dominate, the normal where the test set does. Not a percentile
  of the resamples: with 3 units the
  resampled unit means never leave [min d_i, max d_i], which holds the true mean at most 3/4
  of the time. The cell's p is that t's, two-sided; it is Holm-corrected over the table.
- **Verdict** (`verdict`, the one rule every command and document uses): a winner is named
  only where at least two units a side are matched (two runs a side unpaired), the units
  spread (else their variance cannot be estimated), and the corrected p is below α.
  Beside it, for the reader: the paired t over units alone (the textbook test, no test-set
  variance), the exact sign-flip permutation p over the paired differences (distribution
  free; its smallest possible value, 2/2^n, shows what n can ever show) and the test-set-only
  bootstrap interval.
- **Minimum detectable effect** (`mde`): the smallest |Δ| this test finds with power 0.8 at the
  cell's n, variance components and Holm's strictest threshold α/m (Bonferroni: the level
  the first-ranked cell is tested at, the only one a cell is sure of), computed exactly under
  the normal model (`power`), so that a null reads "no difference larger than the MDE".
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize
from scipy import stats as sps

POWER = 0.8
QUANTILE_GRID = 4000
"""Points of the chi-square quantile grid `power` averages over (midpoints: error ~1e-5)."""
EXACT_SIGN_FLIPS = 16
"""Up to this many pairs the sign-flip test enumerates all 2^n assignments; beyond, 2^16 random ones."""


@dataclass(frozen=True)
class CellTest:
    """One cell's difference A − B with its variance components, interval and test. The units'
    part comes first (`units_part`, `welch_part`); `finish` joins the test set's and fills the rest."""

    design: str
    """`paired` (matched units) or `unpaired` (Welch: the sides share no unit)."""
    n: int
    """Matched units (paired) or A's runs (unpaired)."""
    n_b: int
    """Matched units again (paired) or B's runs (unpaired)."""
    difference: float
    """Mean of the paired differences (paired) or mean over A's runs minus mean over B's."""
    var_units: float | None
    """s²/n of the differences (paired) or s_A²/n_A + s_B²/n_B; None with fewer than 2 units."""
    df_units: float | None
    """Degrees of freedom of the units' variance alone (n - 1, or Welch's): what `power` needs."""
    units_p: float | None
    """The paired t (or Welch) over units alone, without the test-set variance."""
    sign_flip_p: float | None
    """Exact sign-flip permutation p over the paired differences (paired designs only)."""
    blocked: str | None
    """Why no test is run (e.g. `1 matched unit`, `no spread over 3 units`); None where it is."""
    sd_units: float | None
    """The units' standard deviation (of the differences; unpaired: None, see sd_a, sd_b)."""
    sd_a: float | None = None
    sd_b: float | None = None
    var_test: float | None = None
    """Variance of the difference over test-set resamples; None without per-example predictions."""
    df: float | None = None
    """Degrees of freedom of the interval and test: Welch–Satterthwaite over the units' variance
    (on df_units) and the test set's (known); None with fewer than 2 units."""
    se: float | None = None
    low: float | None = None
    high: float | None = None
    p: float | None = None
    """Two-sided p of Δ / SE on df; None where no winner can be named (`blocked`)."""


def cell_test(a: np.ndarray, b: np.ndarray, paired: bool, var_test: float | None, alpha: float,
              with_sign_flip: bool = True) -> CellTest:
    """The cell's test from its per-unit scores (`a[i]`, `b[i]` of one pair where `paired`, else
    each side's runs) and the test-set variance of the difference (None where unknown: the
    interval then holds the units' variance alone). `with_sign_flip=False` leaves out the
    secondary sign-flip p (a power simulation runs thousands of tests)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    units = units_part(a - b, with_sign_flip) if paired else welch_part(a, b)
    return finish(units, var_test, alpha)


def units_part(d: np.ndarray, with_sign_flip: bool) -> CellTest:
    """Paired: the differences' variance of the mean and the paired t over them."""
    n, difference = len(d), float(d.mean())
    if n == 1:
        return CellTest("paired", 1, 1, difference, None, None, None, None, "1 matched unit", None)
    sd = float(d.std(ddof=1))
    if np.ptp(d) <= 1e-9 * max(1.0, float(np.abs(d).max())):
        sd = 0.0  # equal up to rounding (a + 10 - a): no spread, not a tiny one
    flips = sign_flip_p(d) if with_sign_flip else None
    if sd == 0:
        return CellTest("paired", n, n, difference, 0.0, n - 1.0, None, flips, f"no spread over {n} units", 0.0)
    units_p = float(2 * sps.t.sf(abs(difference) / (sd / math.sqrt(n)), n - 1))
    return CellTest("paired", n, n, difference, sd**2 / n, n - 1.0, units_p, flips, None, sd)


def welch_part(a: np.ndarray, b: np.ndarray) -> CellTest:
    """Unpaired: Welch's variance of the difference of means and its Satterthwaite df."""
    difference = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return CellTest("unpaired", len(a), len(b), difference, None, None, None, None,
                        f"{min(len(a), len(b))} run on one side (unpaired)", None)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    sd_a, sd_b = float(math.sqrt(va * len(a))), float(math.sqrt(vb * len(b)))
    if va + vb == 0:
        return CellTest("unpaired", len(a), len(b), difference, None, None, None, None,
                        "no spread over the runs of either side", None, sd_a, sd_b)
    df = float((va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)))
    units_p = float(2 * sps.t.sf(abs(difference) / math.sqrt(va + vb), df))
    return CellTest("unpaired", len(a), len(b), difference, float(va + vb), df, units_p, None, None, None, sd_a, sd_b)


def finish(units: CellTest, var_test: float | None, alpha: float) -> CellTest:
    """Joins the test-set variance to the units' and forms the interval and p: Δ ± t(ν) · SE.
    With fewer than two units only the test-set variance is known: the interval shown is then
    over test examples alone (normal), and no test is run."""
    components = [v for v in (units.var_units, var_test) if v is not None]
    se = math.sqrt(sum(components)) if components else None
    df = None if units.df_units is None else float(satterthwaite(units.var_units, var_test or 0.0, units.df_units))
    quantile = sps.norm.ppf(1 - alpha / 2) if df is None else sps.t.ppf(1 - alpha / 2, df)
    low, high = (None, None) if se is None else (units.difference - quantile * se, units.difference + quantile * se)
    p = float(2 * sps.t.sf(abs(units.difference) / se, df)) if units.blocked is None and se else None
    return replace(units, var_test=var_test, df=df, se=se, low=None if low is None else float(low),
                   high=None if high is None else float(high), p=p)


def satterthwaite(var_units, var_test: float, df_units: float):
    """Welch–Satterthwaite degrees of freedom of var_units + var_test (a number or an array of
    units' variances), the units' variance estimated on df_units and the test set's known (its
    thousands of resamples): df_units where the units dominate, towards the normal where the test
    set does (infinite where the units do not vary at all). Simulated coverage of the 95%
    interval (tests/test_inference.py): 0.92-0.95 with 3 units, 0.87-0.95 with 2 (liberal where
    the units dominate, as Welch's t is), 0.94-0.95 with 5."""
    var_units = np.asarray(var_units, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var_units > 0, (var_units + var_test) ** 2 / (var_units**2 / df_units),
                        np.inf if var_test else df_units)


def sign_flip_p(d: np.ndarray, seed: int = 0) -> float:
    """Exact two-sided sign-flip permutation p of the mean of paired differences: under no
    effect each difference is as likely negated, so p is the share of the 2^n sign assignments
    whose |mean| reaches the observed one (beyond EXACT_SIGN_FLIPS pairs, 2^16 random
    assignments, (count + 1)/(R + 1)). Its smallest value is 2/2^n: 0.25 for 3 pairs."""
    d = np.asarray(d, dtype=float)
    observed = abs(d.mean())
    if len(d) <= EXACT_SIGN_FLIPS:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
        return float(np.mean(np.abs(signs @ d / len(d)) >= observed - 1e-12))
    signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(2**16, len(d)))
    return float((np.sum(np.abs(signs @ d / len(d)) >= observed - 1e-12) + 1) / (2**16 + 1))


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment over the p-values present (None: a test that did not run, not
    counted in the family): the i-th smallest of m becomes max over j ≤ i of min(1, (m - j + 1) p_j)."""
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, index) in enumerate(present):
        running = max(running, min(1.0, (len(present) - rank) * p))
        adjusted[index] = running
    return adjusted


def verdict(test: CellTest, p_corrected: float | None, alpha: float) -> str:
    """The one verdict rule: a winner only where the cell could be tested (at least two units a
    side, and spread) and its Holm-corrected p is below alpha; else why not."""
    if test.blocked is not None:
        return f"no winner named: {test.blocked}"
    if p_corrected is None:
        return "untested"
    if p_corrected < alpha and test.difference:
        return "A better" if test.difference > 0 else "B better"
    return "no significant difference"


def power(effect: float, var_units_one: float, var_test: float, n: int, df: float, alpha_each: float) -> float:
    """Probability that the cell's test rejects at `alpha_each` (two-sided) when the true
    difference is `effect`: D ~ N(effect, var_units_one/n + var_test), the units' variance
    estimate ~ var_units_one · χ²(df)/df, T = D / sqrt(estimate/n + var_test) against t on the
    Satterthwaite df of that estimate, as `finish` tests it. Exact under that normal model (the
    estimate integrated over a grid of chi-square quantiles); with var_test = 0 it is the
    noncentral t's power."""
    spread = math.sqrt(var_units_one / n + var_test)
    if spread == 0:
        return 1.0 if effect else alpha_each
    w = sps.chi2.ppf((np.arange(QUANTILE_GRID) + 0.5) / QUANTILE_GRID, df) / df
    estimated = var_units_one * w / n
    quantile = sps.t.ppf(1 - alpha_each / 2, satterthwaite(estimated, var_test, df))
    se_estimated = np.sqrt(estimated + var_test)
    rejects = (sps.norm.cdf((effect - quantile * se_estimated) / spread)
               + sps.norm.cdf((-effect - quantile * se_estimated) / spread))
    return float(rejects.mean())


def smallest_effect(var_units_one: float, var_test: float, n: int, df: float, alpha_each: float,
                    target: float = POWER) -> float:
    """The effect `power` finds with probability `target`: its root in the effect (power rises with it)."""
    scale = math.sqrt(var_units_one / n + var_test)
    high = scale
    while power(high, var_units_one, var_test, n, df, alpha_each) < target:
        high *= 2
    return float(optimize.brentq(lambda e: power(e, var_units_one, var_test, n, df, alpha_each) - target,
                                 0.0, high, xtol=1e-6 * scale))


def mde(test: CellTest, alpha: float, comparisons: int, target: float = POWER) -> float | None:
    """The cell's minimum detectable effect at Holm's strictest threshold alpha/comparisons;
    None where the cell cannot be tested (its units' variance unknown or 0)."""
    if test.blocked is not None or not test.var_units or test.df_units is None:
        return None  # unpaired, the Welch variance stands as if of A's n runs of one spread
    return smallest_effect(test.var_units * test.n, test.var_test or 0.0, test.n, test.df_units,
                           alpha / max(comparisons, 1), target)
