"""`--threads`: the count torch computes with, its default, and OMP_NUM_THREADS left alone; read
from what real (smoke) runs record."""
from __future__ import annotations

import json

import pytest
import torch

from bench.cli import main

RUN = ["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--quiet", "--epochs", "1",
       "--max-eval-examples", "4"]


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def recorded_threads(tmp_path, *extra) -> int:
    assert main([*RUN, "--output", str(tmp_path), *extra]) == 0
    return json.loads(next(tmp_path.rglob("seed0.json")).read_text())["environment"]["torch_threads"]


def test_threads_flag_sets_the_count_the_run_uses(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the flag wins over the environment
    torch.set_num_threads(2)
    assert recorded_threads(tmp_path, "--threads", "1") == 1


def test_default_is_half_the_usable_cores(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    torch.set_num_threads(1)
    assert recorded_threads(tmp_path) == 3


def test_one_usable_core_still_gets_one_thread(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    torch.set_num_threads(2)
    assert recorded_threads(tmp_path) == 1


def test_omp_num_threads_is_left_to_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    torch.set_num_threads(2)  # what torch made of OMP_NUM_THREADS=2 at start
    assert recorded_threads(tmp_path) == 2


def test_zero_threads_is_one_line(capsys, tmp_path):
    assert main([*RUN, "--output", str(tmp_path), "--threads", "0"]) == 2
    assert capsys.readouterr().err == "bench: error: argument --threads: takes a positive integer, not '0'\n"
