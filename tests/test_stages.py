"""Library stages: keys that cannot collide and the data and schedule each stage trains on."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import bench.runner
import tasks.loading
from bench.cli import main
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
        for cache in (tasks.loading.read_rows, bench.runner.cached_examples, bench.runner.cached_fingerprint):
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
