"""`bench run` on two CPU processes (torchrun, which `accelerate launch` uses on GPUs; Accelerate's
DDP on the gloo backend) trains the experiment one process trains: every batch is split across
the processes, each part's loss is weighted by its share of the batch's target tokens and DDP
averages their gradients, so the steps, the schedule and each step's gradient are one
process's, up to float rounding, also for parts of unequal size; and each process draws its own
dropout masks. (On CPUs `accelerate launch` without MPI starts one process, so torchrun is the
launcher here.)"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bench.pipeline.training import seed_process_epoch
from helpers import result_file
from methods.library import PromptLibrary

RUN = ["-m", "bench", "run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--quiet", "--batch-size", "8",
       "--epochs", "2", "--max-eval-examples", "8"]
def launch() -> list[str]:
    with socket.socket() as probe:  # a free port for the processes' rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
TOLERANCE = {"rtol": 1e-4, "atol": 1e-6}
"""Two processes add their gradients in another order (gloo's all-reduce): rounding, nothing more."""


REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
"""Offline, one thread per process, and this checkout's bench (tests/ddp_worker.py runs from tests/)."""


def run(argv: list[str], output) -> dict:
    done = subprocess.run([*argv, "--output", str(output)], env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    path = result_file(output, "pt", "cb")
    return {"result": json.loads(path.read_text()), "tensors": load_file(path.with_suffix(".safetensors"))}


def test_two_processes_train_what_one_does(tmp_path):
    flags = ["--train", "backbone_dropout=false"]
    one = run([sys.executable, *RUN, *flags], tmp_path / "one")
    two = run([*launch(), *RUN, *flags], tmp_path / "two")
    assert two["result"]["environment"]["processes"] == 2 and one["result"]["environment"]["processes"] == 1
    steps = [[e["optimizer_steps"] for e in r["result"]["epochs"]] for r in (one, two)]
    assert steps[0] == steps[1] == [4, 4]  # CB's 32 fixture examples in batches of 8, split 4 + 4
    torch.testing.assert_close(two["tensors"]["prompt"], one["tensors"]["prompt"], **TOLERANCE)
    for a, b in zip(one["result"]["epochs"], two["result"]["epochs"]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["grad_norm"]["mean"] == pytest.approx(a["grad_norm"]["mean"], rel=1e-4)


def test_with_dropout_the_masks_differ_so_the_runs_do(tmp_path):
    """The control: dropout draws other masks for two half-batches than for one whole batch."""
    one = run([sys.executable, *RUN], tmp_path / "one")
    two = run([*launch(), *RUN], tmp_path / "two")
    assert not torch.allclose(two["tensors"]["prompt"], one["tensors"]["prompt"], **TOLERANCE)


def test_two_processes_train_a_library_stage_together(tmp_path):
    """The stage's lock is the first process's alone: the second trains MNLI's source prompt with
    it instead of waiting for a lock the first holds while it waits for the second."""
    library = tmp_path / "library"
    argv = [*launch(), "-m", "bench", "run", "--method", "attempt", "--tasks", "cb", "--profile", "smoke", "--quiet",
            "--epochs", "1", "--option", "sources=mnli", "--library", str(library), "--output", str(tmp_path / "runs")]
    launched = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    try:
        _, error = launched.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(launched.pid, signal.SIGKILL)  # the launcher and both processes
        launched.wait()
        pytest.fail("two processes training a library stage did not finish in 300 s (a deadlock)")
    assert launched.returncode == 0, error[-3000:]
    assert [entry["spec"]["tasks"] for entry in PromptLibrary(library).entries()] == [["mnli"]]


SEEDS_SEEN = """
import sys

import torch

from bench.cli import main
import bench.pipeline.runner as runner

train_epoch = runner.train_epoch


def recording(model, plan, collator, accelerator, *args, **kwargs):
    with open(f"{sys.argv[1]}/process{accelerator.process_index}.log", "a") as log:
        log.write(f"{torch.initial_seed()}\\n")
    return train_epoch(model, plan, collator, accelerator, *args, **kwargs)


runner.train_epoch = recording
sys.exit(main(sys.argv[2:]))
"""
"""`bench ARGV`, each process logging the seed of its random stream as each epoch starts."""


def test_each_process_trains_each_epoch_on_a_stream_of_its_own(tmp_path):
    """`bench run` under torchrun: the runner seeds each epoch's stream (`seed_process_epoch`)."""
    script, logs = tmp_path / "seeds_seen.py", tmp_path / "logs"
    script.write_text(SEEDS_SEEN)
    logs.mkdir()
    argv = [*launch(), str(script), str(logs), *RUN[2:], "--seeds", "3", "--output", str(tmp_path / "runs")]
    done = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = [(logs / f"process{i}.log").read_text().split() for i in (0, 1)]
    assert first == ["3", "3"]  # the first process keeps the run's stream, as one process does
    assert len(set(second)) == 2 and not set(second) & set(first)  # the other: its own, a new one each epoch


def test_a_later_processs_stream_depends_on_the_run_seed_not_on_what_came_before():
    """So a resumed run, whose generators are the first process's from the checkpoint, draws on
    every process what an uninterrupted one draws."""
    def draws(seed: int, index: int, before: int) -> torch.Tensor:
        torch.manual_seed(before)
        seed_process_epoch(seed, 2, index)
        return torch.rand(3)

    with torch.random.fork_rng():
        assert torch.equal(draws(3, 1, before=0), draws(3, 1, before=9))
        assert not torch.equal(draws(3, 1, before=0), draws(4, 1, before=0))
        assert torch.equal(draws(3, 0, before=9), draws(5, 0, before=9))  # the first process's stays as it was


# -- one step, by hand: tests/ddp_worker.py -------------------------------------------------------
def worker(argv: list[str], out: Path) -> list[dict]:
    """What each process of tests/ddp_worker.py recorded, in process order."""
    done = subprocess.run([*argv, str(REPO / "tests" / "ddp_worker.py"), str(out)], env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(out / f"process{i}.pt") for i in range(len(list(out.glob("process*.pt"))))]


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    root = tmp_path_factory.mktemp("steps")
    return worker([sys.executable], root / "one"), worker(launch(), root / "two")


def test_a_batch_of_5_over_2_processes_with_unequal_targets_gets_one_processs_gradient(steps):
    """Examples 0, 2, 4 (7 target tokens) on one process, 1, 3 (8) on the other: the mean of the
    two parts' losses would weigh a token of the first part 1/14, of the second 1/16, not 1/15."""
    [one], two = steps
    assert len(two) == 2
    for part in two:
        torch.testing.assert_close(part["gradient"], one["gradient"], **TOLERANCE)
        assert part["loss"] == pytest.approx(one["loss"], rel=1e-6)


def test_each_process_draws_its_own_dropout_masks(steps):
    """The same input on both processes: their masks differ only where their streams do."""
    _, (first, second) = steps
    assert torch.equal(first["mask_shared"], second["mask_shared"])  # the control: one stream, one mask
    assert first["mask"].any() and not torch.equal(first["mask"], second["mask"])
