"""End to end: `bench run --profile smoke` writes complete results and a leaderboard."""
from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from bench.cli import main


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    output = tmp_path_factory.mktemp("runs")
    code = main(["run", "--method", "pt", "--suite", "superglue", "--profile", "smoke", "--quiet", "--output", str(output)])
    assert code == 0
    return output


def test_one_result_per_task_with_full_record(smoke):
    paths = sorted(p.relative_to(smoke).as_posix() for p in smoke.rglob("seed*.json"))
    assert paths == [f"pt/{t}/seed0.json" for t in ("boolq", "cb", "multirc", "wic", "wsc")]
    result = json.loads((smoke / "pt/cb/seed0.json").read_text())
    assert result["run"] == {"method": "pt", "tasks": ["cb"], "suite": "superglue", "seed": 0, "preset": "paper",
                             "profile": "smoke", "backbone": "tiny-t5", "k_shot": 0, "draw": 0}
    assert result["data"]["cb"]["sizes"] == {"train": 32, "validation": 12, "test": 12}
    assert result["data"]["cb"]["source"]["kind"] == "fixtures"
    assert len(result["data"]["cb"]["fingerprints"]["test"]) == 16
    assert [e["epoch"] for e in result["epochs"]] == [1, 2]
    assert set(result["epochs"][0]["dev"]["cb"]["metrics"]) == {"accuracy", "macro_f1"}
    assert result["best_epoch"] in (1, 2)
    assert set(result["test"]["cb"]) == {"metrics", "mean", "invalid", "n"} and result["test"]["cb"]["n"] == 12
    assert result["params"] == {"trainable": 640, "per_task": 640, "shared": 0, "frozen_extra": 0,
                                "backbone": 189_440, "num_tasks": 1, "param_per_task": 640.0}
    assert result["config"]["protocol"]["copa_question"] is True
    assert result["config"]["train"]["epochs"] == 2 and result["method_config"]["prompt_length"] == 10
    assert result["memory"]["peak_rss_bytes"] > 0 and result["memory"]["autograd_saved_bytes_first_step"] > 0
    assert result["memory"]["peak_rss_scope"] == "run"  # Linux: the peak is reset at the start of each run
    assert result["timing"]["steps"] == 8  # 32 examples / batch 8 x 2 epochs
    assert result["environment"]["packages"]["torch"]


def test_checkpoint_holds_only_the_prompt(smoke):
    tensors = load_file(str(smoke / "pt/wic/seed0.safetensors"))
    assert list(tensors) == ["prompt"] and tuple(tensors["prompt"].shape) == (10, 64)


def test_leaderboard_has_our_row_and_the_papers(smoke):
    board = (smoke / "leaderboard.md").read_text()
    lines = board.splitlines()
    header = next(line for line in lines if line.startswith("| method"))
    assert [c.strip() for c in header.strip("|").split("|")][:11] == [
        "method", "setting", "preset", "backbone", "runs", "multirc", "boolq", "wic", "wsc", "cb", "avg"]
    ours = next(line for line in lines if line.startswith("| pt "))
    assert "tiny-t5 (smoke)" in ours and "640" in ours
    paper = next(line for line in lines if line.startswith("| *PT (paper)*"))
    assert [c.strip() for c in paper.strip("|").split("|")][5:11] == ["58.7", "61.7", "48.9", "51.9", "67.9", "57.8"]


def test_rerun_from_results_file_reproduces_numbers(smoke, tmp_path):
    original = json.loads((smoke / "pt/wsc/seed0.json").read_text())
    assert main(["run", "--config", str(smoke / "pt/wsc/seed0.json"), "--tasks", "wsc", "--quiet",
                 "--output", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "pt/wsc/seed0.json").read_text())
    assert again["epochs"] == [{**e, "train_seconds": a["train_seconds"]} for e, a in zip(original["epochs"], again["epochs"])]
    assert again["test"] == original["test"]
    assert (load_file(str(tmp_path / "pt/wsc/seed0.safetensors"))["prompt"]
            .equal(load_file(str(smoke / "pt/wsc/seed0.safetensors"))["prompt"]))


def test_resume_skips_finished_runs_and_reruns_changed_ones(smoke, capsys):
    before = {p: p.stat().st_mtime_ns for p in smoke.rglob("seed0.json")}
    assert main(["run", "--method", "pt", "--suite", "superglue", "--profile", "smoke", "--quiet", "--resume",
                 "--output", str(smoke)]) == 0
    assert {p: p.stat().st_mtime_ns for p in smoke.rglob("seed0.json")} == before
    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--quiet", "--resume",
                 "--epochs", "1", "--output", str(smoke)]) == 0
    assert (smoke / "pt/cb/seed0.json").stat().st_mtime_ns != before[smoke / "pt/cb/seed0.json"]
