"""`bench baseline` and `bench check`: did a change make a score drop?

A baseline file records, per (method, few-shot k, task, backbone, preset,
profile), the mean, standard deviation and number of runs of the task's report
metric, the data it was scored on (source kind and content fingerprints) and the
configuration identity it came from. `bench check` recomputes the same from a new
results folder and calls a score regressed when its mean drops by more than

    max(margin, z × std)        (the baseline's across-seed std; defaults: 1.0 point, z = 2)

as the protocol has it (protocol.md, "Regression checks"). The margin absorbs what
is not noise between seeds but still not a regression (another machine's floating
point, another thread count); the z-term the training instability itself: a
configuration whose seeds spread widely tolerates a larger drop. It is the std of
the runs, not the standard error of the baseline's mean (std / √n): a change that
moves any random draw (initialisation, batch order, dropout) draws every seed's
noise anew, so both means carry it and their difference spreads by std × √(2/n),
the std itself for the 2 seeds of this project's CI. A single-run baseline has no
std: only the margin applies. A check across different backbones, presets,
profiles, data, settings (epochs, method options, ...) or seeds would compare two
experiments, not two versions of the code: it is refused, naming what differs
(`bench compare` is the test of a change of settings).
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from bench.core.identity import flatten, row_identity
from bench.core.registry import UsageError
from bench.core.results import load_results, require_results, write_json
from bench.studies.stats import run_scores, stability
from tasks.registry import TASKS

BASELINE_SCHEMA = 1
DEFAULT_MARGIN = 1.0
"""Points of the metric (which is reported × 100) a mean may always drop."""
DEFAULT_Z = 2.0
"""Across-seed standard deviations of the baseline a drop may reach."""
TOLERANCE = 1e-9
"""A drop regresses when it is *more than* the allowed drop: a drop equal to it, up to float rounding
(a mean of 35.3 less one of 33.3 is 2.0000000000000036), passes, as the printed 2.00 and 2.00 say."""
KEY = ("method", "k_shot", "task", "backbone", "preset", "profile")
SAME_EXPERIMENT = ("backbone", "preset", "profile")
"""What must match between a baseline entry and a new result of its method and task."""


def entries(directory: Path, skip_unreadable: bool = False) -> dict[tuple, dict]:
    """Per KEY, the statistics of one configuration's runs in a results folder (unreadable
    results files: bench/core/results.py `read_results`)."""
    results = require_results(load_results(directory, skip_unreadable), directory)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for result in results:
        run = result["run"]
        for task in result["test"]:
            groups[(run["method"], run["k_shot"], task, run["backbone"], run["preset"], run["profile"])].append(result)
    found = {}
    for key, group in sorted(groups.items(), key=lambda item: str(item[0])):
        configurations = sorted({r["run"]["configuration"] for r in group})
        if len(configurations) > 1:
            raise UsageError(f"{directory} holds {len(configurations)} configurations of {describe(dict(zip(KEY, key)))} "
                             f"({', '.join(configurations)}): a baseline or check takes one; keep one per folder")
        task, first = key[2], group[0]
        scores = run_scores(group)[task]
        stat = stability(list(scores.values()))
        found[key] = {
            **dict(zip(KEY, key)), "metric": TASKS.get(task).report_metric, "mean": stat.mean, "std": stat.std,
            "n": stat.n, "runs": [{"seed": seed, "draw": draw, "score": score.score}
                                  for (seed, draw), score in sorted(scores.items())],
            "data": {"source": first["identity"]["data"][task]["source"]["kind"],
                     "fingerprints": first["identity"]["data"][task]["fingerprints"],
                     "test_scored": first["data"][task]["fingerprints"]["test"]},
            "configuration": configurations[0], "identity": first["identity"],
        }
    return found


def describe(entry: dict) -> str:
    shots = f" ({entry['k_shot']}-shot)" if entry["k_shot"] else ""
    return f"{entry['method']}{shots} on {entry['task']} ({entry['backbone']}, {entry['preset']}, {entry['profile']})"


def write_baseline(directory: Path, out: Path, skip_unreadable: bool = False) -> str:
    """`bench baseline RESULTS --out FILE`: the file, and a table of what it holds."""
    found = entries(directory, skip_unreadable)
    write_json(out, {"schema": BASELINE_SCHEMA, "results": str(directory), "entries": list(found.values())})
    table = [[e["method"], e["task"], e["backbone"], e["preset"], e["profile"], e["metric"], score_cell(e)]
             for e in found.values()]
    return (tabulate(table, ["method", "task", "backbone", "preset", "profile", "metric", "baseline"],
                     tablefmt="github", disable_numparse=True)
            + f"\n\nbaseline of {len(found)} scores written to {out}\n")


def read_baseline(path: Path) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"--baseline {str(path)!r} does not exist (write one with `bench baseline RESULTS --out FILE`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"--baseline {str(path)!r} cannot be read ({type(error).__name__})") from None
    if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA or not isinstance(data.get("entries"), list):
        raise UsageError(f"--baseline {str(path)!r} is not a bench baseline of schema {BASELINE_SCHEMA} "
                         "(write one with `bench baseline RESULTS --out FILE`)")
    return data["entries"]


def data_difference(now: dict, then: dict) -> str | None:
    """Where two entries' data differ (source kind, a full split, the scored test examples), or None."""
    if now["source"] != then["source"]:
        return f"data source {now['source']} here, {then['source']} in the baseline"
    for split, value in then["fingerprints"].items():
        if now["fingerprints"].get(split) != value:
            return f"{split} data fingerprint {now['fingerprints'].get(split)} here, {value} in the baseline"
    if now["test_scored"] != then["test_scored"]:
        return f"scored test examples {now['test_scored']} here, {then['test_scored']} in the baseline"
    return None


def allowed_drop(entry: dict, margin: float, z: float) -> float:
    """max(margin, z × the baseline's standard deviation over runs); a single run has none."""
    return max(margin, z * entry["std"] if entry["std"] is not None else 0.0)


def seeds(entry: dict) -> str:
    """An entry's runs as seeds, `0, 1`, each with its few-shot draw where that is not the first."""
    return ", ".join(f"{run['seed']}" + (f" (draw {run['draw']})" if run["draw"] else "") for run in entry["runs"])


def check(directory: Path, baseline_path: Path, margin: float = DEFAULT_MARGIN, z: float = DEFAULT_Z,
          skip_unreadable: bool = False) -> tuple[int, str]:
    """`bench check RESULTS --baseline FILE`: (exit code, markdown): 1 with the regressions, 0 with
    every check; a UsageError (exit 2) where the two are not the same experiment."""
    for flag, value in (("--margin", margin), ("--z", z)):
        if not value >= 0 or math.isinf(value):
            raise UsageError(f"{flag} takes a finite number ≥ 0 (default {DEFAULT_MARGIN if flag == '--margin' else DEFAULT_Z:g}), "
                             f"not {value:g}")
    baseline = read_baseline(baseline_path)
    current = entries(directory, skip_unreadable)
    checked, notes = [], []
    for then in baseline:
        key = tuple(then[field] for field in KEY)
        now = current.get(key)
        if now is None:
            others = [c for c in current.values() if (c["method"], c["k_shot"], c["task"]) == key[:3]]
            if others:
                field = next(f for f in SAME_EXPERIMENT if others[0][f] != then[f])
                raise UsageError(f"{describe(then)}: {field} {others[0][field]} in {directory}, {then[field]} in the "
                                 "baseline: not the same experiment (rebuild the baseline with `bench baseline`)")
            raise UsageError(f"the baseline's {describe(then)} has no results in {directory}; it has "
                             f"{', '.join(sorted({describe(c) for c in current.values()}))}")
        difference = data_difference(now["data"], then["data"])
        if difference:
            raise UsageError(f"{describe(then)}: {difference}: not the same data (rebuild the baseline with "
                             "`bench baseline`)")
        settings = settings_difference(now["identity"], then["identity"])
        if settings:
            raise UsageError(f"{describe(then)}: {settings}: not the same experiment (rebuild the baseline with "
                             "`bench baseline`; `bench compare` tests what the change of settings did)")
        if seeds(now) != seeds(then):
            raise UsageError(f"{describe(then)}: seeds {seeds(now)} here; {seeds(then)} in the baseline: not the same "
                             "runs (run the baseline's seeds, or rebuild the baseline with `bench baseline`)")
        drop, allowed = then["mean"] - now["mean"], allowed_drop(then, margin, z)
        checked.append((then, now, drop > allowed + TOLERANCE, allowed))
    unchecked = sorted(describe(c) for k, c in current.items() if k not in {tuple(e[f] for f in KEY) for e in baseline})
    if unchecked:
        notes.append(f"not in the baseline, so not checked: {', '.join(unchecked)}")
    regressed = [c for c in checked if c[2]]
    shown = regressed or checked
    table = [[then["method"], then["task"], then["backbone"], then["metric"], score_cell(then), score_cell(now),
              f"{now['mean'] - then['mean']:+.2f}", f"{allowed:.2f}", "REGRESSED" if bad else "ok"]
             for then, now, bad, allowed in shown]
    headers = ["method", "task", "backbone", "metric", "baseline", "now", "change", "allowed drop", "result"]
    summary = (f"{len(regressed)} of {len(checked)} scores regressed" if regressed else
               f"no regression in {len(checked)} scores") + (f" (allowed drop: max(margin {margin:g}, z {z:g} × the "
                                                             f"baseline's std over runs); baseline {baseline_path})")
    markdown = "\n\n".join([f"# {'Regressions' if regressed else 'Regression check'}",
                            tabulate(table, headers, tablefmt="github", disable_numparse=True), summary,
                            *[f"Note: {note}." for note in notes]]) + "\n"
    return (1 if regressed else 0), markdown


def settings_difference(now: dict, then: dict) -> str:
    """The settings (all but the data, checked apart) in which two configurations differ, e.g.
    `train.epochs 3 here, 2 in the baseline`."""
    a, b = flatten(row_identity(now)), flatten(row_identity(then))
    return "; ".join(f"{key} {a.get(key)} here, {b.get(key)} in the baseline" for key in sorted(set(a) | set(b))
                     if a.get(key) != b.get(key))


def score_cell(entry: dict) -> str:
    """mean ± std (n), to two decimals: a check is about differences finer than a leaderboard's."""
    spread = "" if entry["std"] is None else f" ± {entry['std']:.2f}"
    return f"{entry['mean']:.2f}{spread} (n={entry['n']})"
