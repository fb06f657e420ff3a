"""Figures that read better than tables: attention heatmaps (source prompt × target task).

ATTEMPT's Figure 6 shows, per target task, the mean attention its instances
give each source prompt and the target prompt. Runs report those means in
`method_report.attention` (methods/base.py); here results are averaged over
seeds and drawn. matplotlib is an optional extra, imported only when drawing.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.registry import UsageError

PLOTS_EXTRA = "pip install 'bench[plots]'"


def attention_of(path: Path) -> tuple[str, dict]:
    """(method, attention report) of one results file; a UsageError when it has none."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read results file {str(path)!r} ({type(error).__name__})") from None
    attention = result.get("method_report", {}).get("attention") if isinstance(result, dict) else None
    if not attention:
        raise UsageError(f"{path}: no attention report (only attention-based methods such as attempt write one)")
    return result["run"]["method"], attention


def attention_matrix(result_paths: list[Path]) -> tuple[list[str], list[str], np.ndarray]:
    """Sources (rows), target columns and the mean weights over the runs (seeds) of each column.

    Columns are target tasks; when the results mix methods, each column names its method too.
    """
    if not result_paths:
        raise UsageError("no results files with an attention report")
    sources, runs = None, defaultdict(list)
    for path in result_paths:
        method, attention = attention_of(path)
        if sources is None:
            sources = attention["sources"]
        elif attention["sources"] != sources:
            raise UsageError(f"{path}: source prompts {attention['sources']} differ from {sources}; plot them separately")
        for task, weights in attention["targets"].items():
            runs[(method, task)].append(weights)
    methods = {method for method, _ in runs}
    columns = [task if len(methods) == 1 else f"{method}: {task}" for method, task in runs]
    matrix = np.array([np.mean(weights, axis=0) for weights in runs.values()]).T
    return sources, columns, matrix


def plot_attention(result_paths: list[Path], out: Path) -> Path:
    """Draw the heatmap of the runs' mean attention (source prompt × target task) as a PNG."""
    sources, columns, matrix = attention_matrix(result_paths)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(f"plots need matplotlib: {PLOTS_EXTRA}") from None
    figure, axes = plt.subplots(figsize=(1.2 + 0.9 * len(columns), 1.0 + 0.45 * len(sources)))
    image = axes.imshow(matrix, cmap="Blues", vmin=0.0, aspect="auto")
    tilt = max(len(column) for column in columns) > 8  # long names (hotpotqa, method: task) overlap
    axes.set_xticks(range(len(columns)), columns, rotation=35 if tilt else 0, ha="right" if tilt else "center")
    axes.set_yticks(range(len(sources)), sources)
    axes.set_xlabel("target task")
    axes.set_ylabel("prompt")
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


def plot_attention_command(results: list[str], out: str | None = None) -> Path:
    """`bench plot attention RESULTS... [--out FILE]`: RESULTS are results files or folders
    (searched for runs that report attention); the PNG defaults to `attention.png` in the
    first folder given (or beside the first file)."""
    if not results:
        raise UsageError("give results files or folders to plot")
    paths = []
    for name in results:
        given = Path(name)
        if given.is_dir():
            paths += [p for p in sorted(given.rglob("*.json")) if _has_attention(p)]
        elif given.is_file():
            paths.append(given)
        else:
            raise UsageError(f"results path {name!r} does not exist")
    first = Path(results[0])
    return plot_attention(paths, Path(out) if out else (first if first.is_dir() else first.parent) / "attention.png")


def _has_attention(path: Path) -> bool:
    try:
        attention_of(path)
    except UsageError:
        return False
    return True
