"""Library stages: keys that cannot collide and the data and schedule each stage trains on."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from bench.cli import main
import bench.pipeline.runner
import tasks.loading
from helpers import result_file
from methods.library import PromptLibrary

SMOKE = ["--profile", "smoke", "--quiet"]


def entries(library) -> list[dict]:
    return PromptLibrary(library).entries()


def stage_results(entry: dict) -> dict:
    return json.loads(open(entry["results"]).read())


def test_few_shot_runs_train_source_stages_on_full_data(tmp_path):
    """The reproduction: a --k-shot 4 ATTEMPT run must not train MNLI's source prompt on 4 examples
    and store it where a full-data run would find it."""
    library, output = tmp_path / "library", tmp_path / "runs"
    assert main(["run", "--method", "attempt", "--tasks", "cb", *SMOKE, "--k-shot", "4", "--option", "sources=mnli",
                 "--output", str(output), "--library", str(library)]) == 0
    [mnli] = [e for e in entries(library) if e["spec"]["tasks"] == ["mnli"]]
    assert mnli["spec"]["k_shot"] == 0
    assert stage_results(mnli)["data"]["mnli"]["sizes"]["train"] == 32  # the whole fixture, not 4
    assert json.loads(result_file(output, "attempt", "cb", "k4-draw0-seed0.json").read_text())["data"]["cb"]["sizes"][
        "train"] == 4
    assert main(["run", "--method", "attempt", "--tasks", "cb", *SMOKE, "--option", "sources=mnli",
                 "--output", str(output), "--library", str(library)]) == 0
    assert [e["key"] for e in entries(library)] == [mnli["key"]]  # the full-data run reuses it


def test_spot_t_task_embedding_sees_the_runs_own_few_shot_data(tmp_path):
    library = tmp_path / "library"
    assert main(["run", "--method", "spot-t", "--tasks", "cb", *SMOKE, "--k-shot", "4", "--k-shot-draws", "2",
                 "--option", "sources=mnli", "--output", str(tmp_path / "runs"), "--library", str(library)]) == 0
    embeddings = [e for e in entries(library) if e["spec"]["tasks"] == ["cb"]]
    assert len(embeddings) == 2  # one per draw: their training data differ
    assert {e["spec"]["k_shot"] for e in embeddings} == {4}
    assert {stage_results(e)["data"]["cb"]["sizes"]["train"] for e in embeddings} == {4}
    assert {e["spec"]["train"]["epochs"] for e in embeddings} == {2}  # the target's schedule (smoke: 2 epochs)


def test_stage_key_tells_imported_from_trained_sources(tmp_path, capsys):
    """An mpt-source stage distilled from imported prompts is never reused by a --sources library run."""
    library = tmp_path / "library"
    for task, seed in (("mnli", 1), ("sst2", 2)):
        torch.save(torch.randn(10, 64, generator=torch.Generator().manual_seed(seed)), tmp_path / f"{task}.pt")
        assert main(["sources", "import", str(tmp_path / f"{task}.pt"), "--task", task, "--model", "tiny-t5",
                     "--library", str(library)]) == 0
    for sources in ("imported", "library"):
        assert main(["run", "--method", "mpt", "--tasks", "cb", *SMOKE, "--sources", sources,
                     "--option", "source_tasks=mnli,sst2", "--output", str(tmp_path / sources),
                     "--library", str(library)]) == 0
    distilled = [e["spec"] for e in entries(library) if e["spec"].get("method") == "mpt-source"]
    assert sorted(spec["sources"] for spec in distilled) == ["imported", "library"]
    trained_here = [e["spec"] for e in entries(library) if e["spec"].get("method") == "pt"]
    assert sorted(spec["tasks"][0] for spec in trained_here) == ["mnli", "sst2"]  # only for the library run
    assert all(spec["sources"] is None for spec in trained_here)  # PT uses no source prompts


def test_stage_key_holds_data_content_not_its_path(tmp_path, shared_data):
    library = tmp_path / "library"
    first, second = tmp_path / "one", tmp_path / "two"
    for root in (first, second):
        shutil.copytree(shared_data / "superglue" / "CB", root / "superglue" / "CB")

    def train(root) -> list[str]:
        for cache in (tasks.loading.read_rows, bench.pipeline.runner.cached_examples, bench.pipeline.runner.cached_fingerprint):
            cache.cache_clear()  # as in a new process: files are read once per process
        assert main(["sources", "train", "--tasks", "cb", *SMOKE, "--data-dir", str(root), "--library", str(library)]) == 0
        return sorted(e["key"] for e in entries(library))

    keys = train(first)
    assert train(second) == keys  # same content elsewhere: the same entry
    [spec] = [e["spec"] for e in entries(library)]
    assert spec["data"]["cb"] == {"source": {"kind": "dir"}, "fingerprints": spec["data"]["cb"]["fingerprints"]}
    val = second / "superglue" / "CB" / "val.jsonl"
    val.write_text("".join(val.read_text().splitlines(keepends=True)[:-1]))  # one record fewer
    assert len(train(second)) == 2


def test_amp_own_prompts_get_the_papers_schedule(tmp_path):
    """AMP's stage 1 trains each task's prompt for up to `prompt_epochs` with early stopping
    (smoke: 2 epochs), on the run's data, not with the 1-epoch source schedule."""
    library = tmp_path / "library"
    assert main(["run", "--method", "amp", "--tasks", "cb,wsc", *SMOKE, "--output", str(tmp_path / "runs"),
                 "--library", str(library)]) == 0
    stages = {e["spec"]["tasks"][0]: e["spec"] for e in entries(library)}
    assert set(stages) == {"cb", "wsc"}
    assert all(s["train"]["epochs"] == 2 and s["train"]["early_stopping_patience"] == 5 for s in stages.values())
    assert len({s["seed"] for s in stages.values()}) == 2  # each stage its own seed


def test_amp_refuses_imported_sources(tmp_path, capsys):
    assert main(["run", "--method", "amp", "--tasks", "cb,wsc", *SMOKE, "--sources", "imported",
                 "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "amp uses no imported source prompts" in err and "--sources library" in err


@pytest.mark.parametrize("method,expected", [("attempt-m", {"accuracy", "macro_f1"}), ("amp", {"accuracy"})])
def test_official_first_task_evaluation_is_attempt_m_only(tmp_path, method, expected):
    """Under attempt-code, ATTEMPT-m scores WSC with CB's prompt and metrics, as the official code
    did; other multi-task methods score each task with its own."""
    assert main(["run", "--method", method, "--tasks", "cb,wsc", *SMOKE, "--preset", "attempt-code",
                 "--option", "sources=mnli" if method == "attempt-m" else "prompt_epochs=1",
                 "--output", str(tmp_path / "runs"), "--library", str(tmp_path / "library")]) == 0
    result = json.loads(result_file(tmp_path / "runs", method, "cb+wsc").read_text())
    assert set(result["test"]["wsc"]["metrics"]) == expected


def test_attempt_code_decodes_at_most_19_new_tokens(tmp_path):
    assert main(["run", "--method", "pt", "--tasks", "cb", *SMOKE, "--preset", "attempt-code", "--epochs", "1",
                 "--output", str(tmp_path)]) == 0
    result = json.loads(result_file(tmp_path, "pt", "cb").read_text())
    assert result["data"]["cb"]["max_new_tokens"] == {"validation": 19, "test": 19}  # max_length 20 incl. the start token


RACER = """
import os, sys, time
from pathlib import Path

import torch

from bench.cli import main
import bench.pipeline.runner as runner

log, library = Path(sys.argv[1]), sys.argv[2]
ask, train = runner.run_stage, runner.train_one


def write(line):
    with log.open("a") as out:
        out.write(line + "\\n")


def asking(*args, **kwargs):
    write(f"asked {os.getpid()}")
    tensors = ask(*args, **kwargs)
    torch.save(tensors, log.parent / f"read-{os.getpid()}.pt")
    return tensors


def training(config, *args, **kwargs):
    if config.output.startswith(library):  # a stage: its results go to its library folder
        write(f"trained {os.getpid()}")
        deadline = time.time() + 120  # the race's window: until both processes have asked for it
        while len({l for l in log.read_text().splitlines() if l.startswith("asked")}) < 2 and time.time() < deadline:
            time.sleep(0.05)
    return train(config, *args, **kwargs)


runner.run_stage, runner.train_one = asking, training
sys.exit(main(sys.argv[3:]))
"""
"""`bench ARGV` with a log of each process's requests of library stages and of the stages it
trains, and the tensors each request got (`read-<pid>.pt`). A stage's training waits until both
processes have asked for it, so that without a lock both would find the library without it."""


def test_concurrent_shards_train_a_shared_stage_once_and_read_the_same_tensors(tmp_path):
    """Two shards of a grid at once, both needing MNLI's source prompt: one trains it, the other
    waits for its lock (and says so), then reads the entry the first stored."""
    library, log = tmp_path / "library", tmp_path / "stages.log"
    argv = ["run", "--method", "attempt", "--tasks", "cb", "--profile", "smoke", "--epochs", "1", "--seeds", "0,1",
            "--option", "sources=mnli", "--output", str(tmp_path / "runs"), "--library", str(library)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    shards = [subprocess.Popen([sys.executable, "-c", RACER, str(log), str(library), *argv, "--shard", f"{k}/2"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for k in (1, 2)]
    errors = [shard.communicate(timeout=600)[1] for shard in shards]
    assert [shard.returncode for shard in shards] == [0, 0], errors
    lines = log.read_text().splitlines()
    assert len({line for line in lines if line.startswith("asked")}) == 2
    assert len([line for line in lines if line.startswith("trained")]) == 1
    [entry] = entries(library)
    stored = load_file(str(library / entry["key"] / "tensors.safetensors"))
    reads = [torch.load(path) for path in sorted(tmp_path.glob("read-*.pt"))]
    assert len(reads) == 2
    for read in reads:
        assert sorted(read) == sorted(stored) and all(torch.equal(read[k], stored[k]) for k in stored)
    waited = [" ".join(error.split()) for error in errors]
    assert sum("pt on mnli: waiting for another process training this library stage" in e for e in waited) == 1
    # the waiting run records its wait in its stage record (the cost table leaves it out); the
    # trainer's run waited for nothing and records none
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("seed*.json")]
    waits = [stage["waited_seconds"] for r in records for stage in r["stages"] if "waited_seconds" in stage]
    assert len(records) == 2 and len(waits) == 1 and waits[0] > 0
