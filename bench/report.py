"""Results directory -> markdown leaderboard, with the papers' numbers beside ours.

One table per suite: a row per (method, preset, backbone, profile), a column
per task and the suite average, cells `mean ± std` over seeds of the metric
the papers report for that task; then param/task, memory and time, and
reference rows from the published tables with the delta of our average.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
from tabulate import tabulate

from bench.results import load_results
from tasks.registry import SUITES, TASKS

REFERENCE_DIR = Path(__file__).parent / "reference"
REFERENCE_FILES = (  # T5-base tables first: they are the comparable ones
    "attempt_table1_glue_superglue.csv", "attempt_table2_mrqa_others.csv",
    "mpt_table1_glue_superglue.csv", "mpt_table2_mrqa_others.csv", "amp_table1.csv",
)
PAPER_NAMES = {"pt": "PT", "spot": "SPoT", "attempt": "ATTEMPT", "mpt": "MPT", "amp": "AMP"}


def report_metric(task_name: str) -> str:
    return TASKS.get(task_name).report_metric


def paper_method(method: str) -> tuple[str, str] | None:
    """Our method name -> (the papers' method name, setting)."""
    base = method.split("-")[0]
    if base not in PAPER_NAMES:
        return None
    multi = method.endswith("-m") or base == "amp"
    return PAPER_NAMES[base], "multi-task" if multi else "single-task"


def reference_scores(method: str) -> dict[str, tuple[float, str]]:
    """dataset -> (published value, citation) for the method's row in the papers."""
    wanted = paper_method(method)
    if wanted is None:
        return {}
    found: dict[str, tuple[float, str]] = {}
    for name in REFERENCE_FILES:
        with open(REFERENCE_DIR / name, newline="") as handle:
            for row in csv.DictReader(handle):
                if (row["method"], row["setting"]) == wanted and row["dataset"] not in found:
                    found[row["dataset"]] = (float(row["value"]), f"{row['paper'].split(' (')[0]} {row['table']} ({row['backbone']})")
    return found


def fmt(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"


def human_bytes(n: float | None) -> str:
    if not n:
        return "–"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024


def human_count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return f"{n:.0f}"


def suite_of(task_names: set[str]) -> str:
    for suite, members in SUITES.items():
        if task_names <= set(members):
            return suite
    return "custom"


def leaderboard(directory: Path) -> str:
    results = load_results(directory)
    if not results:
        return f"No results in {directory}.\n"
    by_suite: dict[str, list[dict]] = defaultdict(list)
    for result in results:
        by_suite[result["run"]["suite"] or suite_of(set(result["run"]["tasks"]))].append(result)
    sections = [f"# Leaderboard\n\nFrom `{directory}`: {len(results)} runs. Cells: mean ± std over seeds (test split)."]
    for suite, suite_results in by_suite.items():
        sections.append(suite_table(suite, suite_results))
    return "\n\n".join(sections) + "\n"


def suite_table(suite: str, results: list[dict]) -> str:
    tasks = list(SUITES.get(suite)) if suite in SUITES else sorted({t for r in results for t in r["run"]["tasks"]})
    present = [t for t in tasks if any(t in r["test"] for r in results)]
    rows: dict[tuple, dict] = defaultdict(lambda: {"scores": defaultdict(dict), "results": []})
    for result in results:
        run = result["run"]
        key = (run["method"], run["preset"], run["backbone"], run["profile"])
        rows[key]["results"].append(result)
        for task, test in result["test"].items():
            rows[key]["scores"][task][run["seed"]] = test["metrics"][report_metric(task)]
    headers = ["method", "preset", "backbone", "seeds", *present, "avg", "Δ paper avg", "param/task", "peak memory", "time/run"]
    table = []
    for (method, preset, backbone, profile), row in sorted(rows.items()):
        scores = row["scores"]
        seeds = sorted({s for per_task in scores.values() for s in per_task})
        complete = [s for s in seeds if all(s in scores[t] for t in present)]
        averages = [float(np.mean([scores[t][s] for t in present])) for s in complete]
        reference = reference_scores(method).get(f"avg_{suite}")
        delta = f"{np.mean(averages) - reference[0]:+.1f}" if reference and averages else "–"
        first = row["results"][0]
        table.append([
            method, preset, f"{backbone} ({profile})" if profile != "paper" else backbone, len(seeds),
            *[fmt(list(scores[t].values())) for t in present], fmt(averages), delta,
            human_count(first["params"]["param_per_task"]),
            human_bytes(max(r["memory"]["peak_device_bytes"] or r["memory"]["peak_rss_bytes"] for r in row["results"])),
            f"{np.mean([r['timing']['wall_seconds'] for r in row['results']]):.0f} s",
        ])
    for method in sorted({key[0] for key in rows}):
        reference = reference_scores(method)
        if reference:
            cite = next(iter(reference.values()))[1]
            avg = reference.get(f"avg_{suite}")
            table.append([f"*{paper_method(method)[0]} (paper)*", "", cite, "", *[
                f"{reference[t][0]:.1f}" if t in reference else "–" for t in present
            ], f"{avg[0]:.1f}" if avg else "–", "", "", "", ""])
    metrics = ", ".join(f"{t}: {report_metric(t)}" for t in present)
    return f"## {suite}\n\nMetrics: {metrics}.\n\n" + tabulate(table, headers, tablefmt="github", disable_numparse=True)
