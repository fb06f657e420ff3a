"""Results written before the package layout (tests/data/pre_layout: `bench run --method pt --tasks cb
--profile smoke` on the flat bench/ of commit d4cc08d) are still read, and keyed, by today's code."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.cli import main
from helpers import board_rows
from bench.core.identity import configuration_key

PRE_LAYOUT = Path(__file__).parent / "data" / "pre_layout"


def copied(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    shutil.copytree(PRE_LAYOUT, folder)
    return folder


def test_configuration_key_of_an_old_result_is_its_folder():
    (path,) = PRE_LAYOUT.glob("*/*/*/seed0.json")
    result = json.loads(path.read_text())
    assert configuration_key(result["identity"]) == path.parent.name == "422668d01cd3"


def test_leaderboard_reads_an_old_result(tmp_path, capsys):
    folder = copied(tmp_path)
    assert main(["leaderboard", str(folder)]) == 0
    out = capsys.readouterr().out
    [row] = [row for row in board_rows(out) if row["method"] == "pt"]
    assert (row["setting"], row["backbone"], row["cb"]) == ("single-task", "tiny-t5 (profile smoke)", "0.0")


def test_results_table_reads_an_old_result(tmp_path, capsys):
    folder = copied(tmp_path)
    assert main(["results", str(folder), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert rows and {row["task"] for row in rows} == {"cb"} and {row["method"] for row in rows} == {"pt"}
