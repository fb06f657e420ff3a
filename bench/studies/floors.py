"""`bench floors RESULTS_DIR [--data-dir DIR[:DIR...]] [--write]`: every result's floor, and
adding it to results made before floors were recorded.

A run collapsed when it scores at or below its floor: the best constant answer on the split it
is scored on (bench/pipeline/evaluation.py `floor_baseline`). Older results carry only their
trained majority, the most frequent label of their own training rows, which for a few-shot draw
can be the test split's rarer label (MRPC's 16-row draw 0 answers "0": accuracy 31.9 on a test
split whose floor is 68.1), so boards built from them hold runs to the wrong floor (they fall
back to it and say so: bench/core/baselines.py). This recomputes each such result's floor from
the test examples it was scored on, re-loaded and checked against its recorded fingerprint as
`bench compare` does, prints the floors per task and test split, and with `write` adds
`baselines.floor` to the files that lack it, everything else in a file left as it was. Nothing
is written unless every floor could be computed.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from bench.core.baselines import has_test_floor
from bench.core.config import RunConfig
from bench.core.registry import UsageError
from bench.core.results import read_results, tabled, write_json
from bench.pipeline.evaluation import floor_baseline, has_floor
from bench.studies.compare import rebased, scored_examples
from tasks.loading import absolute_roots
from tasks.base import DataError
from tasks.registry import TASKS


def floors_command(directory: Path, data_dir: str | None, write: bool) -> str:
    """The floors table of `directory`'s results, after adding the missing floors where `write`."""
    roots = absolute_roots(data_dir) if data_dir else None  # a bad --data-dir is refused before any work
    found = result_files(directory)
    if not found:
        raise UsageError(f"no results in {directory}")
    computed = {path: computed_floors(path, result, roots) for path, result in found.items() if not has_test_floor(result)}
    if write:
        for path, floors in computed.items():
            write_json(path, with_floors(found[path], floors))
    return floors_table(found, computed) + summary(directory, len(found), len(computed), write)


def result_files(directory: Path) -> dict[Path, dict]:
    """The runs the tables read (`load_results`': this schema version, test evaluated), by path:
    adding a floor writes to them. An unreadable results file is refused (`read_results`)."""
    readable, _ = read_results(directory)
    return {path: data for path, data in readable if tabled(data)}


def computed_floors(path: Path, result: dict, data_dir: str | None) -> dict[str, dict]:
    """Task -> the floor of the test examples the result was scored on (tasks without one left
    out, as a run records them), read from `data_dir` (`--data-dir`) instead of the recorded folders
    where given; a test split whose fingerprint differs from the recorded one is refused."""
    [scored] = rebased([result], data_dir)
    protocol = RunConfig.from_dict(result).protocol
    floors = {}
    for name in [name for name in result["test"] if has_floor(TASKS.get(name))]:
        try:
            examples = scored_examples(scored, name)
        except (UsageError, DataError) as error:
            raise UsageError(f"{path}: no floor computed: {error}") from None
        floors[name] = floor_baseline(TASKS.get(name), examples, protocol)
    return floors


def with_floors(result: dict, floors: dict[str, dict]) -> dict:
    """The result with `baselines.floor` added after its other baselines, nothing else changed."""
    return {**result, "baselines": {**result.get("baselines", {}), "floor": floors}}


def floors_table(found: dict[Path, dict], computed: dict[Path, dict]) -> str:
    """A row per task, test split (fingerprint) and metric: the floor, every constant answer that
    reaches it, the results scored on that split and how many of them lack a recorded floor."""
    groups: dict[tuple, list[Path]] = defaultdict(list)
    for path, result in found.items():
        floors = computed.get(path, result["baselines"].get("floor", {}))
        for task, test in result["test"].items():
            key = (task, result["data"][task]["fingerprints"]["test"], test["n"], json.dumps(floors.get(task)))
            groups[key].append(path)
    rows = []
    for (task, split, n, floor), paths in sorted(groups.items()):
        lacking = sum(path in computed for path in paths)
        record = json.loads(floor)
        for metric in record["metrics"] if record else [None]:
            cells = ([metric, f"{record['metrics'][metric]:.1f}", ", ".join(record["answers"][metric])] if metric
                     else ["–", "none", "no constant answer (open-ended targets)"])
            rows.append([task, split, n, *cells, len(paths), lacking])
    headers = ["task", "test split", "n", "metric", "floor", "constant answers", "results", "without a floor"]
    return tabulate(rows, headers, tablefmt="github", disable_numparse=True) + "\n"


def summary(directory: Path, results: int, lacking: int, write: bool) -> str:
    """What happened, and what to do where floors are missing."""
    if not lacking:
        return f"every one of the {results} results records its floors\n"
    if write:
        return f"floors added to {lacking} of {results} results\n"
    return f"{lacking} of {results} results lack floors: `bench floors {directory} --write` adds them\n"
