"""The README's copy of a committed board says what the board says: every row it shows is a row of
the board, cell for cell (a board rebuilt and a README left behind is a docs defect)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

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


def numbers(text: str) -> list[float]:
    """The numbers of a table cell, the README's minus sign read as one."""
    return [float(n) for n in re.findall(r"[-+]?\d+(?:\.\d+)?", text.replace("−", "-"))]


def test_the_fewshot_v2_table_is_the_boards():
    """Every cell of the README's v2 table, `Δ [CI] (MDE)` of a method against PT on one target and
    k, is the board's verdict row, rounded; the PT row is the board's PT score."""
    board = (ROOT / "leaderboards" / "minilm-fewshot-v2.md").read_text()
    against = {(row["task"], row["setting"], row["method"]): row
               for row in board_rows(board[board.index("## Against pt"):])}
    methods = {"head-only": "head-only", "SPoT-g": "spot-g", "SPoT-t": "spot-t (sources per task)",
               "ATTEMPT (fresh target, T = 50)": "attempt (sources per task)",
               "MPT": "mpt",
               "*oracle*: SPoT-t from MRPC's own prompt": "spot-t (sources=mrpc, oracle: own task as source)"}
    shown = readme_table("#### The study with the power to answer (v2)")
    cells = 0
    for row in shown:
        for column, text in row.items():
            if column == "method" or not text:
                continue
            task, setting = column.lower().split(" ")
            if row["method"] == "PT (score)":
                scores = {r["pt"] for (t, s, _), r in against.items() if (t, s) == (task, setting)}
                assert scores == {text}, column
                continue
            if row["method"].startswith("*floor"):
                continue
            match = against[task, setting, methods[row["method"]]]
            # the README rounds the board's two decimals to one: within half a unit of the last digit
            expected = numbers(f"{match['Δ']} {match['95% CI']}") + numbers(match["MDE"])
            assert numbers(text) == pytest.approx(expected, abs=0.051), (row["method"], column)
            assert re.fullmatch(r"[−+]\d+\.\d \[[−+]\d+\.\d, [−+]\d+\.\d\] \(\d+\.\d\)", text), text
            cells += 1
    assert cells == sum(1 for (_, _, method) in against if method != "pt")  # every tested cell is shown
