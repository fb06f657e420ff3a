"""The source-prompt library: content-addressed keys, `bench sources train/list/import`, and runs
with `--sources imported` (ATTEMPT's release: bare `[m, d]` tensors saved on a GPU)."""
from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.serialization

from bench.cli import main
from methods.library import PromptLibrary, entry_key, imported_spec
from methods.spot.model import mean_similarity, token_similarity
from helpers import result_file

SPEC = {"backbone": "tiny-t5", "method": "pt", "tasks": ["cb"], "method_config": {"prompt_length": 10, "lr": 0.3},
        "train": {"epochs": 1, "batch_size": 8}, "seed": 0}


def changed(path: tuple, value) -> dict:
    spec = copy.deepcopy(SPEC)
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


def test_each_entry_has_a_lock_of_its_own(tmp_path):
    """Held for one entry (here by another library object, as another process would), it keeps
    the same entry's lock from being taken, not another entry's."""
    from filelock import Timeout

    root = tmp_path / "library"  # not there yet: the first lock makes it
    with PromptLibrary(root).lock(SPEC).acquire(timeout=0):
        with pytest.raises(Timeout):
            PromptLibrary(root).lock(copy.deepcopy(SPEC)).acquire(timeout=0)
        with PromptLibrary(root).lock(changed(("seed",), 1)).acquire(timeout=0):
            pass
    with PromptLibrary(root).lock(SPEC).acquire(timeout=0):  # released on leaving the `with`
        pass


def test_same_spec_same_folder_any_change_a_new_key(tmp_path):
    library = PromptLibrary(tmp_path)
    reordered = dict(reversed(list(copy.deepcopy(SPEC).items())))
    assert library.folder(reordered) == library.folder(copy.deepcopy(SPEC)) == tmp_path / entry_key(SPEC)
    variants = [changed(("backbone",), "google-t5/t5-base"), changed(("tasks",), ["boolq"]),
                changed(("method_config", "prompt_length"), 100), changed(("method_config", "lr"), 0.30001),
                changed(("train", "epochs"), 5), changed(("seed",), 1), {**SPEC, "data_seed": 7}]
    keys = {entry_key(spec) for spec in variants}
    assert len(keys) == len(variants) and entry_key(SPEC) not in keys


def test_put_get_and_entries(tmp_path):
    library = PromptLibrary(tmp_path)
    assert library.get(SPEC) is None and library.entries() == []
    prompt = torch.randn(10, 64)
    folder = library.put(SPEC, {"prompt": prompt}, {"note": "x"})
    assert torch.equal(library.get(SPEC)["prompt"], prompt)
    assert library.entries() == [{"key": entry_key(SPEC), "spec": SPEC, "note": "x"}]
    assert sorted(p.name for p in folder.iterdir()) == ["entry.json", "tensors.safetensors"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys, library) -> list[dict]:
    code, out, _ = run_cli(capsys, "sources", "list", "--library", str(library), "--json")
    assert code == 0
    return json.loads(out)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Smoke-profile PT prompts of CB and BoolQ, trained once for this module."""
    root = tmp_path_factory.mktemp("library")
    assert main(["sources", "train", "--tasks", "cb,boolq", "--profile", "smoke", "--library", str(root), "--quiet"]) == 0
    return root


def test_sources_train_then_list(capsys, library, monkeypatch, tmp_path):
    monkeypatch.setattr("methods.shipped.SHIPPED_ROOT", tmp_path)  # the library's entries only
    entries = listed(capsys, library)
    assert sorted(e["spec"]["tasks"] for e in entries) == [["boolq"], ["cb"]]
    for entry in entries:
        assert entry["spec"]["method"] == "pt" and entry["spec"]["backbone"] == "tiny-t5"
        assert entry["spec"]["train"]["epochs"] == 1 and entry["spec"]["method_config"]["prompt_length"] == 10
        assert set(entry["test"]) == set(entry["spec"]["tasks"])
        results = json.loads(open(entry["results"]).read())
        assert results["run"]["method"] == "pt" and results["run"]["tasks"] == entry["spec"]["tasks"]
    code, out, _ = run_cli(capsys, "sources", "list", "--library", str(library))
    table = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ")]
    assert table[0] == ["key", "backbone", "tasks", "origin", "dev", "test", "floor", "weak"]
    assert sorted(row[1:4] for row in table[1:]) == [["tiny-t5", task, "pt, 1 epoch, fixtures data"] for task in ("boolq", "cb")]
    for row in table[1:]:  # each prompt's own scores beside its test split's floor, read from its results
        results = json.loads(open(next(e for e in entries if e["key"] == row[0])["results"]).read())
        task = row[2]
        test, floor = results["test"][task]["mean"], results["baselines"]["floor"][task]["mean"]
        assert row[4:7] == [f"{results['dev'][task]['mean']:.1f}", f"{test:.1f}", f"{floor:.1f}"]
        assert row[7] == ("yes" if test <= floor else "")
    assert [row[7] for row in table[1:]] == ["yes", "yes"]  # random tiny-t5 generates no label: 0 <= floor
    assert sorted(row[0] for row in table[1:]) == sorted(e["key"] for e in entries)
    assert code == 0 and out.splitlines()[-1] == f"2 entries in {library}; 0 shipped prompts (--sources shipped)"


def test_sources_train_again_trains_nothing(capsys, library, monkeypatch):
    before = {p: p.stat().st_mtime_ns for p in library.glob("*/*")}

    def no_training(*args, **kwargs):
        raise AssertionError("a library entry was trained again")

    monkeypatch.setattr("bench.pipeline.runner.train_one", no_training)
    code, out, _ = run_cli(capsys, "sources", "train", "--tasks", "cb,boolq", "--profile", "smoke",
                           "--library", str(library), "--quiet")
    assert code == 0 and out.splitlines() == ["cb: prompt (10, 64) in the library", "boolq: prompt (10, 64) in the library"]
    assert {p: p.stat().st_mtime_ns for p in library.glob("*/*")} == before


def test_scoring_in_other_batches_forks_nothing(capsys, library, monkeypatch, tmp_path):
    """eval_batch_size changes how many rows are scored at once: the library entries trained at the
    profile's value are found, and a run's folder is the one its profile's value names; a training
    setting (batch_size) still names a configuration of its own."""
    from bench.core.identity import configuration_key

    monkeypatch.setattr("bench.pipeline.runner.train_one", lambda *a, **k: pytest.fail("a library entry was trained again"))
    code, out, _ = run_cli(capsys, "sources", "train", "--tasks", "cb,boolq", "--profile", "smoke",
                           "--library", str(library), "--quiet", "--train", "eval_batch_size=3")
    assert code == 0 and out.splitlines() == ["cb: prompt (10, 64) in the library", "boolq: prompt (10, 64) in the library"]
    monkeypatch.undo()
    runs = []
    for setting in ("eval_batch_size=3", "eval_batch_size=32", "batch_size=4"):
        code, _, err = run_cli(capsys, "run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--epochs", "1",
                               "--quiet", "--output", str(tmp_path / setting), "--train", setting)
        assert code == 0, err
        runs.append(json.loads(next((tmp_path / setting).rglob("seed0.json")).read_text()))
    assert [r["identity"]["train"]["eval_batch_size"] for r in runs] == [3, 32, 32]  # the value used is recorded
    keys = [configuration_key(r["identity"]) for r in runs]
    assert keys[0] == keys[1] != keys[2] and [r["run"]["configuration"] for r in runs] == keys


def save_as_on_gpu(tensor: torch.Tensor, path, monkeypatch) -> None:
    """What the ATTEMPT authors' `torch.save(prompt)` of a CUDA tensor writes, made on a CPU-only
    machine: the file records its storages as `cuda:0`."""
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(tensor, path)


@pytest.fixture(scope="module")
def released_mnli():
    return torch.randn(10, 64, generator=torch.Generator().manual_seed(3))


@pytest.fixture
def imported(capsys, library, released_mnli, tmp_path, monkeypatch):
    path = tmp_path / "mnli.pt"
    save_as_on_gpu(released_mnli, path, monkeypatch)
    code, out, err = run_cli(capsys, "sources", "import", str(path), "--task", "mnli", "--model", "tiny-t5",
                             "--library", str(library))
    assert code == 0, err
    assert out.startswith("imported (10, 64) prompt for mnli on tiny-t5 into ")
    return path


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA-saved file loads as is where CUDA exists")
def test_a_gpu_saved_release_does_not_load_plainly(released_mnli, tmp_path, monkeypatch):
    path = tmp_path / "prompt.pt"
    save_as_on_gpu(released_mnli, path, monkeypatch)
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(path, weights_only=True)


def test_import_maps_to_cpu_and_is_listed(capsys, imported, library, released_mnli):
    tensors = PromptLibrary(library).get(imported_spec("tiny-t5", "mnli", "attempt-release"))
    assert tensors["prompt"].device.type == "cpu" and torch.equal(tensors["prompt"], released_mnli)
    entry = next(e for e in listed(capsys, library) if e["spec"].get("imported"))
    assert entry["spec"] == {"imported": "attempt-release", "backbone": "tiny-t5", "task": "mnli"}
    assert entry["file"] == str(imported.resolve())


def test_import_rejects_a_width_that_is_not_the_backbones(capsys, library, tmp_path, monkeypatch):
    path = tmp_path / "wide.pt"
    save_as_on_gpu(torch.randn(100, 768), path, monkeypatch)
    code, _, err = run_cli(capsys, "sources", "import", str(path), "--task", "mnli", "--model", "tiny-t5",
                           "--library", str(library))
    assert code == 2 and err.count("\n") == 1
    assert "prompt width 768 does not match tiny-t5 (d_model 64)" in err


def test_spot_t_with_imported_sources_uses_the_imported_prompt(capsys, imported, library, released_mnli, tmp_path):
    code, _, err = run_cli(capsys, "run", "--method", "spot-t", "--tasks", "cb", "--profile", "smoke", "--quiet",
                           "--sources", "imported", "--option", "sources=mnli",
                           "--output", str(tmp_path), "--library", str(library))
    assert code == 0, err
    report = json.loads(result_file(tmp_path, "spot-t", "cb").read_text())["method_report"]
    # the task embedding is a PT stage on the target, not an imported prompt, trained with the
    # run's schedule (smoke: 2 epochs), beside the 1-epoch CB source prompt of `sources train`
    cb = [e["spec"] for e in PromptLibrary(library).entries() if e["spec"].get("tasks") == ["cb"]]
    assert sorted(spec["train"]["epochs"] for spec in cb) == [1, 2]
    embedding = PromptLibrary(library).get(next(spec for spec in cb if spec["train"]["epochs"] == 2))["prompt"]
    assert report["chosen"] == ["mnli"]
    assert report["similarities"]["mean"]["mnli"] == pytest.approx(mean_similarity(released_mnli, embedding))
    assert report["similarities"]["tokens"]["mnli"] == pytest.approx(token_similarity(released_mnli, embedding))


def test_imported_sources_missing_is_one_clear_line(capsys, library, tmp_path):
    code, _, err = run_cli(capsys, "run", "--method", "spot-t", "--tasks", "cb", "--profile", "smoke", "--quiet",
                           "--sources", "imported", "--option", "sources=qnli",
                           "--output", str(tmp_path), "--library", str(library))
    assert code == 2 and err.count("\n") == 1
    assert "no imported source prompt for 'qnli' on tiny-t5; run `bench sources import FILE --task qnli" in err


@pytest.mark.parametrize("test_mean, weak", [(68.1, ["mrpc"]), (68.2, [])])
def test_a_source_scoring_exactly_its_floor_is_weak(tmp_path, test_mean, weak):
    """`weak`: test at or below the floor; a prompt that only matches the best constant answer learned nothing."""
    from methods.library import entry_scores

    results = tmp_path / "seed0.json"
    results.write_text(json.dumps({
        "dev": {"mrpc": {"mean": 70.0}}, "test": {"mrpc": {"mean": test_mean}},
        "baselines": {"floor": {"mrpc": {"mean": 68.1}}, "majority": {"mrpc": {"mean": 31.9}}},
        "epochs": [{"dev_mean": 70.0}], "timing": {"train_seconds": 1.0}}))
    scores = entry_scores({"results": str(results), "spec": {"tasks": ["mrpc"]}})
    assert scores["weak"] == weak and scores["floor"] == {"mrpc": 68.1} and "majority" not in scores


def test_the_library_table_names_a_hub_backbone_without_its_owner():
    from bench.cli import short_backbone

    assert short_backbone("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert short_backbone("tiny-t5") == "tiny-t5"
