"""A over B across tasks, and several methods ranked over tasks: the suite-level questions.

Per-task verdicts (bench/studies/inference.py) answer "here"; a reader also asks "in
general". Following rliable ("Deep RL at the edge of the statistical precipice", Agarwal et
al. 2021), a suite-level answer is an interval over runs and tasks, not a point:

- **Mean over cells** (a cell: a task at one setting) of the per-cell difference A − B, and,
  where cells are many (at least IQM_CELLS), the interquartile mean of each side's run scores
  pooled over cells, IQM(A) − IQM(B): robust to one cell's outlying runs.
- **Probability of improvement** P(A > B): per cell, the chance that A's run beats B's (paired:
  the share of units whose difference is positive; unpaired: Mann–Whitney over all run
  pairs; ties count one half), averaged over cells.
- Each with a **stratified bootstrap** percentile interval: every replicate resamples each
  cell's units (matched pairs together; each side's runs where unpaired) within the cell, and
  takes the cell's test-set resample of the same replicate, so both sources of variance enter.
  For the mean, each cell's unit deviations are scaled by √(n/(n - 1)) before resampling, so
  the replicates' unit variance is the unbiased s²/n rather than (n - 1)/n of it (with 3 units
  a cell, plain resampling would narrow the interval by a fifth); IQM and P(A > B) are not
  linear and resample plain scores, as rliable does.
- **Ranks** over several methods (`rank_test`): Friedman's test over the cells that every
  method ran (blocks), and Nemenyi's critical difference (Demšar 2006): two methods whose
  average ranks differ by less than CD are not told apart. Both from scipy.stats; rliable,
  autorank and deepsig were weighed and not taken: rliable pins JAX-free but heavy plotting
  stacks and normalises scores per environment, autorank pulls in pandas, statsmodels and
  matplotlib for these few lines, deepsig's ASO answers another question (stochastic
  dominance, no interval of the difference).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

IQM_CELLS = 5
"""From this many cells on, the IQM is shown beside the mean (fewer: a quartile is under two cells)."""


@dataclass(frozen=True)
class CellSamples:
    """One cell's runs as the suite-level bootstrap resamples them."""

    paired: bool
    a: np.ndarray
    """A's score per unit (paired: in the order of B's) or per run."""
    b: np.ndarray
    a_resampled: np.ndarray | None
    """[R, n_a]: each run's score on the cell's R test-set resamples (None: no predictions)."""
    b_resampled: np.ndarray | None


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class AcrossCells:
    cells: int
    mean: Interval
    """Mean over cells of A − B."""
    iqm: Interval | None
    """IQM(A) − IQM(B) over every run × cell; None under IQM_CELLS cells."""
    improvement: Interval
    """P(A > B), averaged over cells."""
    resamples: int


def iqm(values: np.ndarray, axis: int | None = None):
    """The interquartile mean: the mean of the middle half (scipy's trim_mean at 25%)."""
    return sps.trim_mean(values, 0.25, axis=axis)


def improvement(cell_a: np.ndarray, cell_b: np.ndarray, paired: bool):
    """P(A > B) in one cell, ties one half: paired over units, else over all run pairs. On the
    last axis (units or runs); leading axes are replicates."""
    if paired:
        d = cell_a - cell_b
        return np.mean((d > 0) + 0.5 * (d == 0), axis=-1)
    a, b = cell_a[..., :, None], cell_b[..., None, :]
    return np.mean((a > b) + 0.5 * (a == b), axis=(-2, -1))


def scaled_mean(values: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """Per replicate (row), the mean of the drawn values with their deviations from the row's mean
    scaled by √(n/(n - 1)): the resampled mean then has the unbiased variance s²/n."""
    n = values.shape[-1]
    picked = np.take_along_axis(values, drawn, axis=-1).mean(axis=-1)
    if n < 2:
        return picked
    centre = values.mean(axis=-1)
    return centre + math.sqrt(n / (n - 1)) * (picked - centre)


def replicate_rows(observed: np.ndarray, resampled: np.ndarray | None, resamples: int) -> np.ndarray:
    """[R, n]: a side's scores in each replicate, its test-set resample of the same number (cycled
    where it has fewer), or its observed scores where it has none."""
    if resampled is None:
        return np.broadcast_to(observed, (resamples, len(observed)))
    return resampled[np.arange(resamples) % len(resampled)]


def across_cells(cells: list[CellSamples], resamples: int, seed: int, alpha: float) -> AcrossCells:
    """The suite-level statistics with their stratified bootstrap intervals (module docstring)."""
    with_iqm = len(cells) >= IQM_CELLS
    rng = np.random.default_rng(seed)
    means, betters, pooled_a, pooled_b = [], [], [], []
    for cell in cells:
        a = replicate_rows(cell.a, cell.a_resampled, resamples)
        b = replicate_rows(cell.b, cell.b_resampled, resamples)
        drawn_a = rng.integers(0, a.shape[1], a.shape)
        drawn_b = drawn_a if cell.paired else rng.integers(0, b.shape[1], b.shape)
        if cell.paired:
            means.append(scaled_mean(a - b, drawn_a))
        else:
            means.append(scaled_mean(a, drawn_a) - scaled_mean(b, drawn_b))
        plain_a, plain_b = np.take_along_axis(a, drawn_a, axis=1), np.take_along_axis(b, drawn_b, axis=1)
        betters.append(improvement(plain_a, plain_b, cell.paired))
        pooled_a.append(plain_a)
        pooled_b.append(plain_b)
    bounds = [100 * alpha / 2, 100 * (1 - alpha / 2)]

    def interval(value: float, draws: np.ndarray) -> Interval:
        low, high = np.percentile(draws, bounds)
        return Interval(float(value), float(low), float(high))

    mean = interval(np.mean([c.a.mean() - c.b.mean() for c in cells]), np.mean(means, axis=0))
    middle = None
    if with_iqm:
        observed = iqm(np.concatenate([c.a for c in cells])) - iqm(np.concatenate([c.b for c in cells]))
        middle = interval(observed, iqm(np.concatenate(pooled_a, axis=1), axis=1)
                          - iqm(np.concatenate(pooled_b, axis=1), axis=1))
    better = interval(np.mean([improvement(c.a, c.b, c.paired) for c in cells]), np.mean(betters, axis=0))
    return AcrossCells(len(cells), mean, middle, better, resamples)


@dataclass(frozen=True)
class RankTest:
    methods: list[str]
    """Best average rank first."""
    ranks: list[float]
    """Average rank over blocks (1: best), in `methods` order."""
    blocks: list[str]
    """The cells the ranks are over (`shared_cells`)."""
    statistic: float | None
    """Friedman's chi-square; None with fewer than 3 methods or 2 blocks."""
    p: float | None
    cd: float | None
    """Nemenyi's critical difference of average ranks at alpha."""
    groups: list[list[str]]
    """Maximal sets of methods (in rank order) whose average ranks lie within CD of each other."""
    left_out: list[str] = field(default_factory=list)
    """Methods that did not run every one of the blocks."""


def shared_cells(cells: dict[str, set[str]]) -> set[str]:
    """The cells a comparison of several rows stands on: those more than half of the rows ran (a
    control on one extra task, or a variant run on one task only, must not shrink every other
    row's comparison to nothing); rows missing one of them are left out of a rank test."""
    counts: dict[str, int] = defaultdict(int)
    for own in cells.values():
        for cell in own:
            counts[cell] += 1
    return {cell for cell, count in counts.items() if count > len(cells) / 2}


def rank_test(scores: dict[str, dict[str, float]], alpha: float) -> RankTest:
    """Friedman's test and Nemenyi's critical difference over the `shared_cells` (blocks) of
    `scores` (method -> block -> mean score), among the methods that ran all of them; higher
    scores rank first, ties share their average rank."""
    blocks = sorted(shared_cells({m: set(cells) for m, cells in scores.items()}))
    methods = [m for m in scores if set(blocks) <= set(scores[m])]
    left_out = [m for m in scores if m not in methods]
    if len(methods) < 3 or len(blocks) < 2:
        ranks = average_ranks(scores, methods, blocks) if blocks else [math.nan] * len(methods)
        return RankTest(methods, ranks, blocks, None, None, None, [], left_out)
    matrix = np.array([[scores[m][block] for m in methods] for block in blocks])
    statistic, p = sps.friedmanchisquare(*matrix.T)
    ranks = average_ranks(scores, methods, blocks)
    k, n = len(methods), len(blocks)
    cd = float(sps.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2) * math.sqrt(k * (k + 1) / (6 * n)))
    order = np.argsort(ranks, kind="stable")
    methods, ranks = [methods[i] for i in order], [ranks[i] for i in order]
    return RankTest(methods, ranks, blocks, float(statistic), float(p), cd, rank_groups(methods, ranks, cd), left_out)


def average_ranks(scores: dict[str, dict[str, float]], methods: list[str], blocks: list[str]) -> list[float]:
    """Per method, its rank among the methods (1: highest score) averaged over the blocks."""
    matrix = np.array([[scores[m][block] for m in methods] for block in blocks])
    return [float(r) for r in sps.rankdata(-matrix, axis=1).mean(axis=0)]


def rank_groups(methods: list[str], ranks: list[float], cd: float) -> list[list[str]]:
    """The critical-difference diagram's bars: maximal runs of consecutive methods (in rank
    order) whose first and last average ranks differ by less than CD."""
    groups: list[list[str]] = []
    for start in range(len(methods)):
        end = start
        while end + 1 < len(methods) and ranks[end + 1] - ranks[start] < cd:
            end += 1
        if end > start and not (groups and methods.index(groups[-1][-1]) >= end):
            groups.append(methods[start:end + 1])
    return groups


def cd_text(test: RankTest) -> str:
    """The critical-difference diagram as text: methods by average rank, and the groups no test
    separates (one line each)."""
    left = (f" Left out, for not running all of those cells: {', '.join(test.left_out)}." if test.left_out else "")
    if test.cd is None:
        return (f"Ranks need 3 methods or more over 2 cells or more that all of them ran "
                f"({len(test.methods)} methods, {len(test.blocks)} such cells): no rank test.{left}")
    lines = [f"Friedman over {len(test.blocks)} cells ({', '.join(test.blocks)}), {len(test.methods)} methods: "
             f"χ² = {test.statistic:.2f}, p = {test.p:.3g}. Nemenyi's critical difference at this α: "
             f"{test.cd:.2f} ranks.{left}", "",
             "Average rank (1 = best): " + ", ".join(f"{m} {r:.2f}" for m, r in zip(test.methods, test.ranks)) + "."]
    if test.groups:
        lines += ["", "Not told apart (average ranks within CD of each other):"]
        lines += [f"- {' — '.join(group)}" for group in test.groups]
    return "\n".join(lines)


def plot_cd(test: RankTest, out, title: str) -> None:
    """Demšar's critical-difference diagram as a PNG: the rank axis (1, the best, on the left), each
    method joined to its average rank from a label outside the axis (the better half on the left,
    the rest on the right), a bar under every group not told apart, and the CD's length above."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.core.results import atomic_write

    k = len(test.methods)
    margin = 0.9 * (k + 1)  # room for the labels on either side, in rank units
    figure, ax = plt.subplots(figsize=(12, 1.6 + 0.3 * k))
    ax.set_xlim(1 - margin, k + margin)
    ax.set_ylim(-(k // 2 + 2 + len(test.groups) * 0.3), 2)
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for rank in range(1, k + 1):
        ax.plot([rank, rank], [0, 0.15], color="black", lw=1)
        ax.text(rank, 0.3, str(rank), ha="center", fontsize=8)
    if test.cd is not None:
        ax.plot([1, 1 + test.cd], [1.2, 1.2], color="black", lw=2)
        ax.text(1 + test.cd / 2, 1.4, f"CD {test.cd:.2f}", ha="center", fontsize=8)
    left = (k + 1) // 2
    for i, (method, rank) in enumerate(zip(test.methods, test.ranks)):
        on_left = i < left
        y = -0.6 - (i if on_left else i - left) * 0.8 - len(test.groups) * 0.3
        end = 0.5 if on_left else k + 0.5
        ax.plot([rank, rank, end], [0, y, y], color="black", lw=0.8)
        ax.text(end - 0.1 if on_left else end + 0.1, y, f"{method} ({rank:.2f})", ha="right" if on_left else "left",
                va="center", fontsize=8)
    for j, group in enumerate(test.groups):
        ranks = [test.ranks[test.methods.index(m)] for m in group]
        y = -0.2 - 0.3 * j
        ax.plot([min(ranks) - 0.03, max(ranks) + 0.03], [y, y], color="tab:red", lw=3)
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    plt.close(figure)
    atomic_write(out, buffer.getvalue())
