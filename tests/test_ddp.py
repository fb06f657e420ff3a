"""`bench run` on two CPU processes (torchrun, which `accelerate launch` uses on GPUs; Accelerate's
DDP on the gloo backend) trains the experiment one process trains: every batch is split across
the processes and DDP averages their gradients, so the steps, the schedule and each step's
gradient are one process's, up to float rounding. (On CPUs `accelerate launch` without MPI
starts one process, so torchrun is the launcher here.)"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from helpers import result_file

RUN = ["-m", "bench", "run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--quiet", "--batch-size", "8",
       "--epochs", "2", "--max-eval-examples", "8"]
def launch() -> list[str]:
    with socket.socket() as probe:  # a free port for the processes' rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
TOLERANCE = {"rtol": 1e-4, "atol": 1e-6}
"""Two processes add their gradients in another order (gloo's all-reduce): rounding, nothing more."""


def run(argv: list[str], output) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([*argv, "--output", str(output)], env=env, capture_output=True, text=True, timeout=600)
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
