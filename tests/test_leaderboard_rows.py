"""Which results share a leaderboard row and how rows are told apart: settings, data variants,
and `--per-task` options (a leave-one-out design's sources) merged into one row per method."""
from __future__ import annotations

import shutil

import pytest

from bench.cli import main
from bench.studies.report import oracle_label
from helpers import board_rows

SMOKE = ["--profile", "smoke", "--quiet", "--epochs", "1"]


def table_rows(markdown: str, method: str) -> list[dict[str, str]]:
    return [row for row in board_rows(markdown) if row["method"] == method]


@pytest.fixture(scope="module")
def leave_one_out(tmp_path_factory):
    """spot-g on cb from mnli's prompt and on wic from qnli's, and pt on both."""
    root = tmp_path_factory.mktemp("loo")
    output, library = root / "runs", root / "library"
    for task, sources in (("cb", "mnli"), ("wic", "qnli")):
        assert main(["run", "--method", "spot-g", "--tasks", task, *SMOKE, "--option", f"sources={sources}",
                     "--output", str(output), "--library", str(library)]) == 0
    assert main(["run", "--method", "pt", "--tasks", "cb,wic", *SMOKE, "--output", str(output)]) == 0
    return output


def board(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(["leaderboard", *argv]) == 0
    return capsys.readouterr().out


def test_without_per_task_each_source_set_is_its_own_row(leave_one_out, capsys):
    rows = table_rows(board(capsys, str(leave_one_out)), "spot-g")
    assert [(row["differs in"], row["cb"] != "–", row["wic"] != "–", row["avg"]) for row in rows] == [
        ("sources=mnli", True, False, "–"), ("sources=qnli", False, True, "–")]


def test_per_task_sources_make_one_row_per_method(leave_one_out, capsys):
    markdown = board(capsys, str(leave_one_out), "--per-task", "sources")
    [spot] = table_rows(markdown, "spot-g")
    assert spot["differs in"] == "sources per task" and spot["runs"] == "1"
    assert spot["cb"] != "–" and spot["wic"] != "–" and spot["avg"] != "–"
    [pt] = table_rows(markdown, "pt")
    assert pt["differs in"] == ""  # PT has no sources


def test_an_unknown_per_task_option_is_one_line(leave_one_out, capsys):
    assert main(["leaderboard", str(leave_one_out), "--per-task", "sourcez"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: --per-task sourcez: not a method option of these results; valid: ")
    assert "sources" in err and err.count("\n") == 1


def test_a_task_whose_data_changed_gets_a_data_variant_row(tmp_path, shared_data, capsys):
    output = tmp_path / "runs"
    folder = tmp_path / "data"
    shutil.copytree(shared_data / "superglue" / "CB", folder / "superglue" / "CB")
    run = ["run", "--method", "pt", "--tasks", "cb", *SMOKE, "--data-dir", str(folder), "--output", str(output)]
    assert main(run) == 0
    val = folder / "superglue" / "CB" / "val.jsonl"
    val.write_text("".join(val.read_text().splitlines(keepends=True)[:-1]))  # one record fewer
    import bench.pipeline.runner
    import tasks.loading

    for cache in (tasks.loading.read_rows, bench.pipeline.runner.cached_examples, bench.pipeline.runner.cached_fingerprint):
        cache.cache_clear()  # as in a new process
    assert main(run) == 0
    rows = table_rows(board(capsys, str(output)), "pt")
    assert sorted(row["differs in"] for row in rows) == ["", "data variant 2"]


def result(task: str, method: str = "spot-t", **options) -> dict:
    return {"run": {"tasks": [task], "method": method}, "identity": {"method_config": options}}


def test_a_row_whose_sources_include_its_target_is_an_oracle():
    assert oracle_label([result("mrpc", sources="mrpc")]) == ["oracle: own task as source"]
    assert oracle_label([result("rte", "mpt", source_tasks="mnli,rte")]) == ["oracle: own task as source"]
    assert oracle_label([result("rte", sources="mnli,qnli"), result("mrpc", sources="qqp,mrpc")]) != []
    assert oracle_label([result("mrpc", sources="qqp,mnli,qnli,sst2")]) == []
    # an init, not a source prompt read
    assert oracle_label([result("mrpc", "attempt", sources="qqp,mnli", init_source="mrpc")]) == []
    assert oracle_label([result("mrpc", "pt")]) == []
    # a run without source options is read without its method's config: an option the config has
    # since dropped does not make the results unreadable
    assert oracle_label([result("mrpc", "pt", retired_option=3)]) == []
    # the sources as the method resolves them: a suite's tasks, names written with spaces
    assert oracle_label([result("rte", "mpt", source_tasks="glue")]) == ["oracle: own task as source"]
    assert oracle_label([result("mrpc", sources="qqp, mrpc")]) == ["oracle: own task as source"]


def test_the_oracle_is_labelled_on_the_board(leave_one_out, tmp_path, capsys):
    output = tmp_path / "runs"
    shutil.copytree(leave_one_out, output)
    assert main(["run", "--method", "spot-g", "--tasks", "cb", *SMOKE, "--option", "sources=cb",
                 "--output", str(output), "--library", str(tmp_path / "library")]) == 0
    rows = table_rows(board(capsys, str(output)), "spot-g")
    assert sorted(row["differs in"] for row in rows) == [
        "sources=cb, oracle: own task as source", "sources=mnli", "sources=qnli"]
    # --per-task sources merges the leave-one-out runs into one row, never the oracle with them
    rows = table_rows(board(capsys, str(output), "--per-task", "sources"), "spot-g")
    assert sorted((row["differs in"], row["cb"] != "–", row["wic"] != "–") for row in rows) == [
        ("sources per task", True, True), ("sources=cb, oracle: own task as source", True, False)]
