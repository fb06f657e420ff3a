"""Grids: methods × tasks × seeds in one fixed order, shards whose union is the grid, and runs
that survive SIGKILL: a grid killed twice and resumed ends with an uninterrupted grid's results."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from bench.cli import build_parser, grid_plan, main
from bench.core.progress import Progress
import bench.pipeline.runner

GRID = ["--method", "pt,spot-g", "--tasks", "cb,wsc", "--profile", "smoke", "--num-seeds", "2", "--quiet"]


def planned(*argv) -> list[tuple[str, tuple, int]]:
    plan, _, _ = grid_plan(build_parser().parse_args(["run", *argv]))
    return [(config.method, unit.tasks, unit.seed) for config, unit in plan]


def test_grid_order_and_shards_cover_it_exactly_once(tmp_path):
    whole = planned(*GRID, "--output", str(tmp_path))
    assert whole == [(m, (t,), s) for m in ("pt", "spot-g") for s in (0, 1) for t in ("cb", "wsc")]
    shards = [planned(*GRID, "--output", str(tmp_path), "--shard", f"{k}/3") for k in (1, 2, 3)]
    assert sorted(unit for shard in shards for unit in shard) == sorted(whole)
    assert [len(shard) for shard in shards] == [3, 3, 2] and shards[0] == whole[0::3]


def test_grid_arguments_are_checked(capsys, tmp_path):
    for argv, message in [(["--shard", "0/2"], "--shard takes K/N with 1 <= K <= N"),
                          (["--seeds", "0,1", "--num-seeds", "2"], "give --seeds 0,1 or --num-seeds 2, not both"),
                          (["--method", "pt,pt"], "--method pt,pt repeats a method"),
                          (["--method", "pt,attempt", "--option", "g_lrr=0.1"], "option 'g_lrr' belongs to none of")]:
        assert main(["run", "--tasks", "cb", "--profile", "smoke", *argv, "--output", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err


def test_an_option_goes_to_the_methods_that_have_it(tmp_path):
    plan, _, _ = grid_plan(build_parser().parse_args(["run", "--method", "pt,attempt", "--tasks", "cb", "--profile",
                                                      "smoke", "--option", "sources=mnli", "--option", "lr=0.1",
                                                      "--output", str(tmp_path)]))
    options = {config.method: config.method_options for config, _ in plan}
    assert options["pt"] == {"prompt_length": 10, "lr": "0.1"}
    assert options["attempt"] == {"prompt_length": 10, "sources": "mnli", "lr": "0.1"}


def test_sources_go_to_the_methods_that_read_source_prompts(tmp_path, capsys):
    """PT and head-only controls sit in one grid with ATTEMPT on the shipped prompts; a grid where
    no method reads source prompts refuses --sources, naming the methods that do."""
    args = ["--tasks", "rte", "--model", "minilm", "--profile", "cpu", "--output", str(tmp_path)]
    plan, _, _ = grid_plan(build_parser().parse_args(["run", "--method", "pt,head-only,attempt", "--sources", "shipped",
                                                      "--option", "sources=mnli,qnli", *args]))
    assert {config.method: config.sources for config, _ in plan} == {
        "pt": "library", "head-only": "library", "attempt": "shipped:minilm-cpu-v2"}
    assert main(["run", "--method", "pt,head-only", "--sources", "shipped", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--sources shipped supplies source-task prompts to attempt, attempt-m, mpt, mpt-m, mpt-source, spot-t;" in err
    assert "none of pt, head-only reads them" in err


def test_shards_into_one_folder_equal_the_whole_grid(tmp_path):
    argv = ["run", "--method", "pt", "--tasks", "cb,wsc", "--profile", "smoke", "--num-seeds", "2", "--epochs", "1",
            "--quiet", "--library", str(tmp_path / "library")]
    assert main([*argv, "--output", str(tmp_path / "whole")]) == 0
    for k in (1, 2):
        assert main([*argv, "--output", str(tmp_path / "sharded"), "--shard", f"{k}/2"]) == 0
    files = {root: sorted(p.relative_to(tmp_path / root) for p in (tmp_path / root).rglob("seed*.json"))
             for root in ("whole", "sharded")}
    assert files["whole"] == files["sharded"] and len(files["whole"]) == 4


# -- kill-safety -------------------------------------------------------------------------------
COMPARED = ("epochs", "best_epoch", "dev", "test", "predictions", "params", "optimizer", "method_report", "identity")
TIMED = ("train_seconds",)


def numbers(result: dict) -> dict:
    """Everything a result says about the run's numbers (timings, memory and paths aside)."""
    kept = {key: result[key] for key in COMPARED}
    kept["epochs"] = [{k: v for k, v in epoch.items() if k not in TIMED} for epoch in result["epochs"]]
    return kept


def results_of(root: Path) -> dict[Path, tuple[dict, dict]]:
    return {path.relative_to(root): (numbers(json.loads(path.read_text())),
                                     load_file(str(path.with_suffix(".safetensors"))))
            for path in sorted(root.rglob("seed*.json"))}


def same_results(first: Path, second: Path) -> None:
    mine, theirs = results_of(first), results_of(second)
    assert list(mine) == list(theirs) and mine
    for path, (numbers_a, tensors_a) in mine.items():
        numbers_b, tensors_b = theirs[path]
        assert numbers_a == numbers_b, path
        assert sorted(tensors_a) == sorted(tensors_b) and all(tensors_a[k].equal(tensors_b[k]) for k in tensors_a), path


def test_a_run_stopped_after_an_epoch_resumes_to_the_same_numbers(tmp_path):
    """In-process: the run dies in epoch 3 (after epoch 2's checkpoint); --resume finishes it."""
    argv = ["run", "--method", "mpt", "--tasks", "cb", "--profile", "smoke", "--epochs", "4", "--quiet",
            "--option", "source_tasks=mnli,sst2"]
    assert main([*argv, "--output", str(tmp_path / "whole"), "--library", str(tmp_path / "library-a")]) == 0
    plan, _, _ = grid_plan(build_parser().parse_args([*argv, "--output", str(tmp_path / "resumed"),
                                                      "--library", str(tmp_path / "library-b")]))

    class Killed(Exception):
        pass

    def die_in_epoch_3(epoch, dev_mean):
        if epoch == 3:
            raise Killed

    with pytest.raises(Killed):
        bench.pipeline.runner.run_grid(plan, Progress(), on_epoch=die_in_epoch_3)
    [checkpoint] = (tmp_path / "resumed").rglob("*.resume.pt")
    assert checkpoint.name == "seed0.resume.pt"
    assert main([*argv, "--output", str(tmp_path / "resumed"), "--library", str(tmp_path / "library-b"), "--resume"]) == 0
    same_results(tmp_path / "whole", tmp_path / "resumed")
    assert not list((tmp_path / "resumed").rglob("*.resume.pt"))  # removed once the results are written


def test_resume_removes_the_checkpoint_of_a_run_killed_after_writing_its_results(tmp_path, monkeypatch):
    """The run dies right after its results are written, before its checkpoint is removed:
    `--resume` skips it (its results stand) and removes the checkpoint nothing would resume."""
    argv = ["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--epochs", "2", "--quiet",
            "--output", str(tmp_path / "runs"), "--library", str(tmp_path / "library")]

    class Killed(Exception):
        pass

    write = bench.pipeline.runner.write_json

    def write_then_die(path, value):
        write(path, value)
        raise Killed

    with monkeypatch.context() as patched:
        patched.setattr(bench.pipeline.runner, "write_json", write_then_die)
        with pytest.raises(Killed):
            main(argv)
    [checkpoint] = (tmp_path / "runs").rglob("*.resume.pt")
    results = checkpoint.parent / "seed0.json"
    written = results.read_text()
    assert main([*argv, "--resume"]) == 0
    assert not checkpoint.exists() and results.read_text() == written


def test_resume_runs_again_a_results_file_cut_short(tmp_path, capsys):
    """A results file truncated after the run (a copy cut short) is no finished run: `--resume` keeps
    it beside as seed0.json.unreadable, says so, and trains the run again to the same numbers."""
    argv = ["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--epochs", "1",
            "--output", str(tmp_path / "runs"), "--library", str(tmp_path / "library")]
    assert main(argv) == 0
    [results] = (tmp_path / "runs").rglob("seed0.json")
    whole = json.loads(results.read_text())
    cut = results.read_text()[:200]
    results.write_text(cut)
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    out = capsys.readouterr()
    said = (out.out + out.err).replace("\n", "")  # the progress log wraps long lines
    assert f"{results}: unreadable (truncated JSON at line" in said and "kept as seed0.json.unreadable, run again" in said
    assert results.with_name("seed0.json.unreadable").read_text() == cut
    again = json.loads(results.read_text())
    assert again["test"] == whole["test"] and again["predictions"] == whole["predictions"]


def bench_command(*argv) -> list[str]:
    return [sys.executable, "-m", "bench", *argv]


def wait_for(pattern: str, root: Path, process: subprocess.Popen, newer_than: float, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(p.stat().st_mtime > newer_than for p in root.rglob(pattern)):
            return
        if process.poll() is not None:
            pytest.fail(f"the grid ended before writing {pattern} (exit {process.returncode})")
        time.sleep(0.02)
    pytest.fail(f"no {pattern} within {timeout} s")


def test_a_grid_killed_twice_resumes_to_an_uninterrupted_grids_results(tmp_path):
    """SIGKILL in the middle of training, twice (the second time in another run of the grid), then
    `--resume`: the same files with the same numbers and tensors, and nothing partial left."""
    argv = ["run", "--method", "pt,spot-g", "--tasks", "cb", "--profile", "smoke", "--num-seeds", "2", "--epochs", "4",
            "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(bench_command(*argv, "--output", str(whole), "--library", str(tmp_path / "library-a")),
                   check=True, env=env, capture_output=True)
    command = bench_command(*argv, "--output", str(killed), "--library", str(tmp_path / "library-b"), "--resume")
    since = 0.0
    for pattern in ("seed0.resume.pt", "seed1.resume.pt"):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(pattern, killed, process, since)
        time.sleep(0.15)  # into the next epoch's steps
        process.send_signal(signal.SIGKILL)
        process.wait()
        since = time.time()
    subprocess.run(command, check=True, env=env, capture_output=True)
    same_results(whole, killed)
    leftovers = [p for p in killed.rglob("*") if p.is_file() and (p.name.startswith(".") or p.suffix == ".pt")]
    assert leftovers == []
    for path in killed.rglob("*.json"):
        json.loads(path.read_text())  # none corrupt
