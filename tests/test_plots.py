"""`bench plot attention`: one task order for every method, methods grouped, a title naming the runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bench.core.registry import UsageError
import bench.studies.plots
from bench.studies.plots import attention_heatmap, plot_attention, plot_attention_command

SOURCES = ["mnli", "sst2", "target"]


def write_result(folder, method, seed, targets, backbone="google-t5/t5-base"):
    """A results file shaped as the runner writes it (only the blocks the plot reads, and a few more)."""
    path = folder / method / "+".join(targets) / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "schema_version": 1,
        "run": {"method": method, "tasks": list(targets), "suite": "superglue", "seed": seed, "preset": "paper",
                "profile": "paper", "backbone": backbone, "k_shot": 0, "draw": 0},
        "test_mean": 50.0,
        "method_report": {"attention": {"sources": SOURCES, "targets": targets}},
    }))
    return path


def test_columns_follow_the_suite_order_and_cells_average_the_seeds(tmp_path):
    paths = [write_result(tmp_path, "attempt", 0, {"cb": [0.2, 0.2, 0.6]}),
             write_result(tmp_path, "attempt", 0, {"wsc": [0.5, 0.3, 0.2]}),
             write_result(tmp_path, "attempt", 1, {"cb": [0.4, 0.0, 0.6]}),
             write_result(tmp_path, "attempt", 0, {"boolq": [0.1, 0.1, 0.8]})]
    heatmap = attention_heatmap(paths)
    assert heatmap.sources == SOURCES
    assert heatmap.columns == ["boolq", "wsc", "cb"]  # SuperGLUE's order: multirc, boolq, wic, wsc, cb
    np.testing.assert_allclose(heatmap.matrix, [[0.1, 0.5, 0.3], [0.1, 0.3, 0.1], [0.8, 0.2, 0.6]])
    assert heatmap.title == "mean attention of attempt on google-t5/t5-base, seeds 0, 1"


def test_methods_are_grouped_in_registry_order_with_one_task_order(tmp_path):
    paths = [write_result(tmp_path, "attempt-token", 0, {"cb": [1.0, 0.0, 0.0], "wsc": [0.0, 1.0, 0.0]}),
             write_result(tmp_path, "attempt", 2, {"cb": [0.0, 0.0, 1.0]}, backbone="tiny-t5"),
             write_result(tmp_path, "attempt", 2, {"wsc": [0.0, 1.0, 0.0]}, backbone="tiny-t5")]
    heatmap = attention_heatmap(paths)
    assert heatmap.columns == ["attempt: wsc", "attempt: cb", "attempt-token: wsc", "attempt-token: cb"]
    np.testing.assert_allclose(heatmap.matrix, [[0, 0, 0, 1], [1, 0, 1, 0], [0, 1, 0, 0]])
    assert heatmap.title == "mean attention of attempt, attempt-token on google-t5/t5-base, tiny-t5, seeds 0, 2"


def test_tasks_of_no_single_suite_are_sorted(tmp_path):
    paths = [write_result(tmp_path, "attempt", 3, {"squad": [0.5, 0.5, 0.0]}),
             write_result(tmp_path, "attempt", 3, {"cb": [0.0, 0.5, 0.5]}),
             write_result(tmp_path, "attempt", 3, {"boolq": [0.5, 0.0, 0.5]})]
    heatmap = attention_heatmap(paths)
    assert heatmap.columns == ["boolq", "cb", "squad"]
    assert heatmap.title == "mean attention of attempt on google-t5/t5-base, seed 3"


def test_the_figure_carries_the_title(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    drawn = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda figure: (drawn.append(figure.axes[0].get_title()), close(figure)))
    paths = [write_result(tmp_path, "attempt", 0, {"cb": [0.2, 0.2, 0.6]})]
    png = plot_attention(paths, tmp_path / "figure.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn == ["mean attention of attempt on google-t5/t5-base, seed 0"]


def test_a_file_named_twice_counts_once(tmp_path, monkeypatch):
    path = write_result(tmp_path, "attempt", 0, {"cb": [0.2, 0.2, 0.6]})
    write_result(tmp_path, "attempt", 1, {"cb": [0.4, 0.0, 0.6]})
    given = []
    monkeypatch.setattr(bench.studies.plots, "plot_attention", lambda paths, out: given.append(paths) or out)
    assert plot_attention_command([str(tmp_path), str(path)]) == tmp_path / "attention.png"
    assert len(given[0]) == 2 and len(set(given[0])) == 2


def test_a_results_file_without_a_run_block_is_one_clear_error(tmp_path):
    path = tmp_path / "seed0.json"
    path.write_text(json.dumps({"method_report": {"attention": {"sources": SOURCES, "targets": {"cb": [1, 0, 0]}}}}))
    with pytest.raises(UsageError, match="no run block naming its method, backbone and seed"):
        attention_heatmap([path])
