"""`bench compare`: Welch's t against scipy, Holm by hand, the paired bootstrap on hand-checkable
cases, and the command on real smoke results (the paired test with the test-set variance)."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from bench.cli import main
from bench.core.presets import PRESETS
from bench.studies.compare import Bootstrap, Side, bootstrap_summary, replicate_scores, whole_split
from bench.studies.inference import cell_test, holm
from helpers import table_rows, result_file
from tasks.base import Example

PAPER = PRESETS.get("paper")


@pytest.mark.parametrize("a, b", [
    ([70.1, 72.3, 69.8], [65.0, 71.2, 60.3, 66.6]),
    ([55.0, 80.0], [61.0, 62.0, 60.5, 61.5, 59.0]),
    ([88.2, 88.9, 87.7, 90.1, 86.0], [88.0, 91.5, 84.2]),
    ([1.0, 1.0, 2.0], [1.0, 1.5]),
])
def test_welch_matches_scipy(a, b):
    """Sides that share no unit: without test-set variance the cell's test is Welch's t."""
    ours = cell_test(np.array(a), np.array(b), False, None, 0.05)
    reference = sps.ttest_ind(a, b, equal_var=False)
    assert ours.design == "unpaired"
    assert ours.difference / ours.se == pytest.approx(reference.statistic, abs=1e-9)
    assert ours.p == pytest.approx(reference.pvalue, abs=1e-9) and ours.units_p == pytest.approx(reference.pvalue, abs=1e-9)
    assert ours.df == pytest.approx(reference.df, abs=1e-9)


def test_welch_by_hand():
    # means 2 and 5, variances 1 and 1: t = -3 / sqrt(1/3 + 1/3) = -3.6742; df = (2/3)^2 / (2 x (1/3)^2 / 2) = 4
    ours = cell_test(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0]), False, None, 0.05)
    assert ours.difference / ours.se == pytest.approx(-3 / math.sqrt(2 / 3), abs=1e-12)
    assert ours.df == pytest.approx(4.0, abs=1e-12)
    assert ours.p == pytest.approx(0.0213, abs=1e-4)  # two-sided, t table: t(0.99, 4) = 3.747, t(0.975, 4) = 2.776


def test_welch_needs_two_runs_a_side_and_some_spread():
    one = cell_test(np.array([70.0]), np.array([60.0, 61.0]), False, None, 0.05)
    flat = cell_test(np.array([70.0, 70.0]), np.array([60.0, 60.0]), False, None, 0.05)
    assert one.p is None and one.blocked == "1 run on one side (unpaired)"
    assert flat.p is None and flat.blocked == "no spread over the runs of either side"


def test_holm_by_hand():
    # m = 4 tests present; sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005 = 0.02, 3 x 0.01 = 0.03,
    # 2 x 0.03 = 0.06, 1 x 0.04 = 0.04 raised to the running max 0.06; the missing test is not counted
    assert holm([0.01, 0.04, 0.03, None, 0.005]) == pytest.approx([0.03, 0.06, 0.06, None, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # 2 x 0.5 capped at 1; 0.6 raised to 1
    assert holm([0.04]) == [0.04] and holm([None]) == [None]


def paired_bootstrap(a: Side, b: Side, resamples: int, seed: int, alpha: float) -> Bootstrap:
    """The bootstrap over test examples alone (the runs held fixed): the cell's secondary interval."""
    everything = whole_split(len(a.examples))
    observed = float(a.resampled(everything)[0] - b.resampled(everything)[0])
    replicates_a, replicates_b = replicate_scores(a, b, resamples, seed)
    return bootstrap_summary(observed, replicates_a.mean(axis=1) - replicates_b.mean(axis=1), alpha)


def sst2(targets: str) -> list[Example]:
    return [Example(f"sst2 sentence: {i}", t, "sst2") for i, t in enumerate(targets)]


def side(examples, *runs: str, task="sst2") -> Side:
    return Side([{"predictions": {task: list(run)}} for run in runs], task, examples, PAPER)


def test_identical_predictions_differ_by_nothing():
    examples = sst2("0110100111")
    result = paired_bootstrap(side(examples, "0100110101"), side(examples, "0100110101"), 2000, 0, 0.05)
    assert (result.difference, result.low, result.high, result.p) == (0.0, 0.0, 0.0, 1.0)


def test_always_right_against_always_wrong():
    examples = sst2("0110100111")
    right, wrong = "0110100111", "1001011000"
    result = paired_bootstrap(side(examples, right, right), side(examples, wrong), 999, 0, 0.05)
    assert (result.difference, result.low, result.high) == (100.0, 100.0, 100.0)
    assert result.p == 2 / 1000  # no resample at or below 0: the smallest p of 999 resamples, 2 / (R + 1)


def test_a_two_example_case_by_hand():
    """A right on both examples, B on the second only: per resample the difference is 100 (the
    first example twice, probability 1/4), 50 (1/2) or 0 (the second twice, 1/4), so P(d* <= 0) = 1/4
    and p = 2 x 1/4 = 0.5; the 95% percentile interval is [0, 100]."""
    examples = sst2("01")
    result = paired_bootstrap(side(examples, "01"), side(examples, "11"), 20_000, 7, 0.05)
    assert result.difference == 50.0
    assert result.p == pytest.approx(0.5, abs=0.02)
    assert (result.low, result.high) == (0.0, 100.0)


def test_the_bootstrap_is_repeatable_with_its_seed():
    examples = sst2("0110100111" * 5)
    a = side(examples, "0110100101" * 5, "0111100111" * 5)
    b = side(examples, "0100100011" * 5)
    first, again, other = (paired_bootstrap(a, b, 3000, seed, 0.05) for seed in (3, 3, 4))
    assert first == again and first != other
    assert first.difference == pytest.approx((90 + 90) / 2 - 80)


def test_the_interval_is_the_95_percent_one():
    """A right on all 20 examples, B wrong on 6 of them: a resample's difference is 5 t, t (the
    number of those 6 drawn) ~ Binomial(20, 0.3), whose CDF is 0.0076 at 1, 0.0355 at 2, 0.1071 at 3,
    0.8867 at 8, 0.9520 at 9 and 0.9829 at 10. The 2.5th percentile is then t = 2 (10 points) and the
    97.5th t = 10 (50); a 90% interval would be [15, 45] (t = 3 and 9)."""
    examples = sst2("01" * 10)
    wrong = "10" * 3 + "01" * 7  # the first 6 flipped
    result = paired_bootstrap(side(examples, "01" * 10), side(examples, wrong), 20_000, 0, 0.05)
    assert result.difference == 30.0
    assert (result.low, result.high) == (10.0, 50.0)


def multirc(targets: str, questions: list[int]) -> list[Example]:
    return [Example(f"multirc {i}", t, "multirc", {"group": q}) for i, (t, q) in enumerate(zip(targets, questions))]


def test_multirc_resamples_whole_questions():
    """10 questions of 2 answer options, all true; A finds question 0's two, B none (F1a 0 always).
    A resample draws 10 questions, question 0 K ~ Binomial(10, 1/10) times: TP 2K, FN 20 - 2K, so
    F1a = 4K / (2K + 20). CDF of K: 0.3487 at 0, 0.9298 at 2, 0.9872 at 3: the interval is [0, F1a(3)
    = 600/13 = 46.15], and P(d* <= 0) = P(K = 0) = 0.9^10 gives p = 0.697. Drawing the 20 rows instead,
    question 0's rows come t ~ Binomial(20, 1/10) times (CDF 0.9568 at 4, 0.9887 at 5): [0, 40], p =
    2 x 0.9^20 = 0.243, an interval too narrow for answers that come by question."""
    examples = multirc("1" * 20, [q for q in range(10) for _ in range(2)])
    result = paired_bootstrap(side(examples, "11" + "0" * 18, task="multirc"), side(examples, "0" * 20, task="multirc"),
                              20_000, 0, 0.05)
    assert result.difference == pytest.approx(400 / 22)  # TP 2, FN 18
    assert result.low == 0.0 and result.high == pytest.approx(600 / 13)
    assert result.p == pytest.approx(2 * 0.9**10, abs=0.02)


def f1_by_hand(predictions: list[str], golds: list[str]) -> float:
    tp = sum(p == g == "1" for p, g in zip(predictions, golds))
    wrong = sum(p != g for p, g in zip(predictions, golds))
    return 100 * 2 * tp / (2 * tp + wrong) if tp else 0.0


def brute_force(golds: str, runs_a: list[str], runs_b: list[str], units: list[list[int]], resamples: int, seed: int):
    """The paired bootstrap written out: `resamples` rows of unit draws from the same generator
    (one `integers` call), each resample the list of the drawn units' rows, F1a counted by hand."""
    draws = np.random.default_rng(seed).integers(0, len(units), size=(resamples, len(units)))
    d = []
    for row in draws:
        rows = [i for unit in row for i in units[unit]]
        gold = [golds[i] for i in rows]
        d.append(np.mean([f1_by_hand([run[i] for i in rows], gold) for run in runs_a])
                 - np.mean([f1_by_hand([run[i] for i in rows], gold) for run in runs_b]))
    low, high = np.percentile(d, [2.5, 97.5])
    below, above = (np.sum(np.array(d) <= 0) + 1) / (resamples + 1), (np.sum(np.array(d) >= 0) + 1) / (resamples + 1)
    return low, high, min(1.0, 2 * min(below, above))


def test_multirc_bootstrap_equals_a_brute_force_over_questions():
    """Questions of 1 to 4 answer options, interleaved in the split as a grouped split leaves them in
    first-appearance order: the bootstrap equals the brute force drawing questions, not the one
    drawing rows (the same generator, so both references are exact)."""
    questions = [5, 5, 8, 2, 2, 2, 8, 9, 9, 9, 9, 1, 5, 4]
    golds = "10110100111001"
    runs_a, runs_b = ["10110110101001", "10010100111011"], ["11100101011000"]
    examples = multirc(golds, questions)
    result = paired_bootstrap(side(examples, *runs_a, task="multirc"), side(examples, *runs_b, task="multirc"), 500, 3,
                              0.05)
    order = list(dict.fromkeys(questions))  # 5, 8, 2, 9, 1, 4
    by_question = [[i for i, q in enumerate(questions) if q == unit] for unit in order]
    expected = brute_force(golds, runs_a, runs_b, by_question, 500, 3)
    assert (result.low, result.high, result.p) == pytest.approx(expected, abs=1e-9)
    by_row = brute_force(golds, runs_a, runs_b, [[i] for i in range(len(golds))], 500, 3)
    assert (result.low, result.high) != pytest.approx(by_row[:2], abs=1e-9)  # the case tells the two apart


def test_resampling_units_are_questions_queries_or_examples():
    """MultiRC's `group` joins a question's options wherever they stand; ReCoRD's rows of one
    query (same input, same gold answers: one per answer outside `record_per_query`) come one after
    another; every other example, a repeated one included, is its own unit."""
    from bench.studies.compare import resampling_units

    assert resampling_units(multirc("10101", [7, 7, 3, 7, 9])).tolist() == [0, 0, 1, 0, 2]
    record = [Example(f"record query: {q}", t, "record", {"answers": answers}) for q, t, answers in
              [("a", "x", ["x", "y"]), ("a", "y", ["x", "y"]), ("b", "z", ["z"]), ("a", "x", ["x", "y"])]]
    assert resampling_units(record).tolist() == [0, 0, 1, 2]
    assert resampling_units(sst2("0110")).tolist() == [0, 1, 2, 3]


def test_real_record_and_squad_units(shared_data):
    """The real files: ReCoRD's first query has 5 gold answers of 2 distinct texts, so outside
    `record_per_query` its test rows are 2, one unit; SQuAD's first dev article repeats 11 of its
    810 questions word for word, elsewhere in the article: they stay 810 units."""
    from bench.studies.compare import resampling_units
    from tasks.loading import DataSource, load_examples
    from tasks.registry import TASKS

    source = DataSource("dir", shared_data)
    per_answer = load_examples(TASKS.get("record"), "test", source, PRESETS.get("attempt-code"))
    assert [e.target for e in per_answer] == ["Morgan", "Tracy Morgan", "China"]
    assert resampling_units(per_answer).tolist() == [0, 0, 1]
    assert resampling_units(load_examples(TASKS.get("record"), "test", source, PAPER)).tolist() == [0, 1]
    squad = load_examples(TASKS.get("squad"), "test", source, PAPER)
    assert (len(squad), len({e.source for e in squad})) == (810, 799)
    assert resampling_units(squad).tolist() == list(range(810))


def test_resamples_rescore_every_run_and_average_them():
    """Per-example metrics (accuracy, vectorised) and metrics recomputed per resample (MultiRC's
    F1a) alike: the same draws for every run, then the mean over the runs. By hand, gold 1 1 0 0,
    run 1 predicts 1 0 0 0, run 2 predicts 1 1 1 1; resample 0 draws examples 0 0 1 2, resample 1
    draws example 3 four times (as counts per example, the form a resample takes)."""
    counts = np.array([[2, 1, 1, 0], [0, 0, 0, 4]])
    accuracy = side([Example(f"mrpc {i}", t, "mrpc") for i, t in enumerate("1100")], "1000", "1111", task="mrpc")
    # resample 0: run 1 right, right, wrong, right (75); run 2 right, right, right, wrong (75)
    # resample 1: run 1 right x 4 (100); run 2 wrong x 4 (0)
    np.testing.assert_allclose(accuracy.resampled(counts), [75.0, 50.0])
    f1a = side([Example(f"multirc {i}", t, "multirc", {"group": i}) for i, t in enumerate("1100")], "1000", "1111",
               task="multirc")
    # resample 0, gold 1 1 1 0: run 1 predicts 1 1 0 0: TP 2, FN 1, FP 0 -> F1 = 4 / 5 = 80;
    # run 2 predicts 1 1 1 1: TP 3, FP 1 -> F1 = 6 / 7 = 85.71. Resample 1 (gold 0 x 4): no true positive -> 0
    np.testing.assert_allclose(f1a.resampled(counts), [(80 + 600 / 7) / 2, 0.0])


@pytest.mark.filterwarnings("ignore:A single label was found")  # sklearn, on the constant resample
@pytest.mark.parametrize("task, labels, preset", [("cola", "01", "paper"), ("multirc", "01", "paper"),
                                                 ("stsb", None, "paper"), ("sst2", "01", "paper"),
                                                 ("cola", "01", "attempt-code")])
def test_every_resampled_form_equals_the_metric_function(task, labels, preset):
    """Sufficient statistics (confusion counts, Pearson's sums, per-example scores) and the metric
    recomputed on each resample's examples (attempt-code's Matthews) give what the task's metric
    function gives on the same resampled predictions, invalid ones and constant resamples included."""
    from tasks.metrics import METRICS, metric_function
    from bench.studies.compare import per_run
    from tasks.registry import TASKS

    rng = np.random.default_rng(1)
    n = 40
    if labels:
        gold = [str(x) for x in rng.integers(0, 2, n)]
        run = [str(x) if x < 2 else "maybe" for x in rng.integers(0, 3, n)]  # a third is invalid
    else:
        gold = [f"{x:.1f}" for x in rng.uniform(0, 5, n)]
        run = [f"{x:.2f}" if x < 4.5 else "nan" for x in rng.uniform(0, 5, n)]
    examples = [Example(f"{task} {i}", t, task, {"group": i}) for i, t in enumerate(gold)]
    metric = TASKS.get(task).report_metric
    function = metric_function(metric, PRESETS.get(preset))
    indices = np.vstack([rng.integers(0, n, size=(30, n)), np.zeros((1, n), dtype=int), np.arange(n)[None, :]])
    expected = [function([run[i] for i in row], [examples[i] for i in row], TASKS.get(task).labels) for row in indices]
    counts = np.array([np.bincount(row, minlength=n) for row in indices])
    np.testing.assert_allclose(per_run(metric, function, run, examples, TASKS.get(task).labels)(counts), expected,
                               rtol=1e-10, atol=1e-10)
    assert expected[-2] == 0.0 or task == "sst2"  # one example drawn n times: F1/Matthews/Pearson are 0 there
    assert (preset == "attempt-code") == (function is not METRICS.get(metric))  # the variant: no vectorised form


def test_pearson_is_zero_where_the_examples_drawn_are_constant_on_one_side():
    """Gold 2.6 on examples 0-2: a resample drawing only those has a constant gold side (r
    undefined: 0, as the metric defines it), though weights of 1/3 leave its variance from the
    moments at 2e-16, not 0; likewise the predictions 0.7 of examples 0 and 3. A row drawing
    varied examples gets scipy's r of the examples drawn."""
    from bench.studies.compare import per_run
    from tasks.metrics import METRICS

    examples = [Example(f"stsb {i}", t, "stsb") for i, t in enumerate(["2.6", "2.6", "2.6", "1.0", "0.3"])]
    run = ["0.7", "3.1", "1.9", "0.7", "2.2"]
    counts = np.array([[1, 1, 1, 0, 0], [0, 5, 1, 0, 0], [2, 0, 0, 3, 0], [0, 0, 1, 2, 3]])
    drawn = [2.6, 1.0, 1.0, 0.3, 0.3, 0.3], [1.9, 0.7, 0.7, 2.2, 2.2, 2.2]
    expected = [0.0, 0.0, 0.0, 100 * sps.pearsonr(*drawn)[0]]
    np.testing.assert_allclose(per_run("pearson", METRICS.get("pearson"), run, examples, None)(counts), expected,
                               rtol=1e-10, atol=1e-10)

def test_a_protocol_variant_is_recomputed_by_its_own_function():
    """The official code's Matthews (attempt-code) counts an invalid prediction as a class of its
    own. By hand, gold 1 1 0 0, predictions 1 x 0 0: correct c = 3 of s = 4; true counts (1: 2, 0: 2),
    predicted (1: 1, x: 1, 0: 2): MCC = (c s - sum p t) / sqrt((s^2 - sum p^2)(s^2 - sum t^2))
    = (12 - 6) / sqrt(10 x 8) = 67.08. The paper preset flips x to 0: TP 1, FN 1, TN 2, FP 0:
    (1 x 2 - 0) / sqrt(1 x 2 x 2 x 3) = 57.74."""
    examples = [Example(f"cola {i}", t, "cola") for i, t in enumerate("1100")]
    everything = np.ones((1, 4), dtype=int)  # each example once
    official = Side([{"predictions": {"cola": ["1", "x", "0", "0"]}}], "cola", examples, PRESETS.get("attempt-code"))
    assert official.resampled(everything)[0] == pytest.approx(600 / math.sqrt(80))
    paper = Side([{"predictions": {"cola": ["1", "x", "0", "0"]}}], "cola", examples, PAPER)
    assert paper.resampled(everything)[0] == pytest.approx(200 / math.sqrt(12))


# -- the command on real smoke results ----------------------------------------------------------


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two seeds of PT on CB (smoke) copied twice: B keeps the random tiny-t5's predictions (all
    invalid: 0%); in A they are edited to the gold labels (seed 0: 100%) and all but one (seed 1:
    11 of 12) with their recorded scores, so that the two differ for sure."""
    root = tmp_path_factory.mktemp("compare")
    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--epochs", "1", "--seeds", "0,1",
                 "--quiet", "--output", str(root / "b")]) == 0
    shutil.copytree(root / "b", root / "a")
    from tasks.loading import DataSource, load_examples
    from tasks.registry import TASKS

    gold = [e.target for e in load_examples(TASKS.get("cb"), "test", DataSource("fixtures"), PAPER)]
    assert len(gold) == 12
    for seed, wrong in ((0, 0), (1, 1)):
        path = result_file(root / "a", "pt", "cb", f"seed{seed}.json")
        result = json.loads(path.read_text())
        result["predictions"]["cb"] = ["2" if g != "2" else "0" for g in gold[:wrong]] + gold[wrong:]
        result["test"]["cb"]["metrics"]["accuracy"] = 100 * (12 - wrong) / 12
        path.write_text(json.dumps(result))
    return root


def table(out: str) -> tuple[list[str], list[str]]:
    """(header, the one row) of the verdict table: the first markdown table of the output."""
    rows = table_rows(out)
    assert len(rows) == 2
    return rows[0], rows[1]


HEADER = ["task", "metric", "A: pt", "B: pt", "units", "A − B", "95% CI", "p", "p Holm", "MDE", "verdict (α = 0.05)"]
# A's seeds score 100 and 1100/12 on CB's 12 test examples, B's 0 and 0, on the same seeds and rows: two pairs,
# differences 100 and 91.67, whose variance over units is s²/n = (1/2) (50/12)² / 2 ... by hand below.
D = np.array([100.0, 1100 / 12])
VAR_UNITS = D.var(ddof=1) / 2  # 17.36
# Test set: A's seed 1 misses example 0, everything else is fixed, so a resample's mean difference is
# 100 - 50 k / 12 with k ~ Binomial(12, 1/12) (example 0's draws): variance (50/12)² · 12 · (1/12)(11/12).
VAR_TEST = (50 / 12) ** 2 * 11 / 12  # 15.91


def hierarchical(var_test: float) -> tuple[float, float, float]:
    """(SE, Satterthwaite df, p) of the paired cell by independent arithmetic."""
    se = math.sqrt(VAR_UNITS + var_test)
    df = se**4 / (VAR_UNITS**2 / 1)
    return se, df, 2 * sps.t.sf(D.mean() / se, df)


def test_compare_two_folders(folders, capsys):
    """Both sides ran seeds 0 and 1 on the same rows: a paired design of 2 units, whose interval and p
    hold the units' variance and the test set's."""
    assert main(["compare", "pt", "pt", "--results", str(folders / "a"), "--results", str(folders / "b"),
                 "--resamples", "4000", "--json"]) == 0
    [task] = json.loads(capsys.readouterr().out)["tasks"]
    test = task["test"]
    assert test["design"] == "paired" and test["n"] == 2 and test["difference"] == pytest.approx(D.mean())
    assert test["var_units"] == pytest.approx(VAR_UNITS, rel=1e-9)
    assert test["var_test"] == pytest.approx(VAR_TEST, rel=0.1)  # Monte Carlo over 4000 resamples
    se, df, p = hierarchical(test["var_test"])
    assert (test["se"], test["df"], test["p"]) == pytest.approx((se, df, p), rel=1e-9)
    assert p < 0.002  # t ≈ 16.6 on ≈ 3.7 df
    assert test["units_p"] == pytest.approx(sps.ttest_rel(D, [0.0, 0.0]).pvalue, rel=1e-9)  # 0.028: t = 23 on 1 df
    assert test["sign_flip_p"] == 0.5  # 2 of the 4 sign assignments reach |mean| 95.8
    assert task["verdict"] == "A better" and task["p_holm"] == test["p"]
    assert task["test_only"]["low"] == 87.5  # the percentile bootstrap over test examples alone, as before


def test_the_markdown_table(folders, capsys):
    assert main(["compare", "pt", "pt", "--results", str(folders / "a"), "--results", str(folders / "b"),
                 "--resamples", "2000"]) == 0
    out = capsys.readouterr().out
    header, row = table(out)
    assert header == HEADER
    assert row[:6] == ["cb", "accuracy", "95.8 ± 5.9 (n=2)", "0.0 ± 0.0 (n=2)", "2 pairs", "+95.83"]
    assert row[10] == "A better"
    assert "A verdict names a winner only where at least 2 units a side are matched" in out


def test_one_run_a_side_is_never_called(folders, tmp_path, capsys):
    """Seed 0 alone on each side (A 100, B 0): one matched unit, no winner, however large the gap;
    the interval shown is over test examples alone, and says so."""
    for side in "ab":
        shutil.copytree(folders / side, tmp_path / side)
        result_file(tmp_path / side, "pt", "cb", "seed1.json").unlink()
    assert main(["compare", "pt", "pt", "--results", str(tmp_path / "a"), "--results", str(tmp_path / "b"),
                 "--resamples", "500"]) == 0
    _, row = table(capsys.readouterr().out)
    assert row[4:6] == ["1 pair", "+100.00"] and row[7:10] == ["–", "–", "–"]
    assert row[6] == "[+100.00, +100.00] (test set only)"  # A right and B wrong on every example: no test variance
    assert row[10] == "no winner named: 1 matched unit"


def test_less_data_never_makes_a_winner_easier(folders, tmp_path, capsys):
    """At alpha 0.001 the two paired seeds are not enough (p ≈ 1e-3 or more); one seed of each, which
    today's rule called, is not called either."""
    assert main(["compare", "pt", "pt", "--results", str(folders / "a"), "--results", str(folders / "b"),
                 "--resamples", "2000", "--json", "--alpha", "0.0001"]) == 0
    [both] = json.loads(capsys.readouterr().out)["tasks"]
    assert both["verdict"] == "no significant difference"
    for side in "ab":
        shutil.copytree(folders / side, tmp_path / side)
        result_file(tmp_path / side, "pt", "cb", "seed1.json").unlink()
    assert main(["compare", "pt", "pt", "--results", str(tmp_path / "a"), "--results", str(tmp_path / "b"),
                 "--resamples", "2000", "--json", "--alpha", "0.0001"]) == 0
    [one] = json.loads(capsys.readouterr().out)["tasks"]
    assert one["verdict"] == "no winner named: 1 matched unit" and one["p_holm"] is None


def test_runs_of_other_seeds_are_unpaired(folders, tmp_path, capsys):
    """B's runs renamed to seeds 5 and 6: the sides share no unit, so Welch's t tests them (with the
    test-set variance joined to the runs')."""
    shutil.copytree(folders / "b", tmp_path / "b")
    for seed in (0, 1):
        path = result_file(tmp_path / "b", "pt", "cb", f"seed{seed}.json")
        result = json.loads(path.read_text())
        result["run"]["seed"] = seed + 5
        path.write_text(json.dumps(result))
    assert main(["compare", "pt", "pt", "--results", str(folders / "a"), "--results", str(tmp_path / "b"),
                 "--resamples", "500", "--json"]) == 0
    [task] = json.loads(capsys.readouterr().out)["tasks"]
    assert task["test"]["design"] == "unpaired" and task["test"]["sign_flip_p"] is None
    assert task["test"]["units_p"] == pytest.approx(sps.ttest_ind(D, [0.0, 0.0], equal_var=False).pvalue, rel=1e-9)


def test_the_same_seed_on_other_training_rows_is_no_pair(folders, tmp_path, capsys):
    """Pairing needs the training rows' fingerprint too: B's runs, same seeds, recorded as trained on
    other rows (another data source, say), are compared unpaired, by Welch's t."""
    shutil.copytree(folders / "b", tmp_path / "b")
    for seed in (0, 1):
        path = result_file(tmp_path / "b", "pt", "cb", f"seed{seed}.json")
        result = json.loads(path.read_text())
        result["data"]["cb"]["fingerprints"]["train"] = "0123456789abcdef"
        path.write_text(json.dumps(result))
    assert main(["compare", "pt", "pt", "--results", str(folders / "a"), "--results", str(tmp_path / "b"),
                 "--resamples", "200", "--json"]) == 0
    [task] = json.loads(capsys.readouterr().out)["tasks"]
    assert task["test"]["design"] == "unpaired"


def test_cells_on_one_test_split_share_their_resamples():
    """One resample stream per test split (its fingerprint), so that an across-cells bootstrap
    resamples a split alike in every cell scored on it, and other splits independently."""
    from bench.studies.compare import replicate_scores, split_seed

    examples = sst2("0110100111" * 3)
    a, b = side(examples, "0110100101" * 3), side(examples, "0100100011" * 3)
    same = [replicate_scores(a, b, 50, split_seed(0, "d608a7b3eea6e9fa"))[0] for _ in range(2)]
    other = replicate_scores(a, b, 50, split_seed(0, "ba71b90a2ee8ceae"))[0]
    assert (same[0] == same[1]).all() and not (same[0] == other).all()


def test_one_folder_is_read_once(folders, tmp_path, capsys):
    """A and B from one folder: an unreadable file in it is skipped, and named, once."""
    board = tmp_path / "board"
    shutil.copytree(folders / "b", board)
    as_method(folders / "a", "spot-g", board)
    (board / "pt" / "cb" / "seed9.json").write_text("{}")
    assert main(["compare", "spot-g", "pt", "--results", str(board), "--resamples", "200", "--skip-unreadable"]) == 0
    assert capsys.readouterr().err.count("bench: skipped") == 1


def test_results_without_predictions_have_no_test_set_variance(folders, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(folders / "b", old)
    for path in old.rglob("seed*.json"):
        result = json.loads(path.read_text())
        del result["predictions"]
        path.write_text(json.dumps(result))
    assert main(["compare", "pt", "pt", "--results", str(folders / "a"), "--results", str(old)]) == 0
    out = capsys.readouterr().out
    header, row = table(out)
    assert header == HEADER
    # the units alone: 95.83 ± t(0.975, 1) · sqrt(17.36) = 95.83 ± 52.94
    half = sps.t.ppf(0.975, 1) * math.sqrt(VAR_UNITS)
    assert row[6] == f"[{D.mean() - half:+.2f}, {D.mean() + half:+.2f}] (units only)"
    notes = [line for line in out.splitlines() if line.startswith("Note: no per-example predictions")]
    assert notes == ["Note: no per-example predictions in the results of pt (made before they were recorded): "
                     "no test-set resampling; intervals hold the units' variance alone."]


def test_changed_test_data_are_refused_in_one_line(folders, tmp_path, capsys):
    for side in ("a", "b"):
        shutil.copytree(folders / side, tmp_path / side)
        for path in (tmp_path / side).rglob("seed*.json"):
            result = json.loads(path.read_text())
            result["data"]["cb"]["fingerprints"]["test"] = "0123456789abcdef"
            path.write_text(json.dumps(result))
    assert main(["compare", "pt", "pt", "--results", str(tmp_path / "a"), "--results", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "the cb test data (fixtures) differ from those the runs were scored on" in err and "0123456789abcdef recorded" in err


@pytest.mark.parametrize("edited, seed", [("b", 0), ("b", 1), ("ab", 1)])
def test_runs_scored_on_other_test_examples_get_no_paired_bootstrap(folders, tmp_path, capsys, edited, seed):
    """Every run of both sides is checked, not only each side's first: where one run was scored on
    other test examples (here its recorded fingerprint edited, on one side or alike on both), its
    predictions cannot be resampled with the other runs'; the units' variance alone enters."""
    fingerprints = {}
    for name in "ab":
        shutil.copytree(folders / name, tmp_path / name)
        path = result_file(tmp_path / name, "pt", "cb", f"seed{seed}.json")
        result = json.loads(path.read_text())
        real = result["data"]["cb"]["fingerprints"]["test"]
        if name in edited:
            result["data"]["cb"]["fingerprints"]["test"] = "0123456789abcdef"
            path.write_text(json.dumps(result))
        fingerprints[name] = ", ".join(sorted({real, result["data"]["cb"]["fingerprints"]["test"]}))
    assert main(["compare", "pt", "pt", "--results", str(tmp_path / "a"), "--results", str(tmp_path / "b"),
                 "--resamples", "200", "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    [task] = comparison["tasks"]
    assert task["test_only"] is None and task["test"]["var_test"] is None
    assert task["test"]["p"] == pytest.approx(sps.ttest_rel(D, [0.0, 0.0]).pvalue, rel=1e-9)  # the units alone: 0.028
    assert task["verdict"] == "A better"
    shown = sorted(set(fingerprints["a"].split(", ")) | set(fingerprints["b"].split(", ")))
    assert comparison["notes"] == [f"cb: the runs were not all scored on the same test examples (fingerprints "
                                   f"{', '.join(shown)}): no test-set resampling; the interval holds the units' "
                                   "variance alone"]


def test_chunks_draw_what_one_draw_would(monkeypatch):
    """Resamples are drawn in chunks that bound memory; with chunks of 3 resamples (a budget of 30
    counts on 10 examples) the bootstrap is the one drawn at once, every resample counted once."""
    import bench.studies.compare

    examples = sst2("0110100111")
    a, b = side(examples, "0110100101", "0111100011"), side(examples, "0100100011")
    whole = paired_bootstrap(a, b, 10, 2, 0.05)
    monkeypatch.setattr(bench.studies.compare, "INDEX_BUDGET", 30)
    assert paired_bootstrap(a, b, 10, 2, 0.05) == whole

def test_predictions_that_do_not_give_the_recorded_score_are_refused(folders, tmp_path, capsys):
    shutil.copytree(folders / "a", tmp_path / "a")
    path = result_file(tmp_path / "a", "pt", "cb", "seed0.json")
    result = json.loads(path.read_text())
    result["test"]["cb"]["metrics"]["accuracy"] = 75.0
    path.write_text(json.dumps(result))
    assert main(["compare", "pt", "pt", "--results", str(tmp_path / "a"), "--results", str(folders / "b")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pt: its cb predictions rescore to accuracy 95.8333, its results record 83.3333" in err


@pytest.mark.parametrize("argv, message", [
    (["pt", "spot-g", "--results", "{a}"], "no results of 'spot-g' in {a}; methods there: pt (or name a configuration folder)"),
    (["pt", "pt", "--results", "{a}"], "'pt' and 'pt' name the same row of {a}: nothing to compare"),
    (["pt", "pt", "--results", "{a}", "--alpha", "1.5"], "--alpha takes a level between 0 and 1 (e.g. 0.05), not 1.5"),
    (["pt", "pt", "--results", "{a}", "--alpha", "x"], "argument --alpha: invalid float value: 'x'"),
    (["pt", "pt", "--results", "{a}", "--resamples", "0"],
     "--resamples takes a positive number of resamples (e.g. 10000), not 0"),
    (["pt", "pt", "--results", "/nonexistent"], "results directory '/nonexistent' does not exist"),
    (["pt", "pt", "--results", "{a}", "--results", "{a}", "--results", "{a}"],
     "--results takes one folder (A and B in it) or two (A's, then B's), not 3"),
])
def test_bad_input_is_one_line(folders, capsys, argv, message):
    a = str(folders / "a")
    assert main(["compare", *[arg.format(a=a) for arg in argv]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(a=a) in err


def test_a_configuration_names_one_row_of_several(folders, tmp_path, capsys):
    """Two configurations of pt in one folder (here: a copy whose configuration is renamed) are two
    rows: `pt` is ambiguous, a configuration folder name is not."""
    mixed = tmp_path / "mixed"
    shutil.copytree(folders / "a", mixed)
    for path in (folders / "b").rglob("seed*.json"):
        result = json.loads(path.read_text())
        result["identity"]["train"]["epochs"] = 9  # another configuration in the row's eyes
        result["run"]["configuration"] = "feedfacecafe"
        target = mixed / "pt" / "cb" / "feedfacecafe" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result))
    assert main(["compare", "pt", "feedface", "--results", str(mixed), "--resamples", "200"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'pt' names 2 leaderboard rows" in err and "feedfacecafe (epochs=9)" in err
    first = next(p for p in mixed.rglob("seed0.json") if "feedfacecafe" not in str(p)).parent.name
    assert main(["compare", first[:8], "feedface", "--results", str(mixed), "--resamples", "200"]) == 0
    header, row = table(capsys.readouterr().out)
    assert header[2:4] == [f"A: {first[:8]}", "B: feedface"] and row[2:4] == ["95.8 ± 5.9 (n=2)", "0.0 ± 0.0 (n=2)"]


def as_method(folder: Path, method: str, out: Path) -> None:
    """The runs of `folder` as if `method` had made them (another leaderboard row)."""
    for path in folder.rglob("seed*.json"):
        result = json.loads(path.read_text())
        result["run"]["method"] = result["identity"]["method"] = result["config"]["method"] = method
        target = out / method / path.relative_to(folder).parent.relative_to("pt") / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result))


def verdict_rows(out: str) -> list[list[str]]:
    """The rows (header first) of the first table under `## Against pt`."""
    return table_rows(out[out.index("## Against pt"):])


def test_the_verdict_table_corrects_across_the_whole_table(folders, tmp_path, capsys):
    """A's runs as spot-g and as attempt beside B's as pt: each cell alone is the cell of
    `test_compare_two_folders`, but two cells are a family of two: Holm doubles both p."""
    board = tmp_path / "board"
    shutil.copytree(folders / "b", board)
    as_method(folders / "a", "spot-g", board)
    as_method(folders / "a", "attempt", board)
    assert main(["leaderboard", str(board), "--compare-to", "pt"]) == 0
    out = capsys.readouterr().out
    header, *rows = verdict_rows(out)
    assert header == ["task", "setting", "method", "units", "score", "pt", "Δ", "95% CI", "p", "p Holm", "MDE",
                      "verdict (α = 0.05)"]
    assert [row[:3] for row in rows] == [["cb", "full", "attempt"], ["cb", "full", "spot-g"]]
    for row in rows:
        assert row[3:7] == ["2 pairs", "95.8 ± 5.9", "0.0 ± 0.0", "+95.83"]
        assert float(row[9]) == pytest.approx(2 * float(row[8]), rel=0.05)  # both p shown to 2 digits
        assert row[11] in ("attempt better", "spot-g better")
    assert "2 of 2 cells tested, Holm over those" in out


def test_one_cell_keeps_its_p_and_names_the_winner(folders, tmp_path, capsys):
    board = tmp_path / "board"
    shutil.copytree(folders / "b", board)
    as_method(folders / "a", "spot-g", board)
    assert main(["leaderboard", str(board), "--compare-to", "pt"]) == 0
    _, row = verdict_rows(capsys.readouterr().out)
    assert row[2] == "spot-g" and row[8] == row[9] and row[11] == "spot-g better"


def test_a_row_without_a_reference_at_its_setting_is_named_not_dropped(folders, tmp_path, capsys):
    """spot-g's runs relabelled k = 4 beside pt's full-data row: no cell to test, and the board says so."""
    board = tmp_path / "board"
    shutil.copytree(folders / "b", board)
    as_method(folders / "a", "attempt", board)
    as_method(folders / "a", "spot-g", board)
    for path in (board / "spot-g").rglob("seed*.json"):
        result = json.loads(path.read_text())
        result["run"]["k_shot"] = result["identity"]["k_shot"] = result["config"]["k_shot"] = 4
        path.write_text(json.dumps(result))
    assert main(["leaderboard", str(board), "--compare-to", "pt"]) == 0
    out = capsys.readouterr().out
    assert [row[:3] for row in verdict_rows(out)[1:]] == [["cb", "full", "attempt"]]
    assert "Note: not tested, no pt row at their setting: spot-g (k=4)." in out


def test_two_reference_rows_at_one_setting_are_refused(folders, tmp_path, capsys):
    board = tmp_path / "board"
    shutil.copytree(folders / "b", board)
    as_method(folders / "a", "attempt", board)
    for path in (folders / "a").rglob("seed*.json"):  # a second pt configuration at k = 0
        result = json.loads(path.read_text())
        result["identity"]["train"]["epochs"] = 9
        target = board / "pt" / "cb" / "feedfacecafe" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result))
    assert main(["leaderboard", str(board), "--compare-to", "pt"]) == 2
    err = capsys.readouterr().err
    assert err == ("bench: error: --compare-to pt: 2 rows of pt at k=0; keep one configuration of it in the folder\n")


def test_compare_to_a_method_without_results_is_refused(folders, capsys):
    assert main(["leaderboard", str(folders / "b"), "--compare-to", "attempt"]) == 2
    assert "--compare-to attempt: no results of 'attempt'; methods there: pt" in capsys.readouterr().err
