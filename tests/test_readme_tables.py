"""The README's copy of a committed board says what the board says: every row it shows is a row of
the board, cell for cell (a board rebuilt and a README left behind is a docs defect)."""
from __future__ import annotations

from pathlib import Path

from helpers import board_rows

ROOT = Path(__file__).resolve().parent.parent


def readme_table(heading: str) -> list[dict[str, str]]:
    """The first table after `heading` in the README, as rows by its header."""
    text = (ROOT / "README.md").read_text()
    return board_rows(text[text.index(heading):])


def test_the_minilm_glue_table_is_the_boards():
    board = (ROOT / "leaderboards" / "minilm-glue.md").read_text()
    scores = {(row["method"], row["differs in"]): row for row in board_rows(board)}
    costs = {row["#"]: row for row in board_rows(board[board.index("Cost of each row"):])}
    shown = readme_table("### What the MiniLM leaderboard shows")
    assert len(shown) == 10
    for row in shown:
        match = scores[row["method"], row["differs in"]]
        for column in ("sst2", "mrpc", "rte", "avg", "collapsed"):
            assert row[column] == match[column], (row["method"], column)
        if match["#"]:
            assert row["time/run"] == costs[match["#"]]["time/run"], row["method"]
