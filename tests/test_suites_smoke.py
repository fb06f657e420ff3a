"""`bench run --profile smoke --suite S --method pt` passes offline for every suite."""
from __future__ import annotations

import json

import pytest

from bench.cli import main
from helpers import board_rows
from tasks.registry import SUITES


@pytest.mark.parametrize("suite", SUITES.names())
def test_every_suite_runs_offline_on_fixtures(tmp_path, suite):
    assert main(["run", "--method", "pt", "--suite", suite, "--profile", "smoke", "--quiet", "--output", str(tmp_path)]) == 0
    results = sorted(tmp_path.rglob("seed0.json"))
    assert sorted(p.parent.parent.name for p in results) == sorted(SUITES.get(suite))
    for path in results:
        result = json.loads(path.read_text())
        (task,) = result["run"]["tasks"]
        assert result["data"][task]["source"]["kind"] == "fixtures"
        assert result["test"][task]["n"] == result["data"][task]["sizes"]["test"] > 0
    board = (tmp_path / "leaderboard.md").read_text()
    assert f"## {suite}" in board
    header = list(board_rows(board[board.index(f"## {suite}"):])[0])
    assert all(task in header for task in SUITES.get(suite))
    if suite == "nlg":  # the generation tokenizer is recorded with E2E's scores and named on the board
        from tasks.metrics import generation_tokenizer
        from bench.studies.report import TOKENIZER_NAMES

        e2e = json.loads(next(p for p in results if p.parent.parent.name == "e2e").read_text())
        assert e2e["test"]["e2e"]["details"] == {"tokenizer": generation_tokenizer()}
        assert f"ROUGE-L and CIDEr-D tokenised with {TOKENIZER_NAMES[generation_tokenizer()]}." in board
