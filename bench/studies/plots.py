"""Figures that read better than tables: attention heatmaps (source prompt × target task).

ATTEMPT's Figure 6 shows, per target task, the mean attention its instances
give each source prompt and the target prompt. Runs report those means in
`method_report.attention` (methods/base.py); here results are averaged over
seeds and drawn, every method's columns in the same task order, under a title
naming the runs drawn. matplotlib is an optional extra, imported only when drawing.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.registry import UsageError
from bench.core.results import read_results

PLOTS_EXTRA = "pip install -e '.[plots]'"


@dataclass(frozen=True)
class Heatmap:
    """What the attention figure draws: prompts (rows) × columns, the mean weights over runs."""

    sources: list[str]
    columns: list[str]
    """Target tasks in one task order; `method: task` (grouped by method) when methods are mixed."""
    matrix: np.ndarray
    title: str
    """The methods, backbones and seeds of the runs drawn, so a figure never loses its provenance."""


def attention_of(path: Path) -> tuple[dict, dict]:
    """(run block, attention report) of one results file; a UsageError when it has none."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read results file {str(path)!r} ({type(error).__name__})") from None
    attention = result.get("method_report", {}).get("attention") if isinstance(result, dict) else None
    if not attention:
        raise UsageError(f"{path}: no attention report (only attention-based methods such as attempt write one)")
    run = result.get("run")
    if not isinstance(run, dict) or not {"method", "backbone", "seed"} <= run.keys():
        raise UsageError(f"{path}: no run block naming its method, backbone and seed")
    return run, attention


def task_order(tasks: set[str]) -> list[str]:
    """One column order for every method: the order of the first suite (registry order) that
    holds all the tasks, as the papers' tables print them; sorted when no suite holds them all."""
    from tasks.registry import SUITES

    for _, members in SUITES.items():
        if tasks <= set(members):
            return [task for task in members if task in tasks]
    return sorted(tasks)


def method_order(methods: set[str]) -> list[str]:
    """Registry order (each method before its variants), then any unregistered names sorted."""
    from methods.registry import METHODS

    known = [name for name in METHODS.names() if name in methods]
    return known + sorted(methods - set(known))


def attention_heatmap(result_paths: list[Path]) -> Heatmap:
    """The mean attention over the runs (seeds) of each (method, target task), ready to draw."""
    if not result_paths:
        raise UsageError("no results files with an attention report")
    sources, weights, runs = None, defaultdict(list), []
    for path in result_paths:
        run, attention = attention_of(path)
        if sources is None:
            sources = attention["sources"]
        elif attention["sources"] != sources:
            raise UsageError(f"{path}: source prompts {attention['sources']} differ from {sources}; plot them separately")
        for task, row in attention["targets"].items():
            weights[(run["method"], task)].append(row)
        runs.append(run)
    methods = method_order({method for method, _ in weights})
    keys = [(method, task) for method in methods for task in task_order({task for _, task in weights})
            if (method, task) in weights]
    columns = [task if len(methods) == 1 else f"{method}: {task}" for method, task in keys]
    matrix = np.array([np.mean(weights[key], axis=0) for key in keys]).T
    backbones = sorted({run["backbone"] for run in runs})
    seeds = sorted({run["seed"] for run in runs})
    title = (f"mean attention of {', '.join(methods)} on {', '.join(backbones)}, "
             f"{'seed' if len(seeds) == 1 else 'seeds'} {', '.join(map(str, seeds))}")
    return Heatmap(sources, columns, matrix, title)


def plot_attention(result_paths: list[Path], out: Path) -> Path:
    """Draw the heatmap of the runs' mean attention (source prompt × target task) as a PNG."""
    heatmap = attention_heatmap(result_paths)
    sources, columns, matrix = heatmap.sources, heatmap.columns, heatmap.matrix
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(f"plots need matplotlib: {PLOTS_EXTRA}") from None
    figure, axes = plt.subplots(figsize=(1.2 + 0.9 * len(columns), 1.3 + 0.45 * len(sources)))
    image = axes.imshow(matrix, cmap="Blues", vmin=0.0, aspect="auto")
    tilt = max(len(column) for column in columns) > 8  # long names (hotpotqa, method: task) overlap
    axes.set_xticks(range(len(columns)), columns, rotation=35 if tilt else 0, ha="right" if tilt else "center")
    axes.set_yticks(range(len(sources)), sources)
    axes.set_xlabel("target task")
    axes.set_ylabel("prompt")
    axes.set_title(heatmap.title, fontsize=9, wrap=True)
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            value = matrix[row, column]
            axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                      color="white" if value > 0.6 * matrix.max() else "black")
    figure.colorbar(image, ax=axes, label="mean attention")
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=150)
    plt.close(figure)
    return out


def plot_attention_command(results: list[str], out: str | None = None, skip_unreadable: bool = False) -> Path:
    """`bench plot attention RESULTS... [--out FILE]`: RESULTS are results files or folders
    (searched for runs that report attention; an unreadable results file in a folder is
    refused, or skipped with `skip_unreadable`, as every table does: bench/core/results.py);
    the PNG defaults to `attention.png` in the first folder given (or beside the first file)."""
    if not results:
        raise UsageError("give results files or folders to plot")
    paths = []
    for name in results:
        given = Path(name)
        if given.is_dir():
            paths += [path for path, result in read_results(given, skip_unreadable)[0]
                      if (result.get("method_report") or {}).get("attention")]
        elif given.is_file():
            paths.append(given)
        else:
            raise UsageError(f"results path {name!r} does not exist")
    paths = list(dict.fromkeys(path.resolve() for path in paths))  # a file named twice is still one run
    first = Path(results[0])
    return plot_attention(paths, Path(out) if out else (first if first.is_dir() else first.parent) / "attention.png")
