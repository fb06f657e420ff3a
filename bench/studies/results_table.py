"""A results folder as one flat table (`bench results RESULTS --format csv|jsonl`), for pandas or a spreadsheet.

One row per run × task × split × metric: the best epoch's dev score (what the run selected
its checkpoint on) and the test score, with the run's configuration beside it: who ran
(method, task set, seed, few-shot draw, backbone, preset, profile, configuration key) and
with what (every resolved method option as `option.NAME`, every training setting as
`train.NAME`). Columns come in a fixed order: the run's fields, then the options and
settings of all the runs, sorted, blank where a run's method has no such option; so two
exports of the same study have the same header, and `pd.read_csv` gives one column per field.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import NamedTuple

from bench.core.identity import flatten
from bench.core.registry import UsageError
from bench.core.results import load_results

RUN_COLUMNS = ("method", "tasks", "task", "split", "metric", "value", "seed", "draw", "k_shot", "backbone", "preset",
               "profile", "configuration")
SPLITS = ("dev", "test")
"""Sections of a results file: `dev` holds the best epoch's dev scores."""


def configuration_columns(result: dict) -> dict:
    """The run's method options and training settings as `option.NAME` / `train.NAME`."""
    identity = result["identity"]
    return flatten({"option": identity["method_config"], "train": identity["train"]})


def result_rows(result: dict) -> list[dict]:
    """One run's rows: its tasks in run order, dev then test, each task's metrics in their order."""
    run = result["run"]
    shared = {"method": run["method"], "tasks": "+".join(run["tasks"]), "seed": run["seed"], "draw": run["draw"],
              "k_shot": run["k_shot"], "backbone": run["backbone"], "preset": run["preset"],
              "profile": run["profile"], "configuration": run["configuration"]}
    options = configuration_columns(result)
    return [{**shared, "task": task, "split": split, "metric": metric, "value": value, **options}
            for task in run["tasks"] for split in SPLITS for metric, value in result[split][task]["metrics"].items()]


class Table(NamedTuple):
    columns: list[str]
    rows: list[dict]
    runs: int
    left_out: str
    """What was left out and why (results of another schema version, runs without test
    scores), as the leaderboard leaves them out; '' when nothing was."""


def table(directory: Path, skip_unreadable: bool = False) -> Table:
    """Every results file under `directory`, read as the leaderboard reads them."""
    if not Path(directory).is_dir():
        raise UsageError(f"results directory {str(directory)!r} does not exist")
    loaded = load_results(directory, skip_unreadable)
    rows = [row for result in loaded.results for row in result_rows(result)]
    extra = sorted({name for row in rows for name in row} - set(RUN_COLUMNS))
    return Table([*RUN_COLUMNS, *extra], rows, len(loaded.results), loaded.note())


def cell(value):
    """A CSV cell: lists and mappings (e.g. `train.adam_betas`) as JSON, absent as blank."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def render(columns: list[str], rows: list[dict], fmt: str) -> str:
    """CSV with a header, or JSON lines (each row with every column, null where absent)."""
    if fmt == "jsonl":
        return "".join(json.dumps({name: row.get(name) for name in columns}) + "\n" for row in rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([cell(row.get(name)) for name in columns] for row in rows)
    return out.getvalue()
