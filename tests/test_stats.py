"""Stability statistics (bench/studies/stats.py) by hand, and the leaderboard's `collapsed` column,
`--detail` tables and `--plot` on real smoke results."""
from __future__ import annotations

import json
import shutil
import math
import sys

import pytest
from scipy import stats as sps

from bench.cli import main
from bench.studies.stats import RunScore, best_of_runs_average, run_scores, stability, suite_average
from helpers import board_rows, result_file

T_975 = {1: 12.7062, 2: 4.3027}
"""Two-sided 95% Student t quantiles t(0.975, df), as a printed table gives them (4 decimals)."""


def test_mean_std_and_t_interval_by_hand():
    stat = stability([RunScore(70.0, None), RunScore(80.0, None), RunScore(90.0, None)])
    assert (stat.n, stat.mean, stat.min, stat.max, stat.best) == (3, 80.0, 70.0, 90.0, 90.0)
    assert stat.std == pytest.approx(10.0)  # deviations -10, 0, 10: (100 + 0 + 100) / (3 - 1) = 100
    half = sps.t.ppf(0.975, 2) * 10.0 / math.sqrt(3)
    assert half == pytest.approx(T_975[2] * 10.0 / math.sqrt(3), abs=1e-3)  # 24.841
    assert stat.ci == pytest.approx((80.0 - half, 80.0 + half), rel=1e-12)
    assert stat.collapsed is None and stat.floored == 0  # no majority-class floor given


def test_two_runs_use_one_degree_of_freedom():
    stat = stability([RunScore(60.0, 50.0), RunScore(64.0, 50.0)])
    assert stat.std == pytest.approx(math.sqrt(8.0))  # (4 + 4) / 1
    assert stat.ci[1] - stat.mean == pytest.approx(sps.t.ppf(0.975, 1) * math.sqrt(8.0) / math.sqrt(2), rel=1e-12)
    assert stat.ci[1] - stat.mean == pytest.approx(T_975[1] * 2, abs=1e-3)  # 12.706 x 2 = 25.41


def test_a_single_run_has_no_spread_nor_interval():
    stat = stability([RunScore(42.0, 50.0)])
    assert (stat.n, stat.mean, stat.std, stat.ci, stat.best) == (1, 42.0, None, None, 42.0)
    assert (stat.collapsed, stat.floored) == (1, 1)


def test_collapsed_counts_scores_at_or_below_their_own_floor():
    runs = [RunScore(70.0, 75.0), RunScore(80.0, 75.0), RunScore(95.0, 95.0), RunScore(96.0, 95.0), RunScore(1.0, None)]
    stat = stability(runs)
    assert (stat.collapsed, stat.floored) == (2, 4)  # 70 <= 75 and 95 <= 95 (at the floor counts); no floor: not counted


def test_suite_average_and_best_of_runs_by_hand():
    scores = {"a": {(0, 0): RunScore(60.0, 50.0), (1, 0): RunScore(70.0, 50.0), (2, 0): RunScore(99.0, 50.0)},
              "b": {(0, 0): RunScore(80.0, 55.0), (1, 0): RunScore(50.0, 55.0)}}
    averages = suite_average(scores, ["a", "b"])
    assert averages == {(0, 0): RunScore(70.0, 52.5), (1, 0): RunScore(60.0, 52.5)}  # seed 2 lacks b: left out
    best = best_of_runs_average(scores, ["a", "b"])
    assert best == (99.0 + 80.0) / 2  # each task's best run, averaged: 89.5
    stat = stability(list(averages.values()), best)
    assert (stat.max, stat.best) == (70.0, 89.5)  # best of runs flatters beyond the best seed's average


def test_an_average_has_no_floor_where_a_task_has_none():
    scores = {"a": {(0, 0): RunScore(60.0, 50.0)}, "b": {(0, 0): RunScore(80.0, None)}}
    assert suite_average(scores, ["a", "b"]) == {(0, 0): RunScore(70.0, None)}


def result(task: str, seed: int, metrics: dict, majority: dict | None, draw: int = 0) -> dict:
    return {"run": {"seed": seed, "draw": draw}, "test": {task: {"metrics": metrics}},
            "baselines": {"majority": {task: {"metrics": majority}} if majority else {}}}


def test_run_scores_read_the_report_metric_and_each_runs_own_floor():
    results = [result("multirc", 0, {"f1a": 61.0, "em": 12.0}, {"f1a": 0.0, "em": 3.0}),
               result("cb", 0, {"accuracy": 50.0, "macro_f1": 20.0}, {"accuracy": 50.0, "macro_f1": 22.2}, draw=1),
               result("cb", 0, {"accuracy": 64.0, "macro_f1": 30.0}, {"accuracy": 39.0, "macro_f1": 18.0}, draw=2),
               result("e2e", 3, {"bleu": 30.5, "rouge_l": 40.0}, None)]
    scores = run_scores(results)
    assert scores["multirc"] == {(0, 0): RunScore(61.0, 0.0)}  # MultiRC reports F1a, not EM
    assert scores["cb"] == {(0, 1): RunScore(50.0, 50.0), (0, 2): RunScore(64.0, 39.0)}  # draws train on other rows
    assert scores["e2e"] == {(3, 0): RunScore(30.5, None)}  # open-ended targets have no majority class


# -- the leaderboard on real smoke results ------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Two seeds of PT on CB (smoke). A random tiny-t5 scores 0; seed 1's record is then edited to
    60% so that the statistics have a spread, and one run stays collapsed (0 <= its 50% floor). Their
    wall times are set to 30 s and 120 s, for the cost table."""
    output = tmp_path_factory.mktemp("runs")
    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--epochs", "1", "--seeds", "0,1",
                 "--quiet", "--output", str(output)]) == 0
    path = result_file(output, "pt", "cb", "seed1.json")
    edited = json.loads(path.read_text())
    edited["test"]["cb"]["metrics"]["accuracy"] = 60.0
    edited["timing"]["wall_seconds"] = 120.0
    path.write_text(json.dumps(edited))
    first = result_file(output, "pt", "cb", "seed0.json")
    first.write_text(json.dumps({**json.loads(first.read_text()), "timing": {**json.loads(first.read_text())["timing"],
                                                                               "wall_seconds": 30.0}}))
    return output


def cells(board: str, first: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in board.splitlines() if line.startswith(f"| {first}")]


def test_leaderboard_counts_runs_and_collapsed_runs(smoke, capsys):
    assert main(["leaderboard", str(smoke)]) == 0
    board = capsys.readouterr().out
    [row] = [row for row in board_rows(board) if row["method"] == "pt"]
    floors = {json.loads(p.read_text())["baselines"]["floor"]["cb"]["metrics"]["accuracy"] for p in smoke.rglob("seed*.json")}
    assert floors == {50.0}  # the fixture's CB test split: half of it is its most frequent label
    assert row["runs"] == "2" and row["collapsed"] == "1/2"  # 0 <= 50, 60 > 50
    assert row["cb"] == "30.0 ± 42.4"  # mean of 0 and 60; std sqrt(1800) = 42.43
    assert list(row)[-2:] == ["invalid", "collapsed"]
    cost = board[board.index("Cost of each row"):]
    assert cells(cost, "#")[0] == ["#", "method", "param/task", "peak memory", "saved activations", "time/run",
                                   "time in all"]
    assert cells(cost, "1 ")[0][:3] == ["1", "pt", "640"]  # 10 prompt positions x 64 dimensions
    assert cells(cost, "1 ")[0][-2:] == ["75.0 s", "2.5 min"]  # (30 + 120) / 2; 150 s
    assert "stability over runs" not in board


def test_the_cost_leaves_out_a_wait_for_a_stage_another_process_trained(smoke, tmp_path, capsys):
    """Seed 1's 120 s held 100 s of waiting on the lock of a library stage that another process was
    training (its stage record's `waited_seconds`): idle time, no cost of PT. Its row then costs
    (30 + 20) / 2 = 25 s a run and 50 s in all, not 75 s and 150 s."""
    shutil.copytree(smoke, tmp_path / "runs")
    path = result_file(tmp_path / "runs", "pt", "cb", "seed1.json")
    edited = json.loads(path.read_text())
    edited["stages"] = [{"method": "pt", "tasks": ["mnli"], "origin": "library:0123456789abcdef", "waited_seconds": 100.0}]
    path.write_text(json.dumps(edited))
    assert main(["leaderboard", str(tmp_path / "runs")]) == 0
    cost = capsys.readouterr().out
    cost = cost[cost.index("Cost of each row"):]
    assert "a run's wait for a stage that another process was training is left out" in cost
    assert cells(cost, "1 ")[0][-2:] == ["25.0 s", "50.0 s"]


def test_detail_adds_the_full_statistics(smoke, tmp_path, capsys):
    out = tmp_path / "board.md"
    assert main(["leaderboard", str(smoke), "--detail", "--out", str(out)]) == 0
    board = capsys.readouterr().out
    assert out.read_text() + "\n" == board  # print adds the last newline
    assert "### superglue: stability over runs" in board
    [header] = [row for row in cells(board[board.index("stability over runs"):], "#")]
    [ours] = cells(board, "1 (pt)")
    detail = dict(zip(header, ours))
    half = sps.t.ppf(0.975, 1) * math.sqrt(1800) / math.sqrt(2)  # 12.706 x 30 = 381.19: [-351.2, 411.2] unclipped
    assert 30 - half < 0 and 30 + half > 100
    assert detail == {"#": "1 (pt)", "task": "cb", "runs": "2", "mean": "30.0", "std": "42.4",
                      "95% CI": "[0.0*, 100.0*]", "min": "0.0", "max": "60.0", "best of runs": "60.0 (best of 2)",
                      "collapsed": "1/2"}


def test_plot_draws_a_png_and_names_the_extra_without_matplotlib(smoke, tmp_path, capsys, monkeypatch):
    figure = tmp_path / "figures" / "params.png"
    assert main(["leaderboard", str(smoke), "--plot", str(figure)]) == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"score against parameters per task drawn in {figure}" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the extra were not installed
    assert main(["leaderboard", str(smoke), "--plot", str(tmp_path / "again.png")]) == 2
    err = capsys.readouterr().err
    from bench.studies.plots import PLOTS_EXTRA

    assert err.count("\n") == 1 and err == f"bench: error: plots need matplotlib: {PLOTS_EXTRA}\n"
    assert not (tmp_path / "again.png").exists()


def test_detail_shows_the_suite_average_with_its_best_of_runs(capsys):
    """Two tasks, two seeds, by hand: cb 60 / 70 (floor 50), rte 80 / 50 (floor 55). Per seed the
    averages are 70 and 60 (floor 52.5); best of runs averages each task's best run: (70 + 80) / 2 = 75,
    above the best seed's 70."""
    from bench.studies.report import detail_table

    def run(seed, cb, rte):
        return {"run": {"method": "pt", "k_shot": 0, "preset": "paper", "backbone": "tiny-t5", "profile": "smoke",
                        "seed": seed, "draw": 0},
                "test": {"cb": {"metrics": {"accuracy": cb}}, "rte": {"metrics": {"accuracy": rte}}},
                "baselines": {"majority": {"cb": {"metrics": {"accuracy": 50.0}}, "rte": {"metrics": {"accuracy": 55.0}}}}}

    table = detail_table("custom", [[run(0, 60.0, 80.0), run(1, 70.0, 50.0)]], ["cb", "rte"])
    rows = {row[1]: row[2:] for row in cells(table, "1 (pt)")}
    half = sps.t.ppf(0.975, 1) * math.sqrt(50) / math.sqrt(2)  # std of 60, 70 and of 70, 60: sqrt(50) = 7.07
    assert 65 + half > 100  # an accuracy's mean is never above 100: the interval's end is clipped, and marked
    assert rows["cb"] == ["2", "65.0", "7.1", f"[{65 - half:.1f}, 100.0*]", "60.0", "70.0", "70.0 (best of 2)", "0/2"]
    assert rows["rte"][:2] == ["2", "65.0"] and rows["rte"][-1] == "1/2"  # 50 <= 55
    assert rows["avg"] == ["2", "65.0", "7.1", f"[{65 - half:.1f}, 100.0*]", "60.0", "70.0", "75.0 (best of 2)",
                           "0/2"]  # 70 and 60 both above 52.5


def test_intervals_are_clipped_to_the_metrics_range_and_marked():
    """Accuracy lies in [0, 100], a correlation in [-100, 100], CIDEr-D x100 has no upper end; the
    suite average's interval is clipped to the widest range of its tasks."""
    from bench.studies.report import clipped_interval

    assert clipped_interval((-106.3, 211.3), ["rte"]) == "[0.0*, 100.0*]"
    assert clipped_interval((12.0, 88.0), ["rte"]) == "[12.0, 88.0]"
    assert clipped_interval((-142.0, 30.0), ["stsb"]) == "[-100.0*, 30.0]"  # pearson
    assert clipped_interval((-142.0, 30.0), ["rte", "stsb"]) == "[-100.0*, 30.0]"
    assert clipped_interval((-120.0, 40.0), ["cola"]) == "[-100.0*, 40.0]"  # matthews
    assert clipped_interval((-5.0, 105.0), ["e2e"]) == "[0.0*, 100.0*]"  # BLEU


def test_metric_ranges():
    from tasks.metrics import metric_range

    assert metric_range("accuracy") == (0.0, 100.0) and metric_range("spearman") == (-100.0, 100.0)
    assert metric_range("cider") == (0.0, math.inf) and metric_range("ter") == (0.0, math.inf)
