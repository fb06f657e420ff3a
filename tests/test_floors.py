"""Floors from the split a run is scored on (issue 21, point 5): the best constant answer per metric
on the test split (`baselines.floor`), what `collapsed` and the boards hold runs to, and `bench
floors` adding it to results made before it was recorded.

Expected values are counted by hand, or from the data files by code that shares nothing with the
floor's (the label counts of a test split, F1 = 2·positives / (positives + n) for always "1")."""
from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench.cli import main, score_cells
from bench.core.baselines import has_test_floor, result_floors, stage_floor
from bench.core.presets import PRESETS
from bench.pipeline.evaluation import EVERY_CONSTANT, floor_baseline, majority_baseline
from bench.studies.floors import computed_floors
from bench.studies.report import weak_stages
from bench.studies.stats import RunScore, run_scores, stability
from helpers import result_file
from helpers import board_rows as scores_table
from methods.library import entry_scores
from tasks import metrics
from tasks.base import Example
from tasks.registry import TASKS

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "leaderboards" / "minilm-fewshot"
PAPER = PRESETS.get("paper")


def examples(task: str, targets: list[str], groups: list[int] | None = None) -> list[Example]:
    return [Example(f"source {i}", target, task, {"group": groups[i]} if groups else {}) for i, target in enumerate(targets)]


# -- the floor of a split, by hand ------------------------------------------------------------------


def test_each_metric_has_its_own_best_constant():
    """MRPC-like split of 3 "0" and 1 "1": accuracy is best answering "0" (3/4), F1 answering "1"
    (precision 1/4, recall 1: 2·1/(1 + 4) = 0.4; always "0" has F1 0). The mean is the best
    constant's own mean, max((75 + 0) / 2, (25 + 40) / 2) = 37.5, not the mean of the floors (57.5)."""
    floor = floor_baseline(TASKS.get("mrpc"), examples("mrpc", ["0", "0", "1", "0"]), PAPER)
    assert floor["metrics"] == pytest.approx({"f1": 40.0, "accuracy": 75.0})
    assert floor["answers"] == {"f1": ["1"], "accuracy": ["0"]}
    assert floor["mean"] == pytest.approx(37.5) and floor["n"] == 4


def test_a_tie_names_every_answer_that_reaches_the_floor():
    floor = floor_baseline(TASKS.get("rte"), examples("rte", ["0", "1", "1", "0", "0", "1"]), PAPER)
    assert floor["metrics"] == {"accuracy": 50.0} and floor["answers"] == {"accuracy": ["0", "1"]}


def test_ties_are_within_1e_9_and_the_protocol_picks_the_metric(monkeypatch):
    """The floor scores through `metric_function`, so a protocol's variant of a metric is the one
    scored (here a stand-in for accuracy behind the official code's switch); two answers 1e-12
    apart tie, 1e-6 apart do not."""
    gap = {"value": 1e-12}
    variant = lambda predictions, examples, labels=None: 50.0 + (gap["value"] if predictions[0] == "1" else 0.0)
    monkeypatch.setitem(metrics.PROTOCOL_VARIANTS, "accuracy", ("matthews_invalid_class", variant))
    official, split = replace(PAPER, matthews_invalid_class=True), examples("rte", ["0", "0", "0", "1"])
    assert floor_baseline(TASKS.get("rte"), split, PAPER)["metrics"] == {"accuracy": 75.0}  # switch off: accuracy itself
    assert floor_baseline(TASKS.get("rte"), split, official)["answers"] == {"accuracy": ["0", "1"]}
    gap["value"] = 1e-6
    assert floor_baseline(TASKS.get("rte"), split, official)["answers"] == {"accuracy": ["1"]}


def test_a_three_label_task_scores_every_label():
    """CB, 2 × "0", 1 × "1", 1 × "2": accuracy 50 ("0"); macro F1 of always "0" = (2·0.5·1/1.5 + 0 + 0) / 3
    = 22.2, of always "1" or "2" = (0.4 + 0 + 0) / 3 = 13.3."""
    floor = floor_baseline(TASKS.get("cb"), examples("cb", ["0", "1", "0", "2"]), PAPER)
    assert floor["metrics"] == pytest.approx({"accuracy": 50.0, "macro_f1": 200 / 9})
    assert floor["answers"] == {"accuracy": ["0"], "macro_f1": ["0"]}


def test_multirc_scores_constants_by_question():
    """Questions a: 1, 0; b: 0, 0; c: 1. Always "1": tp 2, fp 3 (a's "0" and b's two), fn 0, so F1a
    2·2/(2·2 + 3) = 57.1, and EM 1/3 (c). Always "0": F1a 0, EM 1/3 (b): a tie on EM."""
    floor = floor_baseline(TASKS.get("multirc"), examples("multirc", ["1", "0", "0", "0", "1"], [0, 0, 1, 1, 2]), PAPER)
    assert floor["metrics"] == pytest.approx({"f1a": 400 / 7, "em": 100 / 3})
    assert floor["answers"] == {"f1a": ["1"], "em": ["0", "1"]}


def test_a_correlation_floor_is_zero():
    floor = floor_baseline(TASKS.get("stsb"), examples("stsb", ["1.0", "2.4", "4.8", "0.2"]), PAPER)
    assert floor["metrics"] == {"pearson": 0.0, "spearman": 0.0}
    assert floor["answers"] == {"pearson": [EVERY_CONSTANT], "spearman": [EVERY_CONSTANT]}


def test_open_ended_tasks_have_no_floor():
    squad = [Example("q", "Paris", "squad", {"answers": ["Paris"]})]
    assert floor_baseline(TASKS.get("squad"), squad, PAPER) is None
    assert majority_baseline(TASKS.get("squad"), squad, squad, PAPER) is None
    assert computed_floors(Path("x.json"), {"config": {}, "test": {"squad": {}}}, None) == {}  # nothing loaded


# -- MRPC k=16 draw 0 on the real rows ----------------------------------------------------------------


def split_labels(data_cpu: Path, folder: str, column: str) -> list[str]:
    """A GLUE task's test split labels as the paper preset makes it (tasks/splits.py `halve`): the
    dev file's rows shuffled by torch.randperm under seed 42, the second half."""
    with open(data_cpu / "glue" / folder / "dev.tsv", encoding="utf-8-sig", newline="") as handle:
        labels = [row[column] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(42)).tolist()
    return [labels[i] for i in order[len(labels) // 2:]]


def test_mrpc_test_split_floor_is_always_positive(shared_data_cpu):
    from tasks.loading import DataSource, load_examples

    labels = split_labels(shared_data_cpu, "MRPC", "Quality")
    assert (len(labels), labels.count("1")) == (204, 139)
    test = load_examples(TASKS.get("mrpc"), "test", DataSource("dir", str(shared_data_cpu)), PAPER, 42)
    floor = floor_baseline(TASKS.get("mrpc"), test, PAPER)
    assert floor["metrics"] == pytest.approx({"accuracy": 100 * 139 / 204, "f1": 100 * 2 * 139 / (139 + 204)})
    assert f"{floor['metrics']['accuracy']:.1f}" == "68.1" and floor["answers"] == {"f1": ["1"], "accuracy": ["1"]}


def committed(name: str, task: str = "mrpc") -> Path:
    """A committed PT result of the few-shot board."""
    [path] = sorted((COMMITTED / "pt" / task).glob(f"*/{name}"))
    return path


def copy_committed(dest: Path, names: list[tuple[str, str]]) -> list[Path]:
    """Copies of committed results under `dest` (folders kept), as made before floors: without
    `baselines.floor` (which `bench floors --write` may since have added to the committed ones)."""
    copies = []
    for task, name in names:
        source = committed(name, task)
        result = json.loads(source.read_text())
        result["baselines"].pop("floor", None)
        target = dest / source.relative_to(COMMITTED)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        copies.append(target)
    return copies


def floors_cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["floors", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def table(markdown: str) -> list[dict]:
    """The rows of the one markdown table in `markdown`, as dicts by its header."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[1:]]


def test_the_committed_draw_0_run_records_the_wrong_floor_and_gets_the_right_one(shared_data_cpu, tmp_path, capsys):
    [path] = copy_committed(tmp_path, [("mrpc", "k16-draw0-seed0.json")])
    before = json.loads(path.read_text())
    assert f"{before['baselines']['majority']['mrpc']['metrics']['accuracy']:.1f}" == "31.9"  # always "0": 65/204
    assert not has_test_floor(before) and result_floors(before) == before["baselines"]["majority"]
    assert run_scores([before])["mrpc"][(0, 0)].floor == before["baselines"]["majority"]["mrpc"]["metrics"]["accuracy"]
    code, out, err = floors_cli(capsys, str(tmp_path), "--data-dir", str(shared_data_cpu), "--write")
    assert (code, err) == (0, "")
    floor = json.loads(path.read_text())["baselines"]["floor"]["mrpc"]
    assert floor["metrics"]["accuracy"] == pytest.approx(100 * 139 / 204) and floor["answers"]["accuracy"] == ["1"]
    assert floor["metrics"]["f1"] == pytest.approx(100 * 278 / 343) and floor["n"] == 204


# -- collapsed ------------------------------------------------------------------------------------------


def fake(score: float, floor: float | None, majority: float = 31.9, seed: int = 0) -> dict:
    baselines = {"majority": {"mrpc": {"metrics": {"accuracy": majority, "f1": 0.0}}}}
    if floor is not None:
        baselines["floor"] = {"mrpc": {"metrics": {"accuracy": floor, "f1": 81.0}, "answers": {}, "mean": 0.0, "n": 204}}
    return {"run": {"seed": seed, "draw": 0}, "test": {"mrpc": {"metrics": {"accuracy": score, "f1": 50.0}}},
            "baselines": baselines}


def test_collapsed_is_at_or_below_the_test_floor_not_the_trained_majority():
    at, above, between = fake(68.1, 68.1, seed=0), fake(68.11, 68.1, seed=1), fake(50.0, 68.1, seed=2)
    scores = run_scores([at, above, between])["mrpc"]
    assert scores == {(0, 0): RunScore(68.1, 68.1), (1, 0): RunScore(68.11, 68.1), (2, 0): RunScore(50.0, 68.1)}
    stat = stability(list(scores.values()))
    assert (stat.collapsed, stat.floored) == (2, 3)  # 68.1 <= 68.1 and 50 <= 68.1 (above 31.9); 68.11 is not


def test_a_result_without_a_floor_falls_back_to_its_trained_majority():
    [old] = run_scores([fake(50.0, None)])["mrpc"].values()
    assert old == RunScore(50.0, 31.9) and stability([old]).collapsed == 0


# -- bench floors ---------------------------------------------------------------------------------------

MRPC_DRAWS = [("mrpc", f"k{k}-draw{d}-seed0.json") for k in (16, 64) for d in range(3)]


@pytest.fixture()
def copies(shared_data_cpu, tmp_path):
    """Six committed PT runs on MRPC (k = 16 and 64, 3 draws each) and one on RTE, without floors."""
    runs = tmp_path / "runs"
    return runs, copy_committed(runs, [*MRPC_DRAWS, ("rte", "k16-draw0-seed0.json")])


def test_write_adds_the_floor_and_changes_nothing_else(copies, shared_data_cpu, capsys):
    runs, paths = copies
    before = {path: json.loads(path.read_text()) for path in paths}
    code, out, err = floors_cli(capsys, str(runs), "--data-dir", str(shared_data_cpu))
    assert (code, err) == (0, "") and "7 of 7 results lack floors: `bench floors" in out
    assert {path: json.loads(path.read_text()) for path in paths} == before  # without --write nothing is written
    mrpc = [list(row.values())[3:] for row in table(out) if row["task"] == "mrpc"]
    assert mrpc == [["f1", "81.0", "1", "6", "6"], ["accuracy", "68.1", "1", "6", "6"]]
    code, out, err = floors_cli(capsys, str(runs), "--data-dir", str(shared_data_cpu), "--write")
    assert (code, err) == (0, "") and "floors added to 7 of 7 results" in out
    for path in paths:
        after = json.loads(path.read_text())
        floor = after["baselines"].pop("floor")
        assert after == before[path] and list(floor) == [after["run"]["tasks"][0]]
    assert list(json.loads(paths[0].read_text())["baselines"]) == ["majority", "floor"]
    assert not list(runs.rglob(".*"))  # no temporary file left beside the results
    code, out, _ = floors_cli(capsys, str(runs), "--data-dir", str(shared_data_cpu))
    assert "every one of the 7 results records its floors" in out
    assert [(row["task"], row["results"], row["without a floor"]) for row in table(out)] == [
        ("mrpc", "6", "0"), ("mrpc", "6", "0"), ("rte", "1", "0")]


def test_a_file_that_has_a_floor_is_never_rewritten(copies, shared_data_cpu, capsys):
    runs, paths = copies
    planted = json.loads(paths[0].read_text())
    planted["baselines"]["floor"] = {"mrpc": {"metrics": {"accuracy": 1.0, "f1": 2.0}, "answers": {"accuracy": ["0"], "f1": ["0"]},
                                              "mean": 1.5, "n": 204}}
    paths[0].write_text(json.dumps(planted))
    text = paths[0].read_text()
    code, out, _ = floors_cli(capsys, str(runs), "--data-dir", str(shared_data_cpu), "--write")
    assert code == 0 and "floors added to 6 of 7 results" in out
    assert paths[0].read_text() == text
    planted_rows = [row for row in table(out) if row["floor"] in ("1.0", "2.0")]  # shown as recorded, apart
    assert [(row["metric"], row["results"], row["without a floor"]) for row in planted_rows] == [("accuracy", "1", "0"),
                                                                                                  ("f1", "1", "0")]


def test_only_the_runs_the_tables_read_get_a_floor(copies, shared_data_cpu, capsys):
    """A sweep trial (test split not evaluated) and a result of another schema version are not
    the tables' runs: neither is counted nor written to."""
    runs, paths = copies
    trial = {**json.loads(paths[0].read_text()), "test_evaluated": False, "test": {}, "predictions": {}, "baselines": {}}
    other = {**json.loads(paths[1].read_text()), "schema_version": 1}
    extra = {runs / "sweep" / "seed0.json": trial, runs / "old" / "seed0.json": other}
    for path, data in extra.items():
        path.parent.mkdir()
        path.write_text(json.dumps(data))
    code, out, _ = floors_cli(capsys, str(runs), "--data-dir", str(shared_data_cpu), "--write")
    assert code == 0 and "floors added to 7 of 7 results" in out
    assert {path: json.loads(path.read_text()) for path in extra} == extra


def test_other_test_data_are_refused_before_anything_is_written(copies, shared_data_cpu, tmp_path, capsys):
    """MRPC's rows intact, RTE's labels flipped: the RTE result is read after the MRPC ones, and its
    refusal still leaves every file as it was."""
    runs, paths = copies
    data = tmp_path / "data"
    shutil.copytree(shared_data_cpu / "glue" / "MRPC", data / "glue" / "MRPC")
    rte = (shared_data_cpu / "glue" / "RTE" / "dev.tsv").read_text(encoding="utf-8")
    flipped = rte.replace("\tnot_entailment\n", "\tX\n").replace("\tentailment\n", "\tnot_entailment\n").replace("\tX\n", "\tentailment\n")
    assert flipped != rte
    (data / "glue" / "RTE").mkdir(parents=True)
    (data / "glue" / "RTE" / "dev.tsv").write_text(flipped, encoding="utf-8")
    texts = [path.read_text() for path in paths]
    code, out, err = floors_cli(capsys, str(runs), "--data-dir", str(data), "--write")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"bench: error: {paths[-1]}: no floor computed: the rte test data ")
    assert "differ from those the runs were scored on" in err
    assert [path.read_text() for path in paths] == texts


def test_bad_arguments_are_one_line(copies, tmp_path, capsys):
    runs, paths = copies
    texts = [path.read_text() for path in paths]
    code, _, err = floors_cli(capsys, str(runs), "--data-dir", str(tmp_path / "nowhere"), "--write")
    assert code == 2 and err == f"bench: error: --data-dir '{tmp_path / 'nowhere'}' is not a directory\n"
    code, _, err = floors_cli(capsys, str(tmp_path / "missing"))
    assert code == 2 and err == f"bench: error: results directory '{tmp_path / 'missing'}' does not exist\n"
    (tmp_path / "empty").mkdir()
    code, _, err = floors_cli(capsys, str(tmp_path / "empty"))
    assert code == 2 and err == f"bench: error: no results in {tmp_path / 'empty'}\n"
    code, _, err = floors_cli(capsys, str(runs), "--data-dir", str(tmp_path / "empty"), "--write")  # no MRPC file there
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"bench: error: {runs / 'pt' / 'mrpc'}/")  # the first result in path order
    assert f".json: no floor computed: {tmp_path / 'empty' / 'glue' / 'MRPC' / 'dev.tsv'}: missing" in err
    assert [path.read_text() for path in paths] == texts


# -- the board ----------------------------------------------------------------------------------------


def board_rows(capsys, runs: Path) -> tuple[str, dict[str, list[dict]]]:
    """The board's text, and its rows by first cell."""
    capsys.readouterr()
    assert main(["leaderboard", str(runs)]) == 0
    board = capsys.readouterr().out
    rows: dict[str, list[dict]] = {}
    for row in scores_table(board):
        rows.setdefault(row["method"], []).append(row)
    return board, rows


def test_the_board_holds_runs_to_the_test_floor_after_write(copies, shared_data_cpu, capsys):
    runs, paths = copies
    results = [json.loads(path.read_text()) for path in paths[:3]]  # MRPC k = 16, draws 0-2
    scores = [r["test"]["mrpc"]["metrics"]["accuracy"] for r in results]
    majorities = [r["baselines"]["majority"]["mrpc"]["metrics"]["accuracy"] for r in results]
    rte = json.loads(paths[-1].read_text())
    rte_score = rte["test"]["rte"]["metrics"]["accuracy"]
    board, rows = board_rows(capsys, runs)
    assert "Floors of 7 results are their training rows' majority (made before test floors; " \
           f"`bench floors {runs} --write` adds them)." in board
    assert "*best constant (test)*" not in rows  # no test floor recorded: none is shown
    assert rows["*trained majority (16-row draws)*"][0]["mrpc"] == f"{sum(majorities) / 3:.1f}"
    old_collapsed = sum(s <= m for s, m in zip(scores, majorities)) + (
        rte_score <= rte["baselines"]["majority"]["rte"]["metrics"]["accuracy"])
    assert rows["pt"][0]["setting"] == "k=16" and rows["pt"][0]["collapsed"] == f"{old_collapsed}/4"

    assert main(["floors", str(runs), "--data-dir", str(shared_data_cpu), "--write"]) == 0
    board, rows = board_rows(capsys, runs)
    assert "Floors of" not in board and "at or below their floor: the best constant answer" in board
    best = {row["setting"]: row for row in rows["*best constant (test)*"]}
    assert best["k=16"]["mrpc"] == best["k=64"]["mrpc"] == f"{100 * 139 / 204:.1f}" == "68.1"
    assert best["k=64"]["rte"] == "–"
    assert [row["setting"] for row in rows["*trained majority (16-row draws)*"]] == ["k=16"]
    assert rows["*trained majority (16-row draws)*"][0]["mrpc"] == f"{sum(majorities) / 3:.1f}"
    assert "*trained majority (64-row draws)*" not in rows  # every 64-row draw's majority is the floor's "1"
    rte_labels = split_labels(shared_data_cpu, "RTE", "label")
    rte_floor = 100 * max(rte_labels.count("entailment"), rte_labels.count("not_entailment")) / len(rte_labels)
    assert best["k=16"]["rte"] == f"{rte_floor:.1f}"
    new_collapsed = sum(s <= 100 * 139 / 204 for s in scores) + (rte_score <= rte_floor)
    assert rows["pt"][0]["collapsed"] == f"{new_collapsed}/4" and new_collapsed != old_collapsed


# -- new runs, and the source-prompt library ------------------------------------------------------------


def test_a_run_records_its_floor_beside_its_trained_majority(tmp_path, capsys):
    """The MRPC fixture's test split (its validation file's 24 rows, shuffled under seed 42, second
    half): 5 "1" and 7 "0", so accuracy is best answering "0" (7/12) and F1 answering "1" (10/17)."""
    rows = [json.loads(line) for line in (REPO / "tasks" / "fixtures" / "mrpc" / "validation.jsonl").read_text().splitlines()]
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(42)).tolist()
    labels = [str(rows[i]["label"]) for i in order[len(rows) // 2:]]
    positives, n = labels.count("1"), len(labels)
    assert main(["run", "--method", "pt", "--tasks", "mrpc", "--profile", "smoke", "--epochs", "1", "--seeds", "0",
                 "--quiet", "--output", str(tmp_path)]) == 0
    path = result_file(tmp_path, "pt", "mrpc")
    result = json.loads(path.read_text())
    floor = result["baselines"]["floor"]["mrpc"]
    assert floor["metrics"] == pytest.approx({"f1": 200 * positives / (positives + n), "accuracy": 100 * max(positives, n - positives) / n})
    assert floor["answers"] == {"f1": ["1"], "accuracy": ["1" if positives > n - positives else "0"]} and floor["n"] == n
    assert result["baselines"]["majority"]["mrpc"]["n"] == n  # the trained majority stays, under its own key
    stripped = {**result, "baselines": {"majority": result["baselines"]["majority"]}}
    path.write_text(json.dumps(stripped))
    assert main(["floors", str(tmp_path), "--write"]) == 0  # the fixtures, re-loaded: the floor the run wrote
    assert json.loads(path.read_text())["baselines"]["floor"] == result["baselines"]["floor"]


def library_entry(tmp_path: Path, floor: bool) -> dict:
    """A library entry whose results score 70 on MRPC's test mean: above the trained majority's
    mean (15.9, always "0"), below the floor's (74.6, always "1")."""
    baselines = {"majority": {"mrpc": {"metrics": {}, "mean": 15.9}}}
    if floor:
        baselines["floor"] = {"mrpc": {"metrics": {}, "answers": {}, "mean": 74.6, "n": 204}}
    results = tmp_path / f"results-{floor}.json"
    results.write_text(json.dumps({"dev": {"mrpc": {"mean": 72.0}}, "test": {"mrpc": {"mean": 70.0}}, "baselines": baselines,
                                   "epochs": [{"dev_mean": 72.0}], "timing": {"train_seconds": 3.0}}))
    return {"results": str(results), "spec": {"tasks": ["mrpc"]}}


def test_a_source_prompt_is_weak_at_or_below_its_floor(tmp_path):
    scores = entry_scores(library_entry(tmp_path, floor=True))
    assert scores["floor"] == {"mrpc": 74.6} and "majority" not in scores and scores["weak"] == ["mrpc"]
    assert stage_floor(scores) == ("floor", {"mrpc": 74.6})
    assert score_cells(scores, ["mrpc"]) == ["72.0", "70.0", "74.6", "yes"]
    stage = {"method": "pt", "tasks": ["mrpc"], **scores}
    assert weak_stages([{"run": {"tasks": ["rte"]}, "stages": [stage]}]) == ["pt on mrpc (test 70.0 ≤ floor 74.6)"]


def test_an_entry_made_before_floors_is_held_to_its_trained_majority_and_says_so(tmp_path):
    scores = entry_scores(library_entry(tmp_path, floor=False))
    assert scores["majority"] == {"mrpc": 15.9} and "floor" not in scores and scores["weak"] == []
    assert stage_floor(scores) == ("training majority", {"mrpc": 15.9})
    assert score_cells(scores, ["mrpc"]) == ["72.0", "70.0", "15.9 (training majority)", ""]
    stage = {"method": "pt", "tasks": ["mrpc"], **scores, "weak": ["mrpc"]}
    assert weak_stages([{"run": {"tasks": ["rte"]}, "stages": [stage]}]) == ["pt on mrpc (test 70.0 ≤ training majority 15.9)"]
