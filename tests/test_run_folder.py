"""What `bench run` does with the folder it writes to: results already there (refused, kept with
--resume, trained again with --overwrite), a run another process is training (skipped under its
lock), Ctrl-C (one line on how to go on), and a weak source stage (said once)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import bench.core.progress
import bench.pipeline.runner as runner
from bench.cli import build_parser, grid_plan, main
from helpers import result_file

REPO = Path(__file__).resolve().parent.parent
RUN = ["run", "--method", "pt", "--tasks", "rte", "--profile", "smoke"]  # 2 epochs a run


@pytest.fixture()
def trained(monkeypatch):
    """The runs `train_prepared` trains in this test, by seed, each trained for real."""
    seeds = []
    train = runner.train_prepared

    def counted(prepared, seed, *args, **kwargs):
        seeds.append(seed)
        return train(prepared, seed, *args, **kwargs)

    monkeypatch.setattr(runner, "train_prepared", counted)
    return seeds


def planned_path(*argv: str) -> Path:
    """Where `bench run ARGV` writes its first run's results."""
    [(config, unit), *_] = grid_plan(build_parser().parse_args(list(argv)))[0]
    return runner.prepare_run(config, list(unit.tasks), unit.draw).path(unit.seed)


def test_a_rerun_over_finished_results_is_refused_before_any_work(tmp_path, capsys, trained):
    argv = [*RUN, "--seeds", "0,1", "--quiet", "--output", str(tmp_path)]
    assert main(argv) == 0 and trained == [0, 1]
    first = result_file(tmp_path, "pt", "rte")
    before = first.read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"bench: error: {tmp_path} already holds 2 finished results of this grid (e.g. {first}); pass --resume to "
        "keep them and run the rest, --overwrite to retrain them, or another --output\n")
    assert trained == [0, 1] and first.read_bytes() == before


def test_resume_keeps_finished_results_and_overwrite_trains_them_again(tmp_path, capsys, trained):
    argv = [*RUN, "--seeds", "0", "--quiet", "--output", str(tmp_path)]
    assert main(argv) == 0
    assert main([*RUN, "--seeds", "0,1", "--quiet", "--output", str(tmp_path), "--resume"]) == 0
    assert trained == [0, 1]  # seed 0 kept, seed 1 trained
    assert main([*argv, "--overwrite"]) == 0
    assert trained == [0, 1, 0]
    capsys.readouterr()
    assert main([*argv, "--overwrite", "--resume"]) == 2
    assert capsys.readouterr().err == ("bench: error: --resume keeps the results --output already holds and "
                                       "--overwrite trains them again: give one\n")
    assert trained == [0, 1, 0]


def test_results_of_another_configuration_do_not_count(tmp_path, trained):
    """Other settings write to another configuration folder: nothing of theirs is overwritten."""
    assert main([*RUN, "--quiet", "--output", str(tmp_path)]) == 0
    assert main([*RUN, "--epochs", "1", "--quiet", "--output", str(tmp_path)]) == 0
    assert trained == [0, 0] and len(list(tmp_path.glob("pt/rte/*/seed0.json"))) == 2


def test_results_another_process_wrote_since_the_start_are_not_trained_again(tmp_path, capsys, monkeypatch):
    """Seed 1's results appear while seed 0 trains (another copy of the command finished it): kept."""
    seeds, train = [], runner.train_prepared

    def and_seed1_elsewhere(prepared, seed, *args, **kwargs):
        seeds.append(seed)
        path = train(prepared, seed, *args, **kwargs)
        prepared.path(1).write_bytes(path.read_bytes())
        return path

    monkeypatch.setattr(runner, "train_prepared", and_seed1_elsewhere)
    assert main([*RUN, "--seeds", "0,1", "--output", str(tmp_path)]) == 0
    seed1 = result_file(tmp_path, "pt", "rte", "seed1.json")
    assert seeds == [0] and f"  {seed1}: already done, skipped\n" in capsys.readouterr().err


HOLD = """import sys, time
from pathlib import Path
from bench.pipeline.locks import unit_lock
with unit_lock(Path(sys.argv[1])) as holder:
    print(holder, flush=True)
    time.sleep(600)
"""


def test_a_run_another_process_is_training_is_skipped_and_its_lock_dies_with_it(tmp_path, capsys, trained):
    argv = [*RUN, "--seeds", "0,1", "--output", str(tmp_path)]
    seed0 = planned_path(*argv)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(seed0)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "None\n"  # it holds the lock
        assert main(argv) == 0
        out, err = capsys.readouterr()
        assert (f"  pt · rte · seed 0 is being trained by another process (pid {holder.pid} on "
                f"{socket.gethostname()}); skipped\n") in err
        assert f"1 results in {tmp_path}/ (1 skipped: another process was training them); leaderboard" in out
        assert trained == [1] and not seed0.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert main([*argv, "--resume"]) == 0  # killed, it holds nothing: seed 0 is trained
    assert trained == [1, 0] and seed0.is_file()
    assert not seed0.with_suffix(".owner").exists()  # said who held the lock only while it was held


def interrupt_at(monkeypatch, epoch_call: int) -> list[int]:
    """Ctrl-C in the `epoch_call`-th epoch trained (1-based); the epochs trained, in order."""
    calls, train_epoch = [], runner.train_epoch

    def train_or_stop(*args, **kwargs):
        calls.append(len(calls) + 1)
        if len(calls) == epoch_call:
            raise KeyboardInterrupt
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(runner, "train_epoch", train_or_stop)
    return calls


def test_ctrl_c_says_how_far_the_grid_got_and_that_resume_goes_on_from_there(tmp_path, capsys, monkeypatch):
    argv = [*RUN, "--seeds", "0,1", "--quiet", "--output", str(tmp_path)]
    interrupt_at(monkeypatch, 4)  # seed 0's 2 epochs, seed 1's first, then Ctrl-C in its second
    assert main(argv) == 130
    assert capsys.readouterr().err == (
        f"bench: interrupted: 1 of 2 runs finished in {tmp_path}/; rerun the same command with --resume to skip the "
        "finished runs and go on with the rest (a run cut short continues from its last finished epoch)\n")
    monkeypatch.undo()
    epochs = interrupt_at(monkeypatch, 0)  # counts, never stops
    assert main([*argv, "--resume"]) == 0
    assert epochs == [1]  # seed 1's second epoch only: what the message said
    assert result_file(tmp_path, "pt", "rte", "seed1.json").is_file()


def test_a_rerun_over_a_run_cut_short_is_refused_without_resume(tmp_path, capsys, monkeypatch):
    """Ctrl-C in the second epoch leaves the first epoch's checkpoint: a rerun without --resume
    would start the run over and overwrite it, so it is refused; --overwrite starts over."""
    argv = [*RUN, "--quiet", "--output", str(tmp_path)]
    interrupt_at(monkeypatch, 2)
    assert main(argv) == 130
    monkeypatch.undo()
    capsys.readouterr()
    [checkpoint] = tmp_path.rglob("seed0.resume.pt")
    before = checkpoint.read_bytes()
    assert main(argv) == 2
    assert capsys.readouterr().err == (f"bench: error: {tmp_path} holds 1 run of this grid cut short (epoch checkpoint "
                                       f"{checkpoint}); pass --resume to go on from it, --overwrite to start over, or "
                                       "another --output\n")
    assert checkpoint.read_bytes() == before
    epochs = interrupt_at(monkeypatch, 0)
    assert main([*argv, "--overwrite"]) == 0 and epochs == [1, 2]  # started over: both epochs


def test_ctrl_c_in_a_resumed_grid_says_to_rerun_the_same_command(tmp_path, capsys, monkeypatch):
    interrupt_at(monkeypatch, 1)
    assert main([*RUN, "--quiet", "--output", str(tmp_path), "--resume"]) == 130
    assert capsys.readouterr().err.startswith(
        f"bench: interrupted: 0 of 1 runs finished in {tmp_path}/; rerun the same command to skip the finished runs")


def test_a_weak_source_stage_is_said_once_per_command(tmp_path, monkeypatch):
    """Both targets fetch CB's source prompt (random tiny-t5: weak); the warning comes once."""
    notes = []
    monkeypatch.setattr(bench.core.progress.Progress, "note", lambda self, message: notes.append(message))
    assert main(["run", "--method", "spot-t", "--tasks", "boolq,wic", "--profile", "smoke", "--option", "sources=cb",
                 "--quiet", "--library", str(tmp_path / "library"), "--output", str(tmp_path / "runs")]) == 0
    weak = [note for note in notes if " is weak: " in note]
    assert len(weak) == 1 and weak[0].startswith("pt stage on cb is weak: its test score 0.0 is at or below its floor")
    assert len(list((tmp_path / "runs").rglob("seed0.json"))) == 2


def test_demo_run_again_keeps_its_results(monkeypatch, tmp_path, trained):
    """`bench demo` is the command users run again: a rerun keeps what the first one trained."""
    monkeypatch.setattr("bench.cli.cpu_data_dir", lambda given: None)  # the smoke run: 5 SuperGLUE tasks
    assert main(["demo", "--quiet", "--output", str(tmp_path)]) == 0 and len(trained) == 5
    assert main(["demo", "--quiet", "--output", str(tmp_path)]) == 0 and len(trained) == 5
