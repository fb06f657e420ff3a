"""Results that travel: a committed board copied to a machine whose official files lie elsewhere
rescores with `--data-dir` (the results record absolute folders), to the very board committed."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.cli import main

SOURCES = Path(__file__).resolve().parent.parent / "leaderboards" / "minilm-sources"
COMMITTED_BOARD = SOURCES.with_suffix(".md")  # leaderboards/minilm-sources.sh: `--compare-to head-only`


@pytest.fixture
def moved(tmp_path) -> Path:
    """leaderboards/minilm-sources as on another machine: every result records a data folder that
    does not exist here."""
    folder = tmp_path / "moved"
    shutil.copytree(SOURCES, folder)
    for path in folder.rglob("*.json"):
        result = json.loads(path.read_text())
        result["config"]["data_dir"] = "/elsewhere/data-cpu"
        path.write_text(json.dumps(result))
    return folder


def test_a_moved_board_names_the_way_out(moved, capsys):
    assert main(["leaderboard", str(moved), "--compare-to", "head-only"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/elsewhere/data-cpu/glue/" in err and "pass --data-dir DIR[:DIR...]" in err


def test_a_moved_board_rebuilds_with_data_dir(moved, shared_data_cpu, capsys):
    assert main(["leaderboard", str(moved), "--compare-to", "head-only", "--data-dir", str(shared_data_cpu)]) == 0
    rebuilt = capsys.readouterr().out.replace(str(moved), "leaderboards/minilm-sources")
    assert rebuilt.strip() == COMMITTED_BOARD.read_text().strip()


def test_compare_rescores_a_moved_folder_with_data_dir(moved, shared_data_cpu, capsys):
    args = ["compare", "pt", "head-only", "--results", str(moved), "--resamples", "200", "--json"]
    assert main(args) == 2 and "pass --data-dir" in capsys.readouterr().err
    assert main([*args, "--data-dir", str(shared_data_cpu)]) == 0
    cells = json.loads(capsys.readouterr().out)["tasks"]
    recorded = {}
    for path in moved.rglob("seed*.json"):
        result = json.loads(path.read_text())
        for task, scores in result["test"].items():
            recorded[result["run"]["method"], task] = scores["metrics"]
    assert {cell["task"] for cell in cells} == {"qnli", "mrpc", "sst2"}
    for cell in cells:  # the recorded scores' difference, with the test set's variance from the rescored predictions
        expected = recorded["pt", cell["task"]][cell["metric"]] - recorded["head-only", cell["task"]][cell["metric"]]
        assert cell["test"]["difference"] == pytest.approx(expected) and cell["test"]["var_test"] > 0


def test_data_dir_is_refused_where_nothing_is_rescored_or_missing(moved, capsys, tmp_path):
    assert main(["leaderboard", str(moved), "--data-dir", str(tmp_path)]) == 2
    assert "give --compare-to METHOD too" in capsys.readouterr().err
    assert main(["leaderboard", str(moved), "--compare-to", "head-only", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert f"--data-dir '{tmp_path / 'nowhere'}' is not a directory" in capsys.readouterr().err
