"""`bench compare A B`: is the difference between two methods (or leaderboard rows) real, per task?

Per task, the runs of A and B are matched by what they share (seed and few-shot draw, proved
by the fingerprint of the rows they trained on) and tested as bench/studies/inference.py
says: paired differences where the design is paired, Welch where the sides share no unit;
the interval and p hold both the run-to-run variance and the test set's, whose part comes
from a paired bootstrap over test examples here: each resample draws the test split's units
with replacement (an example, or the examples that come together: MultiRC's answer options
of one question, ReCoRD's rows of one query; `resampling_units`), the *same* draws for every
run of both sides (all were scored on the same examples), and recomputes the metric on the
resampled predictions of every run. Its percentile interval of the mean difference (test set
only, draws fixed) is kept as a labelled secondary column.

p-values are Holm-corrected across the table (`compare`: its tasks; `verdict_table`: every
cell of a leaderboard's table), the verdict is `inference.verdict`, and every cell shows its
minimum detectable effect. Across tasks, bench/studies/across.py adds the mean difference, the
IQM and P(A > B) with stratified bootstrap intervals, and for several methods a rank test.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tabulate import tabulate

from bench.core.config import RunConfig
from bench.core.registry import UsageError
from bench.core.results import load_results
from bench.studies.across import AcrossCells, CellSamples, across_cells, cd_text, rank_test, shared_cells
from bench.studies.inference import CellTest, cell_test, holm, mde, verdict
from bench.studies.report import configuration_rows, differing_settings, fmt
from bench.studies.stats import RunScore, Stability, stability
from tasks.base import DataError
from tasks.loading import DataSource, absolute_roots, fingerprint, load_examples
from tasks.metrics import METRICS, MetricFn, binary_ids, metric_function, to_float
from tasks.registry import TASKS

PER_EXAMPLE_MEANS = frozenset({"accuracy", "squad_f1", "squad_em"})
"""Metrics that are the mean of a per-example score: each example is scored once by the metric
itself and a resample is the mean of those scores."""
INDEX_BUDGET = 2_000_000
"""Resample counts held at a time (16 MB): bounds memory on large test sets."""




@dataclass(frozen=True)
class Bootstrap:
    difference: float
    """Observed: mean over A's runs minus mean over B's runs of the metric on the full test split."""
    low: float
    high: float
    p: float


Resampled = Callable[[np.ndarray], np.ndarray]
"""One run's metric on each row of a matrix of resample counts (one column per test example:
how many times the resample drew it)."""


def per_run(metric: str, function: MetricFn, run: list[str], examples: list, labels) -> Resampled:
    """One run's metric on resampled examples, computed from per-example sufficient statistics where
    the metric has them: the mean of per-example scores (accuracy, SQuAD F1/EM), the binary confusion
    counts (F1, F1a, Matthews: sklearn's per-call checks alone cost ~5 ms, minutes per task over
    10,000 resamples), or the sums behind Pearson's r. Every other metric, and a protocol's variant
    of one (the official code's Matthews), is recomputed by its own function on every resample.
    `check_rescored` holds each form to the metric's value on the full split."""
    registered = function is METRICS.get(metric)
    if registered and metric in PER_EXAMPLE_MEANS:
        scores = np.array([function([p], [e], labels) for p, e in zip(run, examples)])
        return lambda counts: counts @ scores / counts.sum(axis=1)
    if registered and metric in ("f1", "f1a", "matthews"):
        gold, pred = binary_ids(run, examples)
        return lambda counts: binary_metric(metric, counts, gold, pred)
    if registered and metric == "pearson":
        gold, pred = np.array([float(e.target) for e in examples]), np.array([to_float(p) for p in run])
        return lambda counts: pearson_rows(counts, gold, pred)
    every = np.arange(len(run))
    return lambda counts: np.array([function([run[i] for i in drawn], [examples[i] for i in drawn], labels)
                                    for drawn in (np.repeat(every, row) for row in counts)])


def binary_metric(metric: str, counts: np.ndarray, gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """F1 of class 1 or Matthews' correlation, × 100, per row of `counts`, from the 0/1 gold and
    predicted ids; 0 where undefined, as sklearn returns (`zero_division=0`, a constant column)."""
    tp, fp, fn = counts @ (gold & pred), counts @ ((1 - gold) & pred), counts @ (gold & (1 - pred))
    tn = counts.sum(axis=1) - tp - fp - fn
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "matthews":
            denominator = np.sqrt((tp + fp).astype(float) * (tp + fn) * (tn + fp) * (tn + fn))
            value = (tp * tn - fp * fn) / denominator
        else:
            denominator = 2 * tp + fp + fn
            value = 2 * tp / denominator
    return 100 * np.where(denominator > 0, value, 0.0)


def pearson_rows(counts: np.ndarray, gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Pearson's r × 100 per row of `counts`, from the weighted moments of the examples drawn (each
    side centred on its full-split mean first, so that the moments do not cancel); 0 where either
    side is constant among the examples drawn (as the metric defines it)."""
    weights = counts / counts.sum(axis=1, keepdims=True)
    x, y = gold - gold.mean(), pred - pred.mean()
    mean_x, mean_y = weights @ x, weights @ y
    var_x, var_y = weights @ x**2 - mean_x**2, weights @ y**2 - mean_y**2
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (weights @ (x * y) - mean_x * mean_y) / np.sqrt(var_x * var_y)
    return 100 * np.where(constant(counts, gold, var_x, x) | constant(counts, pred, var_y, y), 0.0, r)


def constant(counts: np.ndarray, values: np.ndarray, variance: np.ndarray, centred: np.ndarray) -> np.ndarray:
    """Per row of `counts`, whether every example it draws has the same value. The exact test runs
    only on rows whose `variance` (from the moments of the `centred` values) is near 0: rounding
    leaves a constant row's within a few n·ε of its value's square (2e-16 for three examples of
    one value at weights 1/3), far below 1e-9 of the largest square."""
    result = np.zeros(len(counts), dtype=bool)
    rows = np.flatnonzero(variance <= 1e-9 * np.max(centred**2))
    drawn = counts[rows] > 0
    result[rows] = np.where(drawn, values, np.inf).min(axis=1) == np.where(drawn, values, -np.inf).max(axis=1)
    return result


def resampling_units(examples: list) -> np.ndarray:
    """Per test example, the number of the unit a resample draws it with (in order of first
    appearance): the test split's sampled items, which a resample must draw whole.

    MultiRC's answer options come by question (their `group`, by which the paper preset also
    splits dev from test), and outside `record_per_query` ReCoRD scores a query once per gold
    answer: rows that follow one another with the same input and scoring context, as a task's
    `format` expands one row. Drawn one by one, their rows would count as independent evidence
    and narrow the interval. Every other example is a unit of its own, a repeated one too
    (SQuAD asks some questions twice, each scored on its own)."""
    keys = []
    for i, example in enumerate(examples):
        if "group" in example.extra:
            keys.append(("group", example.extra["group"]))
        elif i and (example.source, example.extra) == (examples[i - 1].source, examples[i - 1].extra):
            keys.append(keys[-1])
        else:
            keys.append(("example", i))
    numbers: dict = {}
    return np.array([numbers.setdefault(key, len(numbers)) for key in keys])


def resample_counts(rng: np.random.Generator, units: np.ndarray, resamples: int) -> Iterator[np.ndarray]:
    """Resamples in chunks of at most INDEX_BUDGET counts: per resample (a row), how many times it
    drew each test example, i.e. its unit, drawing as many units as the split has. Where every
    example is its own unit (most tasks), a row counts n example indices drawn with replacement."""
    size = int(units.max()) + 1
    chunk = max(1, INDEX_BUDGET // len(units))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        drawn = rng.integers(0, size, size=(rows, size)) + size * np.arange(rows)[:, None]
        yield np.bincount(drawn.ravel(), minlength=rows * size).reshape(rows, size).take(units, axis=1)


def whole_split(n: int) -> np.ndarray:
    """The full test split as one resample: every example counted once."""
    return np.ones((1, n), dtype=int)


class Side:
    """One side of a comparison: a leaderboard row's runs of one task, and its metric on resampled
    test examples (the mean over the runs)."""

    def __init__(self, results: list[dict], task: str, examples: list, protocol):
        self.task = TASKS.get(task)
        self.metric = self.task.report_metric
        self.examples = examples
        function = metric_function(self.metric, protocol)
        self.runs = [per_run(self.metric, function, result["predictions"][task], examples, self.task.labels)
                     for result in results]

    def per_run(self, counts: np.ndarray) -> np.ndarray:
        """[runs, resamples]: each run's metric on each row of `counts` (one resample per row)."""
        return np.array([run(counts) for run in self.runs])

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        """The mean over runs of the metric on each row of `counts`."""
        return self.per_run(counts).mean(axis=0)


def replicate_scores(a: Side, b: Side, resamples: int, seed) -> tuple[np.ndarray, np.ndarray]:
    """([R, runs of A], [R, runs of B]): every run's metric on the same R resamples of the test
    split's units (`seed`: an int or a SeedSequence, for repeatability)."""
    rng = np.random.default_rng(seed)
    chunks = [(a.per_run(counts), b.per_run(counts))
              for counts in resample_counts(rng, resampling_units(a.examples), resamples)]
    return np.concatenate([x for x, _ in chunks], axis=1).T, np.concatenate([y for _, y in chunks], axis=1).T


def bootstrap_summary(observed: float, d: np.ndarray, alpha: float) -> Bootstrap:
    """The percentile interval of the resampled differences `d` and the two-sided p,
    2·min(P(d* ≤ 0), P(d* ≥ 0)) with the Monte Carlo +1 correction ((count + 1) / (R + 1), never
    0: with R resamples the smallest p is 2/(R + 1)), capped at 1."""
    below, above = (np.sum(d <= 0) + 1) / (len(d) + 1), (np.sum(d >= 0) + 1) / (len(d) + 1)
    low, high = np.percentile(d, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Bootstrap(observed, float(low), float(high), float(min(1.0, 2 * min(below, above))))


def rebased(results: list[dict], data_dir: str | None) -> list[dict]:
    """`results` reading their official files from `data_dir` (`--data-dir`: where they lie on this
    machine) instead of the absolute folders they record, so that a board copied to another machine
    rescores; each test split is still checked against its recorded fingerprint."""
    if not data_dir:
        return results
    roots = absolute_roots(data_dir)
    return [{**result, "config": {**result["config"], "data_dir": roots}} for result in results]


def scored_examples(result: dict, task: str) -> list:
    """The test examples a run was scored on: its data source, protocol, split seed and caps,
    checked against the fingerprint it recorded (else its predictions would be scored against
    other gold labels). Official files missing from the recorded folder are refused with the way
    out: `--data-dir`."""
    config = RunConfig.from_dict(result)
    kind = result["data"][task]["source"]["kind"]
    source = DataSource("dir", config.data_dir) if kind == "dir" else DataSource(kind)
    try:
        examples = load_examples(TASKS.get(task), "test", source, config.protocol, config.data_seed, config.k_shot)
    except DataError as error:
        if kind != "dir":
            raise
        raise UsageError(f"{error} (the runs read {task} from {config.data_dir}: where the official files lie "
                         "elsewhere on this machine, pass --data-dir DIR[:DIR...])") from None
    if config.train.max_eval_examples:
        examples = examples[: config.train.max_eval_examples]
    recorded = result["data"][task]["fingerprints"]["test"]
    if fingerprint(examples) != recorded:
        where = config.data_dir if kind == "dir" else kind
        raise UsageError(f"the {task} test data ({where}) differ from those the runs were scored on (fingerprint "
                         f"{fingerprint(examples)} now, {recorded} recorded): cannot rescore their predictions")
    return examples


def scored_fingerprints(runs: list[dict], task: str) -> list[str]:
    """The distinct fingerprints (sorted) of the test examples `runs` were scored on: pairing runs
    example by example needs one, the same on both sides."""
    return sorted({run["data"][task]["fingerprints"]["test"] for run in runs})


def check_rescored(name: str, side: Side, runs: list[dict]) -> None:
    """The bootstrap rescores recorded predictions: on the whole test split they must give the
    recorded score, else it would test a difference other than the one the table shows (another
    metric variant, predictions of another split)."""
    recorded = float(np.mean([run["test"][side.task.name]["metrics"][side.metric] for run in runs]))
    rescored = float(side.resampled(whole_split(len(side.examples)))[0])
    if abs(rescored - recorded) > 1e-6:
        raise UsageError(f"{name}: its {side.task.name} predictions rescore to {side.metric} {rescored:.4f}, its results "
                         f"record {recorded:.4f}: cannot bootstrap predictions that do not give the recorded score")


def select_row(results: list[dict], name: str, directory: Path, per_task: tuple[str, ...] = ()) -> list[dict]:
    """The one leaderboard row that `name` names in a results folder: a method, or a
    configuration (the folder name of its runs, or its first characters); `per_task` options
    may differ between a row's tasks, as on the leaderboard (a leave-one-out design's row)."""
    rows = configuration_rows(results, per_task)
    named = [row for row in rows if row[0]["run"]["method"] == name
             or any(r["run"]["configuration"].startswith(name) for r in row)]
    if not named:
        methods = sorted({r["run"]["method"] for r in results})
        raise UsageError(f"no results of {name!r} in {directory}; methods there: {', '.join(methods) or 'none'} "
                         "(or name a configuration folder)")
    if len(named) > 1:
        labels = differing_settings(named, per_task)
        choices = "; ".join(f"{row[0]['run']['configuration']} ({label or row[0]['run']['backbone']})"
                            for row, label in zip(named, labels))
        raise UsageError(f"{name!r} names {len(named)} leaderboard rows in {directory}; name one by a configuration "
                         f"folder instead: {choices}")
    return named[0]



def run_units(results: list[dict], task: str) -> dict[tuple[int, int], dict]:
    """A side's runs of `task` by unit: (seed, few-shot draw)."""
    return {(r["run"]["seed"], r["run"]["draw"]): r for r in results if task in r["test"]}


def matched(runs_a: dict, runs_b: dict, task: str) -> list[tuple[dict, dict]]:
    """The pairs of runs that share a unit: the same seed and draw, trained on rows of the same
    fingerprint (the same draw of another data source is no pair)."""
    rows = lambda result: result["data"][task]["fingerprints"]["train"]
    return [(runs_a[unit], runs_b[unit]) for unit in sorted(runs_a.keys() & runs_b.keys())
            if rows(runs_a[unit]) == rows(runs_b[unit])]


def score_of(result: dict, task: str) -> float:
    return result["test"][task]["metrics"][TASKS.get(task).report_metric]


def task_stability(row: list[dict], task: str) -> Stability:
    """A side's runs of `task` (all of them, matched or not), as its table cell shows them."""
    return stability([RunScore(score_of(r, task), None) for r in row if task in r["test"]])


@dataclass(frozen=True)
class TaskComparison:
    task: str
    metric: str
    a: Stability
    b: Stability
    """Each side's runs of the task (all of them, matched or not)."""
    test: CellTest
    p_holm: float | None
    mde: float | None
    """Minimum detectable effect (power 0.8) at α / the number of cells tested; None where untested."""
    test_only: Bootstrap | None
    """The paired bootstrap over test examples alone (draws held fixed): a secondary column."""
    verdict: str
    unmatched: tuple[int, int] = (0, 0)
    """Runs of A and of B that found no partner and are left out of a paired test."""


@dataclass(frozen=True)
class Comparison:
    names: tuple[str, str]
    alpha: float
    resamples: int
    seed: int
    tasks: list[TaskComparison]
    bootstrap: bool
    """Whether both sides recorded per-example predictions (else no test-set variance anywhere)."""
    notes: list[str]
    across: AcrossCells | None = None
    """Over the tasks, where there are two or more."""


@dataclass
class Cell:
    """One task's comparison before the table's correction: its test and what the suite-level
    bootstrap resamples."""
    task: str
    test: CellTest
    test_only: Bootstrap | None
    samples: CellSamples
    unmatched: tuple[int, int]
    notes: list[str] = field(default_factory=list)


def compare_cell(row_a: list[dict], row_b: list[dict], task: str, names: tuple[str, str], alpha: float,
                 resamples: int, seed: int) -> Cell:
    """The task's runs matched into units, their test, and the test-set variance from the paired
    bootstrap where every run used recorded its predictions on one test split."""
    units_a, units_b = run_units(row_a, task), run_units(row_b, task)
    pairs = matched(units_a, units_b, task)
    runs_a, runs_b = ([a for a, _ in pairs], [b for _, b in pairs]) if pairs else (list(units_a.values()),
                                                                                  list(units_b.values()))
    unmatched = (len(units_a) - len(pairs), len(units_b) - len(pairs)) if pairs else (0, 0)
    notes = []
    if any(unmatched):
        notes.append(f"{task}: {unmatched[0]} run(s) of {names[0]} and {unmatched[1]} of {names[1]} share no unit "
                     "(seed, draw, training rows) with the other side: left out of the paired test")
    a = np.array([score_of(r, task) for r in runs_a])
    b = np.array([score_of(r, task) for r in runs_b])
    replicates, test_only, var_test = None, None, None
    fingerprints = scored_fingerprints(runs_a + runs_b, task)
    if all("predictions" in r for r in runs_a + runs_b):
        if len(fingerprints) > 1:
            notes.append(f"{task}: the runs were not all scored on the same test examples (fingerprints "
                         f"{', '.join(fingerprints)}): no test-set resampling; the interval holds the units' "
                         "variance alone")
        else:
            examples = scored_examples(runs_a[0], task)
            sides = [Side(runs, task, examples, RunConfig.from_dict(runs[0]).protocol) for runs in (runs_a, runs_b)]
            for name, side, runs in zip(names, sides, (runs_a, runs_b)):
                check_rescored(name, side, runs)
            replicates = replicate_scores(*sides, resamples, split_seed(seed, fingerprints[0]))
            differences = replicates[0].mean(axis=1) - replicates[1].mean(axis=1)
            test_only = bootstrap_summary(float(a.mean() - b.mean()), differences, alpha)
            var_test = float(np.var(differences, ddof=1))
    test = cell_test(a, b, bool(pairs), var_test, alpha)
    samples = CellSamples(bool(pairs), a, b, *(replicates or (None, None)))
    return Cell(task, test, test_only, samples, unmatched, notes)


def split_seed(seed: int, test_fingerprint: str) -> np.random.SeedSequence:
    """The test-set resamples' seed: one stream per test split, so that cells scored on one split
    (a task at two k) share their resamples and cells on other splits do not."""
    return np.random.SeedSequence([seed, int(test_fingerprint[:8], 16)])


def finish_cells(cells: list[Cell], alpha: float) -> list[tuple[Cell, float | None, float | None, str]]:
    """Holm over the cells tested, each cell's MDE at α / that many, and its verdict."""
    corrected = holm([cell.test.p for cell in cells])
    tested = sum(p is not None for p in corrected)
    return [(cell, p, mde(cell.test, alpha, tested), verdict(cell.test, p, alpha)) for cell, p in zip(cells, corrected)]


def compare(row_a: list[dict], row_b: list[dict], names: tuple[str, str], alpha: float = 0.05,
            resamples: int = 10_000, seed: int = 0) -> Comparison:
    """Per task both rows ran: the test, Holm-corrected over the tasks, the MDE and the verdict;
    over the tasks, the suite-level statistics; plus notes on what could not be tested."""
    from bench.studies.plots import task_order

    tasks = task_order({t for r in row_a for t in r["test"]} & {t for r in row_b for t in r["test"]})
    if not tasks:
        raise UsageError(f"{names[0]} ran {', '.join(sorted({t for r in row_a for t in r['test']}))}, {names[1]} ran "
                         f"{', '.join(sorted({t for r in row_b for t in r['test']}))}: no task in common to compare")
    notes = []
    without = [name for name, row in zip(names, (row_a, row_b)) if any("predictions" not in r for r in row)]
    if without:
        notes.append(f"no per-example predictions in the results of {' and '.join(without)} (made before they were "
                     "recorded): no test-set resampling; intervals hold the units' variance alone")
    cells = [compare_cell(row_a, row_b, task, names, alpha, resamples, seed) for task in tasks]
    comparisons = []
    for cell, p, effect, called in finish_cells(cells, alpha):
        notes += cell.notes
        comparisons.append(TaskComparison(cell.task, TASKS.get(cell.task).report_metric,
                                          task_stability(row_a, cell.task), task_stability(row_b, cell.task),
                                          cell.test, p, effect, cell.test_only, called, cell.unmatched))
    across = across_cells([c.samples for c in cells], resamples, seed, alpha) if len(cells) > 1 else None
    return Comparison(names, alpha, resamples, seed, comparisons, not without, notes, across)


def p_text(p: float | None) -> str:
    return "–" if p is None else f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def interval_text(low: float | None, high: float | None) -> str:
    return "–" if low is None else f"[{low:+.2f}, {high:+.2f}]"


def units_text(test: CellTest) -> str:
    """How many units the cell's test stands on: `3 pairs`, or `3 vs 2 runs` (unpaired)."""
    return f"{test.n} pair{'s' * (test.n != 1)}" if test.design == "paired" else f"{test.n} vs {test.n_b} runs"


def mde_text(effect: float | None) -> str:
    """The MDE to one decimal; beyond 100 points (nothing a 0-100 score can show) as `> 100`."""
    return "–" if effect is None else "> 100" if effect > 100 else f"{effect:.1f}"


def interval_label(test: CellTest) -> str:
    """The main interval, with what it holds where that is less than both sources."""
    text = interval_text(test.low, test.high)
    if test.low is None:
        return text
    if test.var_test is None:
        return text + " (units only)"
    if test.var_units is None:
        return text + " (test set only)"
    return text


VERDICT_RULE = ("A verdict names a winner only where at least 2 units a side are matched (2 runs a side where "
                "unpaired), the units spread, and the Holm-corrected p is below α (bench/studies/inference.py)")


def design_text(alpha: float) -> str:
    """What every verdict table's columns mean, written once."""
    return (f"Units: runs of both sides on the same seed and few-shot draw (same training rows) are a pair and the "
            f"test is on their differences; sides that share no unit are compared by Welch's t. Interval: "
            f"{100 * (1 - alpha):g}% for A − B, Δ ± t·SE, the SE holding the run-to-run variance and the test set's "
            f"(hierarchical bootstrap: units, then test examples); p: that t, two-sided, and Holm-corrected over the "
            f"table. MDE: the smallest difference this design detects with power 0.8 at α / (cells tested), so a "
            f"null reads \"no difference larger than the MDE\". {VERDICT_RULE}.")


def markdown(comparison: Comparison) -> str:
    names, alpha = comparison.names, comparison.alpha
    headers = ["task", "metric", f"A: {names[0]}", f"B: {names[1]}", "units", "A − B",
               f"{100 * (1 - alpha):g}% CI", "p", "p Holm", "MDE", f"verdict (α = {alpha:g})"]
    table, beside = [], []
    for c in comparison.tasks:
        t = c.test
        table.append([c.task, c.metric, f"{fmt(c.a)} (n={c.a.n})", f"{fmt(c.b)} (n={c.b.n})", units_text(t),
                      signed(t.difference), interval_label(t), p_text(t.p), p_text(c.p_holm), mde_text(c.mde),
                      c.verdict])
        beside.append([c.task, p_text(t.units_p), p_text(t.sign_flip_p),
                       "–" if t.sign_flip_p is None else p_text(2 / 2**t.n),
                       "–" if c.test_only is None else f"{interval_text(c.test_only.low, c.test_only.high)}, p "
                                                       f"{p_text(c.test_only.p)}"])
    intro = f"# {names[0]} (A) against {names[1]} (B)\n\n{design_text(alpha)}"
    beside_headers = ["task", "t over units alone p", "sign-flip p (exact)", "smallest sign-flip p",
                      f"test set only: bootstrap {100 * (1 - alpha):g}% CI ({comparison.resamples} resamples, seed "
                      f"{comparison.seed})"]
    parts = [intro, tabulate(table, headers, tablefmt="github", disable_numparse=True),
             "Beside the verdict, not part of it: the t over units alone (no test-set variance), the exact sign-flip "
             "permutation p over the paired differences (its smallest possible value, 2/2^n, is what n can ever "
             "show), and the bootstrap over test examples alone (draws held fixed).",
             tabulate(beside, beside_headers, tablefmt="github", disable_numparse=True)]
    if comparison.across:
        parts.append(across_text(comparison.across, names, alpha))
    return "\n\n".join([*parts, *[f"Note: {note}." for note in comparison.notes]]) + "\n"


def across_text(across: AcrossCells, names: tuple[str, str], alpha: float) -> str:
    """The suite-level line: mean difference, IQM difference and P(A > B) with their intervals."""
    level = f"{100 * (1 - alpha):g}%"
    parts = [f"mean A − B {across.mean.value:+.2f} [{across.mean.low:+.2f}, {across.mean.high:+.2f}]"]
    if across.iqm:
        parts.append(f"IQM(A) − IQM(B) {across.iqm.value:+.2f} [{across.iqm.low:+.2f}, {across.iqm.high:+.2f}]")
    parts.append(f"P({names[0]} > {names[1]}) {across.improvement.value:.2f} "
                 f"[{across.improvement.low:.2f}, {across.improvement.high:.2f}]")
    return (f"Across the {across.cells} cells ({level} stratified bootstrap intervals, {across.resamples} resamples: "
            f"units within each cell, with its test-set resamples): " + "; ".join(parts) + ".")


def load_folders(folders: list[str], skip_unreadable: bool) -> dict[str, list[dict]]:
    """Each distinct folder's results, read once (a skipped file is named once)."""
    loaded = {}
    for folder in dict.fromkeys(folders):
        if not Path(folder).is_dir():
            raise UsageError(f"results directory {folder!r} does not exist")
        loaded[folder] = load_results(Path(folder), skip_unreadable=skip_unreadable)[0]
    return loaded


def compare_command(a: str, b: str, folders: list[str] | None, alpha: float, resamples: int, seed: int,
                    as_json: bool, skip_unreadable: bool = False, per_task: tuple[str, ...] = (),
                    data_dir: str | None = None) -> str:
    """`bench compare A B [--results DIR | --results DIR_A --results DIR_B]`: A and B from one
    results folder (default `runs`), or A from the first folder and B from the second; their test
    splits re-read from `data_dir` where given (`rebased`)."""
    folders = folders or ["runs"]
    if len(folders) > 2:
        raise UsageError(f"--results takes one folder (A and B in it) or two (A's, then B's), not {len(folders)}")
    if resamples < 1:
        raise UsageError(f"--resamples takes a positive number of resamples (e.g. 10000), not {resamples}")
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha takes a level between 0 and 1 (e.g. 0.05), not {alpha:g}")
    loaded = {folder: rebased(results, data_dir) for folder, results in load_folders(folders, skip_unreadable).items()}
    sides = zip((a, b), folders * (3 - len(folders)))
    rows = [select_row(loaded[folder], name, Path(folder), per_task) for name, folder in sides]
    if rows[0] == rows[1]:
        raise UsageError(f"{a!r} and {b!r} name the same row of {folders[0]}: nothing to compare")
    comparison = compare(rows[0], rows[1], (a, b), alpha, resamples, seed)
    if as_json:
        return json.dumps(asdict(comparison), indent=2) + "\n"
    return markdown(comparison)


@dataclass(frozen=True)
class BoardCell:
    task: str
    k: int
    name: str
    """The row's label: its method, and its differing settings in brackets."""
    method: str
    a: Stability
    b: Stability
    cell: Cell


def board_cells(results: list[dict], reference: str, per_task: tuple[str, ...], alpha: float, resamples: int,
                seed: int) -> tuple[list[BoardCell], set[str]]:
    """Every row's cells against the reference row of the same few-shot setting."""
    rows = configuration_rows(results, per_task)
    references = defaultdict(list)
    for row in rows:
        if row[0]["run"]["method"] == reference:
            references[row[0]["run"]["k_shot"]].append(row)
    if not references:
        methods = sorted({r["run"]["method"] for r in results})
        raise UsageError(f"--compare-to {reference}: no results of {reference!r}; methods there: {', '.join(methods)}")
    cells, notes, untested = [], set(), []
    for row, label in zip(rows, differing_settings(rows, per_task)):
        run = row[0]["run"]
        method, k = run["method"], run["k_shot"]
        if method == reference:
            continue
        if k not in references:
            untested.append(f"{method} ({f'k={k}' if k else 'full'})")
            continue
        if len(references[k]) > 1:
            raise UsageError(f"--compare-to {reference}: {len(references[k])} rows of {reference} at k={k}; "
                             "keep one configuration of it in the folder")
        name = method + (f" ({label})" if label else "")
        base = references[k][0]
        for task in sorted({t for r in row for t in r["test"]} & {t for r in base for t in r["test"]}):
            cell = compare_cell(row, base, task, (name, reference), alpha, resamples, seed)
            notes.update(cell.notes)
            cells.append(BoardCell(task, k, name, method, task_stability(row, task), task_stability(base, task), cell))
    if untested:
        notes.add(f"not tested, no {reference} row at their setting: {', '.join(sorted(set(untested)))}")
    cells.sort(key=lambda c: (c.task, c.k, c.name))
    return cells, notes


def verdict_table(results: list[dict], reference: str, per_task: tuple[str, ...] = (), alpha: float = 0.05,
                  resamples: int = 10_000, seed: int = 0, cd_plot: Path | None = None) -> str:
    """`bench leaderboard --compare-to pt`: every other row against the `reference` method's row of
    the same few-shot setting, per task, as `bench compare` tests it, but Holm-corrected across
    the whole table: a board with forty cells would otherwise call two of them by chance. Then,
    per row, the suite-level statistics over its cells, and the rank test over every row."""
    cells, notes = board_cells(results, reference, per_task, alpha, resamples, seed)
    finished = finish_cells([c.cell for c in cells], alpha)
    table = []
    for board, (cell, p, effect, called) in zip(cells, finished):
        t = cell.test
        called = {"A better": f"{board.method} better", "B better": f"{reference} better"}.get(called, called)
        table.append([board.task, f"k={board.k}" if board.k else "full", board.name, units_text(t),
                      f"{fmt(board.a)}", f"{fmt(board.b)}", signed(t.difference), interval_label(t), p_text(t.p),
                      p_text(p), mde_text(effect), called])
    headers = ["task", "setting", "method", "units", "score", reference, "Δ", f"{100 * (1 - alpha):g}% CI", "p",
               "p Holm", "MDE", f"verdict (α = {alpha:g})"]
    tested = sum(p is not None for _, p, _, _ in finished)
    intro = (f"## Against {reference}\n\nEach row against {reference}'s row of the same setting, task by task "
             f"(`bench compare`; {tested} of {len(cells)} cells tested, Holm over those). {design_text(alpha)}")
    parts = [intro, tabulate(table, headers, tablefmt="github", disable_numparse=True)]
    parts.append(suite_section(cells, reference, alpha, resamples, seed))
    parts.append(ranks_section(cells, reference, alpha, cd_plot))
    return "\n\n".join([*parts, *[f"Note: {note}." for note in sorted(notes)]]) + "\n"


def block(cell: BoardCell) -> str:
    """A cell's place on the board, as the suite-level and rank sections name it: `rte k=16`."""
    return f"{cell.task} k={cell.k}" if cell.k else cell.task


def suite_section(cells: list[BoardCell], reference: str, alpha: float, resamples: int, seed: int) -> str:
    """Per row: the mean difference over its cells, the IQM difference where cells are many, and
    P(row > reference), with stratified bootstrap intervals. Over the `shared_cells` where there
    are two or more (so that rows are compared on the same cells; a control on one extra task does
    not move another row's numbers), else over each row's own cells."""
    by_name: dict[str, list[BoardCell]] = defaultdict(list)
    for cell in cells:
        by_name[cell.name].append(cell)
    common = shared_cells({name: {block(c) for c in own} for name, own in by_name.items()})
    if len(common) >= 2:
        by_name = {name: [c for c in own if block(c) in common] for name, own in by_name.items()}
    which = (f"the cells more than half of the rows ran ({', '.join(sorted(common))}), those of them each row ran"
             if len(common) >= 2 else "each row's own cells (no two cells are run by more than half of the rows)")
    table = []
    for name, own in sorted(by_name.items()):
        if len(own) < 2:
            continue
        across = across_cells([c.cell.samples for c in own], resamples, seed, alpha)
        interval = lambda i: "–" if i is None else f"{i.value:+.2f} [{i.low:+.2f}, {i.high:+.2f}]"
        single = sum(min(c.cell.test.n, c.cell.test.n_b) < 2 for c in own)
        table.append([name, f"{across.cells}" + (f" ({single} single-run)" if single else ""), interval(across.mean),
                      interval(across.iqm),
                      f"{across.improvement.value:.2f} [{across.improvement.low:.2f}, {across.improvement.high:.2f}]"])
    if not table:
        return f"### Across cells\n\nNo row has two cells or more against {reference}: no suite-level comparison."
    level = f"{100 * (1 - alpha):g}%"
    headers = ["method", "cells", f"mean Δ ({level} CI)", f"IQM Δ ({level} CI)",
               f"P(method > {reference}) ({level} CI)"]
    return (f"### Across cells\n\nPer row over {which}: the mean of the cells' differences, "
            f"the IQM of its run scores minus {reference}'s (from 5 cells on) and the probability that a run of it "
            f"beats {reference}'s run of the same unit, each with a stratified bootstrap interval ({resamples} "
            f"resamples: units within each cell, with the cell's test-set resamples). A single-run cell (one run a "
            f"side) adds no run-to-run variance, which it cannot estimate: its part of the interval is the test "
            f"set's alone.\n\n"
            + tabulate(table, headers, tablefmt="github", disable_numparse=True))


def ranks_section(cells: list[BoardCell], reference: str, alpha: float, cd_plot: Path | None) -> str:
    """Friedman and Nemenyi over every row (the reference included) on the cells all of them ran."""
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    for cell in cells:
        scores[cell.name][block(cell)] = cell.a.mean
        scores[reference][block(cell)] = cell.b.mean
    test = rank_test(dict(scores), alpha)
    if cd_plot is not None:
        from bench.studies.across import plot_cd

        if test.cd is None:
            raise UsageError(f"--cd-plot: {cd_text(test)}")
        plot_cd(test, cd_plot, f"critical difference (Nemenyi, α = {alpha:g}) over {len(test.blocks)} cells")
    return f"### Ranks\n\n{cd_text(test)}"
