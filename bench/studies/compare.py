"""`bench compare A B`: is the difference between two methods (or leaderboard rows) real, per task?

Two tests, because a difference can be noise of two kinds:
- **Welch's t-test over runs** (seeds × draws): is the gap larger than the spread that
  training instability alone produces? Unequal variances allowed (one method may be
  far less stable than the other), Welch–Satterthwaite degrees of freedom.
- **A paired bootstrap over test examples**: would the gap survive another test set
  from the same distribution? Each resample draws the test split's units with
  replacement (an example, or the examples that come together: MultiRC's answer
  options of one question, ReCoRD's rows of one query; `resampling_units`), the
  *same* draws for both sides (paired: both were scored on the same examples),
  recomputes the metric on the resampled predictions of every run, and takes the
  difference of the means over runs. Two-sided p:
  2·min(P(d* ≤ 0), P(d* ≥ 0)) with the Monte Carlo +1 correction ((count + 1) /
  (R + 1), never 0: with R resamples the smallest p is 2/(R + 1)), capped at 1; the
  confidence interval of the difference is the percentile interval of d*.
p-values are Holm-corrected across tasks (one family per test), and the verdict
names a winner only where every test that could run rejects at alpha: a gap that
is significant over seeds but not over test examples (or the reverse) is not
called.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from scipy import stats as sps
from tabulate import tabulate

from bench.core.config import RunConfig
from bench.core.registry import UsageError
from bench.core.results import load_results
from bench.studies.report import configuration_rows, differing_settings, fmt
from bench.studies.stats import Stability, run_scores, stability
from tasks.loading import DataSource, fingerprint, load_examples
from tasks.metrics import METRICS, MetricFn, binary_ids, metric_function, to_float
from tasks.registry import TASKS

PER_EXAMPLE_MEANS = frozenset({"accuracy", "squad_f1", "squad_em"})
"""Metrics that are the mean of a per-example score: each example is scored once by the metric
itself and a resample is the mean of those scores."""
INDEX_BUDGET = 2_000_000
"""Resample counts held at a time (16 MB): bounds memory on large test sets."""


@dataclass(frozen=True)
class Welch:
    t: float
    df: float
    p: float


def welch(a: list[float], b: list[float]) -> Welch | None:
    """Welch's unequal-variance t-test, two-sided; None where a side has fewer than two runs or
    neither varies (the statistic is then undefined)."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    if va + vb == 0:
        return None
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return Welch(float(t), float(df), float(2 * sps.t.sf(abs(t), df)))


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

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        """The mean over runs of the metric on each row of `counts` (one resample per row)."""
        return np.mean([run(counts) for run in self.runs], axis=0)


def paired_bootstrap(a: Side, b: Side, resamples: int, seed: int, alpha: float) -> Bootstrap:
    """The paired bootstrap over the test split's units (module docstring); `seed` makes it repeatable."""
    everything = whole_split(len(a.examples))
    observed = float(a.resampled(everything)[0] - b.resampled(everything)[0])
    rng = np.random.default_rng(seed)
    d = np.concatenate([a.resampled(counts) - b.resampled(counts)
                        for counts in resample_counts(rng, resampling_units(a.examples), resamples)])
    below, above = (np.sum(d <= 0) + 1) / (resamples + 1), (np.sum(d >= 0) + 1) / (resamples + 1)
    low, high = np.percentile(d, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Bootstrap(observed, float(low), float(high), float(min(1.0, 2 * min(below, above))))


def scored_examples(result: dict, task: str) -> list:
    """The test examples a run was scored on: its data source, protocol, split seed and caps,
    checked against the fingerprint it recorded (else its predictions would be scored against
    other gold labels)."""
    config = RunConfig.from_dict(result)
    kind = result["data"][task]["source"]["kind"]
    source = DataSource("dir", config.data_dir) if kind == "dir" else DataSource(kind)
    examples = load_examples(TASKS.get(task), "test", source, config.protocol, config.data_seed)
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


def select_row(results: list[dict], name: str, directory: Path) -> list[dict]:
    """The one leaderboard row that `name` names in a results folder: a method, or a
    configuration (the folder name of its runs, or its first characters)."""
    rows = configuration_rows(results)
    named = [row for row in rows if row[0]["run"]["method"] == name
             or any(r["run"]["configuration"].startswith(name) for r in row)]
    if not named:
        methods = sorted({r["run"]["method"] for r in results})
        raise UsageError(f"no results of {name!r} in {directory}; methods there: {', '.join(methods) or 'none'} "
                         "(or name a configuration folder)")
    if len(named) > 1:
        labels = differing_settings(named)
        choices = "; ".join(f"{row[0]['run']['configuration']} ({label or row[0]['run']['backbone']})"
                            for row, label in zip(named, labels))
        raise UsageError(f"{name!r} names {len(named)} leaderboard rows in {directory}; name one by a configuration "
                         f"folder instead: {choices}")
    return named[0]


@dataclass(frozen=True)
class TaskComparison:
    task: str
    metric: str
    a: Stability
    b: Stability
    difference: float
    """Mean over A's runs minus mean over B's runs."""
    welch: Welch | None
    welch_holm: float | None
    bootstrap: Bootstrap | None
    bootstrap_holm: float | None
    verdict: str


@dataclass(frozen=True)
class Comparison:
    names: tuple[str, str]
    alpha: float
    resamples: int
    seed: int
    tasks: list[TaskComparison]
    bootstrap: bool
    """Whether both sides recorded per-example predictions (else no bootstrap column at all)."""
    notes: list[str]


def compare(row_a: list[dict], row_b: list[dict], names: tuple[str, str], alpha: float = 0.05,
            resamples: int = 10_000, seed: int = 0) -> Comparison:
    """Per task both rows ran: the two tests, Holm-corrected, and the verdict; plus notes on
    what could not be tested."""
    from bench.studies.plots import task_order

    scores_a, scores_b = run_scores(row_a), run_scores(row_b)
    tasks = task_order(set(scores_a) & set(scores_b))
    if not tasks:
        raise UsageError(f"{names[0]} ran {', '.join(sorted(scores_a))}, {names[1]} ran {', '.join(sorted(scores_b))}: "
                         "no task in common to compare")
    notes = []
    without = [name for name, row in zip(names, (row_a, row_b)) if any("predictions" not in r for r in row)]
    if without:
        notes.append(f"no per-example predictions in the results of {' and '.join(without)} (made before they were "
                     "recorded): no paired bootstrap")
    welch_tests, bootstraps = [], []
    for task in tasks:
        welch_tests.append(welch([s.score for s in scores_a[task].values()], [s.score for s in scores_b[task].values()]))
        runs_a, runs_b = [r for r in row_a if task in r["test"]], [r for r in row_b if task in r["test"]]
        test_a, test_b = scored_fingerprints(runs_a, task), scored_fingerprints(runs_b, task)
        if without:
            bootstraps.append(None)
        elif test_a != test_b or len(test_a) > 1:
            notes.append(f"{task}: the runs were not all scored on the same test examples (fingerprints A "
                         f"{', '.join(test_a)}, B {', '.join(test_b)}): no paired bootstrap")
            bootstraps.append(None)
        else:
            examples = scored_examples(runs_a[0], task)
            sides = [Side(runs, task, examples, RunConfig.from_dict(runs[0]).protocol) for runs in (runs_a, runs_b)]
            for name, side, runs in zip(names, sides, (runs_a, runs_b)):
                check_rescored(name, side, runs)
            bootstraps.append(paired_bootstrap(*sides, resamples, seed, alpha))
    if any(w is None for w in welch_tests):
        notes.append("Welch's t needs two runs or more on each side, and some spread: – where it could not run")
    welch_holm = holm([w.p if w else None for w in welch_tests])
    bootstrap_holm = holm([b.p if b else None for b in bootstraps])
    comparisons = []
    for i, task in enumerate(tasks):
        a, b = stability(list(scores_a[task].values())), stability(list(scores_b[task].values()))
        difference = a.mean - b.mean
        comparisons.append(TaskComparison(task, TASKS.get(task).report_metric, a, b, difference, welch_tests[i],
                                          welch_holm[i], bootstraps[i], bootstrap_holm[i],
                                          verdict(difference, (welch_holm[i], bootstrap_holm[i]), alpha)))
    return Comparison(names, alpha, resamples, seed, comparisons, not without, notes)


def verdict(difference: float, pvalues: tuple[float | None, ...], alpha: float) -> str:
    """A winner only where every test that ran rejects at alpha (and the means differ)."""
    tested = [p for p in pvalues if p is not None]
    if not tested:
        return "untested"
    if all(p < alpha for p in tested) and difference:
        return "A better" if difference > 0 else "B better"
    return "no significant difference"


def p_text(p: float | None) -> str:
    return "–" if p is None else f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def markdown(comparison: Comparison) -> str:
    names, alpha = comparison.names, comparison.alpha
    headers = ["task", "metric", f"A: {names[0]}", f"B: {names[1]}", "A − B", "Welch t", "df", "p", "p Holm"]
    if comparison.bootstrap:
        headers += [f"bootstrap {100 * (1 - alpha):g}% CI", "p", "p Holm"]
    headers.append(f"verdict (α = {alpha:g})")
    table = []
    for c in comparison.tasks:
        row = [c.task, c.metric, f"{fmt(c.a)} (n={c.a.n})", f"{fmt(c.b)} (n={c.b.n})", f"{c.difference:+.2f}",
               "–" if c.welch is None else f"{c.welch.t:.2f}", "–" if c.welch is None else f"{c.welch.df:.1f}",
               p_text(c.welch and c.welch.p), p_text(c.welch_holm)]
        if comparison.bootstrap:
            row += ["–" if c.bootstrap is None else f"[{c.bootstrap.low:+.2f}, {c.bootstrap.high:+.2f}]",
                    p_text(c.bootstrap and c.bootstrap.p), p_text(c.bootstrap_holm)]
        table.append([*row, c.verdict])
    intro = (f"# {names[0]} (A) against {names[1]} (B)\n\nCells: mean ± std over runs (seeds × draws). Welch's t over "
             f"runs; paired bootstrap over test examples ({comparison.resamples} resamples, seed {comparison.seed}); "
             f"p two-sided, Holm-corrected across tasks. A verdict names a winner only where every test that ran "
             f"rejects at α = {alpha:g}.")
    return "\n\n".join([intro, tabulate(table, headers, tablefmt="github", disable_numparse=True),
                         *[f"Note: {note}." for note in comparison.notes]]) + "\n"


def compare_command(a: str, b: str, folders: list[str] | None, alpha: float, resamples: int, seed: int,
                    as_json: bool) -> str:
    """`bench compare A B [--results DIR | --results DIR_A --results DIR_B]`: A and B from one
    results folder (default `runs`), or A from the first folder and B from the second."""
    folders = folders or ["runs"]
    if len(folders) > 2:
        raise UsageError(f"--results takes one folder (A and B in it) or two (A's, then B's), not {len(folders)}")
    if resamples < 1:
        raise UsageError(f"--resamples takes a positive number of resamples (e.g. 10000), not {resamples}")
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha takes a level between 0 and 1 (e.g. 0.05), not {alpha:g}")
    rows = []
    for name, folder in zip((a, b), folders * (3 - len(folders))):
        directory = Path(folder)
        if not directory.is_dir():
            raise UsageError(f"results directory {folder!r} does not exist")
        rows.append(select_row(load_results(directory)[0], name, directory))
    if rows[0] == rows[1]:
        raise UsageError(f"{a!r} and {b!r} name the same row of {folders[0]}: nothing to compare")
    comparison = compare(rows[0], rows[1], (a, b), alpha, resamples, seed)
    if as_json:
        return json.dumps(asdict(comparison), indent=2) + "\n"
    return markdown(comparison)


def verdict_table(results: list[dict], reference: str, per_task: tuple[str, ...] = (), alpha: float = 0.05,
                  resamples: int = 10_000, seed: int = 0) -> str:
    """`bench leaderboard --compare-to pt`: every other row against the `reference` method's row of
    the same few-shot setting, per task, as `bench compare` would test it, but Holm-corrected
    across the whole table (one family per test): a board with forty cells would otherwise call
    two of them by chance."""
    rows = configuration_rows(results, per_task)
    references = defaultdict(list)
    for row in rows:
        if row[0]["run"]["method"] == reference:
            references[row[0]["run"]["k_shot"]].append(row)
    if not references:
        methods = sorted({r["run"]["method"] for r in results})
        raise UsageError(f"--compare-to {reference}: no results of {reference!r}; methods there: {', '.join(methods)}")
    cells, notes = [], set()
    for row, label in zip(rows, differing_settings(rows, per_task)):
        run = row[0]["run"]
        method, k = run["method"], run["k_shot"]
        if method == reference or k not in references:
            continue
        if len(references[k]) > 1:
            raise UsageError(f"--compare-to {reference}: {len(references[k])} rows of {reference} at k={k}; "
                             "keep one configuration of it in the folder")
        name = method + (f" ({label})" if label else "")
        comparison = compare(row, references[k][0], (name, reference), alpha, resamples, seed)
        notes.update(comparison.notes)
        cells += [(c.task, k, name, method, c) for c in comparison.tasks]
    cells.sort(key=lambda cell: cell[:3])
    welch_holm = holm([c.welch.p if c.welch else None for *_, c in cells])
    bootstrap_holm = holm([c.bootstrap.p if c.bootstrap else None for *_, c in cells])
    table = []
    for (task, k, name, method, c), p_welch, p_boot in zip(cells, welch_holm, bootstrap_holm):
        called = verdict(c.difference, (p_welch, p_boot), alpha)
        called = {"A better": f"{method} better", "B better": f"{reference} better"}.get(called, called)
        table.append([task, f"k={k}" if k else "full", name, f"{fmt(c.a)} (n={c.a.n})", f"{fmt(c.b)} (n={c.b.n})",
                      f"{c.difference:+.2f}", p_text(c.welch and c.welch.p), p_text(p_welch),
                      "–" if c.bootstrap is None else f"[{c.bootstrap.low:+.2f}, {c.bootstrap.high:+.2f}]",
                      p_text(c.bootstrap and c.bootstrap.p), p_text(p_boot), called])
    headers = ["task", "setting", "method", "score", reference, "Δ", "Welch p", "Holm", f"bootstrap {100 * (1 - alpha):g}% CI",
               "bootstrap p", "Holm", f"verdict (α = {alpha:g})"]
    intro = (f"## Against {reference}\n\nEach row against {reference}'s row of the same setting, task by task "
             f"(`bench compare`): Welch's t over runs (seeds × draws) and the paired bootstrap over test examples "
             f"({resamples} resamples, seed {seed}), p two-sided, Holm-corrected across all {len(cells)} cells of "
             f"this table. A verdict names a winner only where both tests reject at α = {alpha:g}.")
    return "\n\n".join([intro, tabulate(table, headers, tablefmt="github", disable_numparse=True),
                         *[f"Note: {note}." for note in sorted(notes)]]) + "\n"
