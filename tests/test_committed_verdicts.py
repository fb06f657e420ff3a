"""Verdicts on the committed studies (leaderboards/minilm-fewshot, minilm-glue), checked by
independent code: the paired units the review found, and less data never making a winner."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from bench.cli import main

FEWSHOT = Path(__file__).resolve().parent.parent / "leaderboards" / "minilm-fewshot"


def runs_of(method: str, task: str, k: int, **options) -> dict[int, dict]:
    """Draw -> result of one committed configuration (`options`: method options it must have)."""
    found = {}
    for path in (FEWSHOT / method / task).glob(f"*/k{k}-draw*-seed0.json"):
        result = json.loads(path.read_text())
        config = result["identity"]["method_config"]
        if all(config.get(name) == value for name, value in options.items()):
            found[result["run"]["draw"]] = result
    return found


def test_rte_k16_attempt_against_pt_is_paired_by_draw(shared_data_cpu, capsys):
    """ATTEMPT (target from QNLI's prompt) is below PT on RTE at k = 16 in every draw: the paired t
    over the three draws (scipy's ttest_rel on the committed scores) is 0.038, where Welch's, blind
    to the draws, was 0.77. `bench compare` reports that paired t beside its verdict."""
    attempt, pt = runs_of("attempt", "rte", 16, target_init="source"), runs_of("pt", "rte", 16)
    a = np.array([attempt[d]["test"]["rte"]["metrics"]["accuracy"] for d in range(3)])
    b = np.array([pt[d]["test"]["rte"]["metrics"]["accuracy"] for d in range(3)])
    assert (a < b).all()
    assert sps.ttest_rel(a, b).pvalue == pytest.approx(0.038, abs=0.001)
    assert sps.ttest_ind(a, b, equal_var=False).pvalue == pytest.approx(0.77, abs=0.01)
    rows = [next(iter(runs.values()))["run"]["configuration"] for runs in (attempt, pt)]  # configuration folders
    assert main(["compare", *rows, "--results", str(FEWSHOT), "--resamples", "2000", "--json"]) == 0
    [cell] = [t for t in json.loads(capsys.readouterr().out)["tasks"] if t["task"] == "rte"]
    assert cell["test"]["design"] == "paired" and cell["test"]["n"] == 3
    assert cell["test"]["units_p"] == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-9)
    assert cell["test"]["difference"] == pytest.approx((a - b).mean())


def test_one_draw_of_the_oracle_names_no_winner(shared_data_cpu, tmp_path, capsys):
    """Draw 0 alone of the SST-2 oracle (SPoT-t from SST-2's own prompt, 70.9 against PT's 61.5) was
    called "spot-t better" by the old rule (only the test-set bootstrap could run); one matched unit
    now names no winner, and shows the test-set interval."""
    for method in ("spot-t", "pt"):
        [source] = [p for p in (FEWSHOT / method / "sst2").glob("*/k16-draw0-seed0.json")]
        target = tmp_path / method / "sst2" / source.parent.name / source.name
        target.parent.mkdir(parents=True)
        shutil.copy(source, target)
    assert main(["compare", "spot-t", "pt", "--results", str(tmp_path), "--resamples", "2000", "--json"]) == 0
    [cell] = json.loads(capsys.readouterr().out)["tasks"]
    assert cell["verdict"] == "no winner named: 1 matched unit" and cell["p_holm"] is None
    assert cell["test"]["low"] > 0  # these two runs differ on these 872 sentences; that is no verdict


def test_compare_names_a_leave_one_out_row_with_per_task(shared_data_cpu, capsys):
    """leaderboards/minilm-glue's SPoT-g is one leaderboard row over three source sets (one per
    target): without --per-task `spot-g` names three rows; with it, one, tested on all three tasks."""
    glue = FEWSHOT.parent / "minilm-glue"
    assert main(["compare", "spot-g", "pt", "--results", str(glue)]) == 2
    assert "'spot-g' names 3 leaderboard rows" in capsys.readouterr().err
    assert main(["compare", "spot-g", "pt", "--results", str(glue), "--per-task", "sources,source_tasks",
                 "--resamples", "500", "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert [t["task"] for t in comparison["tasks"]] == ["sst2", "mrpc", "rte"]
    assert all(t["test"]["design"] == "paired" and t["test"]["n"] == 3 for t in comparison["tasks"])
    assert comparison["across"]["cells"] == 3


def test_the_sources_board_names_no_winner_from_one_run_a_side(shared_data_cpu, tmp_path, capsys):
    """leaderboards/minilm-sources: PT and head-only, one run each per task. The first version of the
    board called QNLI "pt better"; now every cell names no winner, and the across-cells row says its
    cells hold a single run a side."""
    board = FEWSHOT.parent / "minilm-sources"
    assert main(["leaderboard", str(board), "--compare-to", "head-only", "--cd-plot", str(tmp_path / "cd.png")]) == 2
    assert "--cd-plot: Ranks need 3 methods or more" in capsys.readouterr().err  # two rows: no rank test to draw
    assert main(["leaderboard", str(board), "--compare-to", "head-only"]) == 0
    out = capsys.readouterr().out
    verdicts = [line.split("|")[-2].strip() for line in out[out.index("## Against"):].splitlines()
                if line.startswith("| qnli") or line.startswith("| sst2") or line.startswith("| mrpc")]
    assert verdicts == ["no winner named: 1 run on one side (unpaired)"] * 3
    assert "| pt       | 3 (3 single-run) |" in out


def test_a_cd_plot_needs_the_compare_to_table_and_is_drawn_from_it(shared_data_cpu, tmp_path, capsys):
    glue = FEWSHOT.parent / "minilm-glue"
    assert main(["leaderboard", str(glue), "--cd-plot", str(tmp_path / "cd.png")]) == 2
    assert "--cd-plot draws the ranks of the --compare-to table" in capsys.readouterr().err
    assert main(["leaderboard", str(glue), "--per-task", "sources,source_tasks", "--compare-to", "pt",
                 "--cd-plot", str(tmp_path / "cd.png")]) == 0
    assert (tmp_path / "cd.png").read_bytes()[:4] == b"\x89PNG"


def test_paper_rows_without_a_value_on_the_board_are_left_out(capsys):
    """The papers have SPoT and ATTEMPT few-shot rows, but for BoolQ, CB and SciTail only: on the
    RTE/MRPC board they would be lines of dashes. PT's and MPT's k = 16 rows have values."""
    from helpers import board_rows

    assert main(["leaderboard", str(FEWSHOT), "--per-task", "sources,source_tasks"]) == 0
    papers = [row for row in board_rows(capsys.readouterr().out) if row["method"].endswith("(paper)*")]
    assert sorted((row["method"], row["setting"]) for row in papers) == [("*MPT (paper)*", "k=16"),
                                                                      ("*PT (paper)*", "k=16")]
    assert all(row["rte"] != "–" and row["mrpc"] != "–" for row in papers)


def test_the_library_table_names_the_shipped_minilm_backbone_without_its_owner(tmp_path, capsys):
    assert main(["sources", "list", "--library", str(tmp_path)]) == 0
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| shipped:minilm-cpu-v2/mnli")]
    assert [row[1:3] for row in rows] == [["all-MiniLM-L6-v2", "mnli"]]


V2 = FEWSHOT.parent / "minilm-fewshot-v2"


def v2_transfer(method: str, task: str, k: int) -> dict[int, dict]:
    """Draw -> result of the v2 study's transfer configuration of `method` on `task` at `k` (not the
    oracle, whose sources are the target itself)."""
    found = {}
    for path in (V2 / method / task).glob(f"*/k{k}-draw*-seed0.json"):
        result = json.loads(path.read_text())
        if result["identity"]["method_config"].get("sources") != task:
            found[result["run"]["draw"]] = result
    return found


@pytest.mark.parametrize("method", ["spot-t", "mpt"])
@pytest.mark.parametrize("task", ["rte", "mrpc"])
def test_the_v2_study_pairs_transfer_and_pt_by_draw_on_the_whole_dev_set(task, method, shared_data_cpu, capsys):
    """leaderboards/minilm-fewshot-v2 at k = 16: 12 draws a side, each tested on the whole official
    dev set (RTE 277, MRPC 408 rows). `bench compare` pairs the two methods by draw: its paired p
    is scipy's ttest_rel on the committed scores, its difference their mean difference."""
    transfer, pt = v2_transfer(method, task, 16), v2_transfer("pt", task, 16)
    assert sorted(transfer) == sorted(pt) == list(range(12))
    a, b = (np.array([runs[d]["test"][task]["metrics"]["accuracy"] for d in range(12)]) for runs in (transfer, pt))
    assert len(transfer[0]["predictions"][task]) == {"rte": 277, "mrpc": 408}[task]
    folders = [runs[0]["run"]["configuration"] for runs in (transfer, pt)]
    assert main(["compare", *folders, "--results", str(V2), "--resamples", "2000", "--json"]) == 0
    [cell] = [t for t in json.loads(capsys.readouterr().out)["tasks"] if t["task"] == task]
    assert cell["test"]["design"] == "paired" and cell["test"]["n"] == 12
    assert cell["test"]["units_p"] == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-9)
    assert cell["test"]["difference"] == pytest.approx((a - b).mean())
