"""The transfer study's machinery: a source schedule of its own (profile `source_train`, the
epoch cap), shipped source sets (pack, resolve, use, provenance), and the leaderboard's
verdict table against a reference method."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import methods.shipped as shipped_module
from bench.cli import main
from bench.core.config import RunConfig, apply_profile
from bench.pipeline.data import training_plan
from bench.pipeline.runner import capped
from bench.pipeline.stages import StageRequest, stage_config
from helpers import board_rows, result_file
from methods.base import Mixing
from methods.shipped import ShippedSet, resolve_sources, shipped_sets

SMOKE = ["--profile", "smoke", "--quiet"]


def cpu_sources_run() -> RunConfig:
    config = apply_profile(RunConfig(method="attempt", tasks=["rte"], k_shot=16, k_shot_draws=2), "cpu-sources")
    config.train.max_train_examples = 300
    return config


def test_source_stages_train_on_the_profiles_source_schedule():
    config = cpu_sources_run()
    source = stage_config(config, StageRequest("pt", ("qnli",), {}, source=True))
    assert (source.train.epochs, source.train.batch_size, source.train.epoch_cap, source.train.early_stopping_patience) \
        == (12, 32, 1000, 2)
    assert (source.k_shot, source.k_shot_draws) == (0, 1)
    assert source.train.max_train_examples == 300  # the run's own settings otherwise
    assert (config.train.epochs, config.train.batch_size, config.train.epoch_cap) == (8, 4, 0)  # the run's untouched


def test_stages_on_the_target_keep_the_runs_schedule_and_a_requests_own_patience_wins():
    config = cpu_sources_run()
    config.train.early_stopping_patience = 4
    target = stage_config(config, StageRequest("pt", ("rte",), {}, on_target=True))
    assert (target.train.epochs, target.train.batch_size, target.train.epoch_cap) == (8, 4, 0)
    assert target.train.early_stopping_patience == 0  # the run's own patience is not the stage's
    assert (target.k_shot, target.k_shot_draws) == (16, 2)
    asked = stage_config(config, StageRequest("pt", ("qnli",), {}, patience=5))
    assert asked.train.early_stopping_patience == 5
    epochs = stage_config(config, StageRequest("pt", ("qnli",), {}, epochs=3))
    assert epochs.train.epochs == 3


def test_profiles_without_a_source_schedule_keep_source_epochs():
    config = apply_profile(RunConfig(tasks=["rte"]), "cpu")
    source = stage_config(config, StageRequest("pt", ("qnli",), {}, source=True))
    assert (source.train.epochs, source.train.batch_size, source.train.epoch_cap) == (3, 32, 0)


@pytest.mark.parametrize("method_cap, epoch_cap, expected", [(0, 0, 0), (0, 7, 7), (5, 7, 5), (9, 7, 7), (4, 0, 4)])
def test_the_tighter_cap_wins(method_cap, epoch_cap, expected):
    assert capped(Mixing(cap=method_cap, max_tasks_per_batch=3), epoch_cap) == Mixing(cap=expected, max_tasks_per_batch=3)


def test_a_capped_epoch_draws_a_fresh_sample_each_epoch():
    items = [list(range(20))]  # training_plan only shuffles and cuts: plain ints stand for examples
    generator = torch.Generator().manual_seed(0)
    epochs = [sum(training_plan(items, 4, generator, Mixing(cap=8)), []) for _ in range(2)]
    assert [len(e) for e in epochs] == [8, 8] and set(epochs[0]) != set(epochs[1])


def test_a_run_with_an_epoch_cap_trains_that_many_rows_an_epoch(tmp_path):
    """The fixture's CB train split has 32 rows: batch 4, cap 6 -> 2 steps an epoch, not 8."""
    assert main(["run", "--method", "pt", "--tasks", "cb", *SMOKE, "--epochs", "2", "--batch-size", "4",
                 "--train", "epoch_cap=6", "--output", str(tmp_path)]) == 0
    result = json.loads(result_file(tmp_path, "pt", "cb").read_text())
    assert result["data"]["cb"]["sizes"]["train"] == 32
    assert result["timing"]["steps"] == 4
    assert result["identity"]["train"]["epoch_cap"] == 6


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A tiny-t5 source prompt for CB trained into a library, then packed as set `tiny-v1`."""
    root = tmp_path_factory.mktemp("shipped")
    library = root / "library"
    assert main(["sources", "train", "--tasks", "cb", *SMOKE, "--library", str(library)]) == 0
    [entry] = [json.loads(p.read_text()) for p in library.glob("*/entry.json")]
    assert main(["sources", "pack", entry["key"], "--name", "tiny-v1", "--version", "1", "--out", str(root / "sets"),
                 "--library", str(library), "--description", "a test set"]) == 0
    return root, entry


def test_a_packed_set_holds_the_library_prompt_its_scores_and_its_provenance(packed):
    root, entry = packed
    manifest = json.loads((root / "sets" / "tiny-v1" / "manifest.json").read_text())
    results = json.loads(Path(entry["results"]).read_text())
    prompt = manifest["prompts"]["cb"]
    assert (manifest["name"], manifest["version"], manifest["backbone"]) == ("tiny-v1", 1, "tiny-t5")
    assert prompt["library_key"] == entry["key"] and prompt["spec"] == entry["spec"]
    assert prompt["dev"] == {"cb": results["dev"]["cb"]["mean"]} and prompt["test"] == {"cb": results["test"]["cb"]["mean"]}
    assert prompt["floor"] == {"cb": results["baselines"]["floor"]["cb"]["mean"]} and "majority" not in prompt
    assert prompt["dev_curve"] == [round(e["dev_mean"], 2) for e in results["epochs"]]
    library_tensor = load_file(str(Path(entry["results"]).parents[3] / "tensors.safetensors"))["prompt"]
    assert torch.equal(ShippedSet(root / "sets" / "tiny-v1").prompt("cb"), library_tensor)
    assert list(library_tensor.shape) == prompt["shape"] == [10, 64]


def test_a_set_is_never_overwritten(packed, capsys):
    root, entry = packed
    assert main(["sources", "pack", entry["key"], "--name", "tiny-v1", "--version", "2", "--out", str(root / "sets"),
                 "--library", str(root / "library")]) == 2
    assert "already holds a shipped set: sets are never edited; give a new --name (e.g. -v3)" in capsys.readouterr().err


def test_pack_refuses_an_unknown_key(packed, capsys):
    root, _ = packed
    assert main(["sources", "pack", "0000", "--name", "x-v1", "--version", "1", "--out", str(root / "other"),
                 "--library", str(root / "library")]) == 2
    assert "no library entry '0000' in" in capsys.readouterr().err


def test_shipped_resolves_to_the_newest_set_of_the_backbone(packed, tmp_path):
    root, _ = packed
    sets = tmp_path / "sets"
    shutil.copytree(root / "sets" / "tiny-v1", sets / "tiny-v1")
    shutil.copytree(root / "sets" / "tiny-v1", sets / "tiny-v2")
    manifest = json.loads((sets / "tiny-v2" / "manifest.json").read_text())
    (sets / "tiny-v2" / "manifest.json").write_text(json.dumps({**manifest, "version": 2, "name": "tiny-v2"}))
    assert resolve_sources("shipped", "tiny-t5", sets) == "shipped:tiny-v2"
    assert resolve_sources("shipped:tiny-v1", "tiny-t5", sets) == "shipped:tiny-v1"
    with pytest.raises(Exception, match=r"no shipped source prompts for t5-base; shipped sets: tiny-v1 \(tiny-t5\), "
                                        r"tiny-v2 \(tiny-t5\)\. Use --sources library"):
        resolve_sources("shipped", "t5-base", sets)
    with pytest.raises(Exception, match="unknown shipped source set 'tiny-v9'; valid: tiny-v1, tiny-v2"):
        resolve_sources("shipped:tiny-v9", "tiny-t5", sets)
    with pytest.raises(Exception, match="shipped set tiny-v1 was trained on tiny-t5, not t5-base"):
        resolve_sources("shipped:tiny-v1", "t5-base", sets)


def test_a_run_with_shipped_sources_uses_them_and_records_where_they_came_from(packed, tmp_path, monkeypatch):
    root, entry = packed
    monkeypatch.setattr(shipped_module, "SHIPPED_ROOT", root / "sets")
    empty = tmp_path / "library"  # nothing trained here: the source prompt must come from the set
    assert main(["run", "--method", "attempt", "--tasks", "cb", *SMOKE, "--sources", "shipped", "--option", "sources=cb",
                 "--option", "init_source=cb", "--library", str(empty), "--output", str(tmp_path / "runs")]) == 0
    result = json.loads(result_file(tmp_path / "runs", "attempt", "cb").read_text())
    manifest = json.loads((root / "sets" / "tiny-v1" / "manifest.json").read_text())["prompts"]["cb"]
    assert result["config"]["sources"] == result["identity"]["sources"] == "shipped:tiny-v1"
    assert result["stages"] == [{"method": "pt", "tasks": ["cb"], "origin": "shipped:tiny-v1", "sha256": manifest["sha256"],
                                 "dev": manifest["dev"], "test": manifest["test"], "floor": manifest["floor"],
                                 "weak": manifest["weak"]}] * 2  # the attention's source and the target's start
    assert not list(empty.glob("*/entry.json"))


def test_a_damaged_shipped_file_is_refused(packed, tmp_path):
    root, _ = packed
    shutil.copytree(root / "sets" / "tiny-v1", tmp_path / "tiny-v1")
    path = tmp_path / "tiny-v1" / "cb.safetensors"
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(RuntimeError, match="does not match its manifest's SHA-256"):
        ShippedSet(tmp_path / "tiny-v1").prompt("cb")
    with pytest.raises(Exception, match="shipped set tiny-v1 has no source prompt for 'rte'; it has cb"):
        ShippedSet(tmp_path / "tiny-v1").prompt("rte")


def test_a_library_run_records_its_stages_with_their_own_scores(packed, tmp_path, monkeypatch):
    root, entry = packed
    notes = []
    monkeypatch.setattr("bench.core.progress.Progress.note", lambda self, message: notes.append(message))
    assert main(["run", "--method", "spot-t", "--tasks", "boolq", *SMOKE, "--option", "sources=cb",
                 "--library", str(root / "library"), "--output", str(tmp_path)]) == 0
    weak = [note for note in notes if " is weak: " in note]
    assert len(weak) == 1 and weak[0].startswith("pt stage on cb is weak: its test score 0.0 is at or below its "
                                                 "floor")  # the source; BoolQ's own embedding is no source
    result = json.loads(result_file(tmp_path, "spot-t", "boolq").read_text())
    embedding, source = result["stages"]
    assert embedding["method"] == "pt" and embedding["tasks"] == ["boolq"] and embedding["origin"].startswith("library:")
    assert source["origin"] == f"library:{entry['key']}"  # the entry packed above: trained once, reused
    results = json.loads(Path(entry["results"]).read_text())
    assert source["test"] == {"cb": results["test"]["cb"]["mean"]}
    test, floor = results["test"]["cb"]["mean"], results["baselines"]["floor"]["cb"]["mean"]
    assert test <= floor and source["weak"] == ["cb"]  # random tiny-t5 learns nothing: a weak source


def test_the_leaderboard_marks_rows_that_started_from_a_weak_stage(packed, tmp_path, capsys):
    root, entry = packed
    assert main(["run", "--method", "spot-t", "--tasks", "boolq", *SMOKE, "--option", "sources=cb",
                 "--library", str(root / "library"), "--output", str(tmp_path)]) == 0
    results = json.loads(Path(entry["results"]).read_text())
    test, floor = results["test"]["cb"]["mean"], results["baselines"]["floor"]["cb"]["mean"]
    capsys.readouterr()
    assert main(["leaderboard", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("Weak sources:") == 1  # BoolQ's own (weak) task embedding is not listed
    assert (f"Weak sources: row 1, spot-t, started from stages at or below their floor: "
            f"pt on cb (test {test:.1f} ≤ floor {floor:.1f})." in out)


def test_unknown_sources_are_refused_in_one_line(capsys):
    assert main(["run", "--method", "attempt", "--tasks", "cb", *SMOKE, "--sources", "elsewhere"]) == 2
    assert "unknown --sources 'elsewhere'; valid: library, imported, shipped, shipped:NAME" in capsys.readouterr().err
    assert main(["run", "--method", "pt", "--tasks", "cb", *SMOKE, "--sources", "shipped"]) == 2
    assert "no shipped source prompts for tiny-t5" in capsys.readouterr().err


def test_sources_list_shows_shipped_prompts(packed, monkeypatch, capsys, tmp_path):
    root, _ = packed
    monkeypatch.setattr(shipped_module, "SHIPPED_ROOT", root / "sets")
    assert main(["sources", "list", "--library", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((root / "sets" / "tiny-v1" / "manifest.json").read_text())["prompts"]["cb"]
    [row] = [line for line in out.splitlines() if "shipped:tiny-v1/cb" in line]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["shipped:tiny-v1/cb", "tiny-t5", "cb", "shipped v1: pt, 1 epoch"]
    assert cells[4:7] == [f"{manifest['dev']['cb']:.1f}", f"{manifest['test']['cb']:.1f}", f"{manifest['floor']['cb']:.1f}"]
    assert "0 entries in" in out and "1 shipped prompts (--sources shipped)" in out


def test_the_shipped_minilm_set_is_intact_and_says_how_it_was_made():
    [minilm] = [s for s in shipped_sets() if s.name == "minilm-cpu-v1"]
    assert minilm.backbone == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.tasks == ["mrpc", "qnli", "rte", "sst2"]
    for task in minilm.tasks:
        entry = minilm.entry(task)
        assert tuple(minilm.prompt(task).shape) == (20, 384)  # the SHA-256 is checked on load
        train = entry["spec"]["train"]
        assert (train["epoch_cap"], train["early_stopping_patience"], train["batch_size"], train["max_train_examples"]) \
            == (1000, 2, 32, 0)
        assert entry["spec"]["method_config"]["lr"] == 0.03 and entry["spec"]["method_config"]["prompt_length"] == 20
        assert entry["weak"] == ([task] if entry["test"][task] <= entry["majority"][task] else [])


def test_the_shipped_prompts_were_trained_on_the_cpu_rows(shared_data_cpu):
    """Every row of ../shared/data-cpu the profile trains and selects on, by fingerprint."""
    from bench.core.presets import PRESETS
    from tasks.loading import DataSource, fingerprint, load_examples
    from tasks.registry import TASKS

    [minilm] = [s for s in shipped_sets() if s.name == "minilm-cpu-v1"]
    source = DataSource("dir", str(shared_data_cpu))
    sizes = {}
    for task in minilm.tasks:
        recorded = minilm.entry(task)["spec"]["data"][task]["fingerprints"]
        train = load_examples(TASKS.get(task), "train", source, PRESETS.get("paper"), 42)
        assert recorded["train"] == fingerprint(train)
        sizes[task] = len(train)
    assert sizes == {"mrpc": 3667, "qnli": 7999, "rte": 2240, "sst2": 5227}  # MRPC: 3,668 lines with the header


def test_the_second_minilm_set_reads_pairs_with_two_towers_and_has_mnli_and_qqp(shared_data_cpu):
    """minilm-cpu-v2: every task of ../shared/data-cpu but RTE (not learned beyond its floor's noise:
    README), each prompt trained on every row there, pair tasks with two towers, its own scores
    above its floor; and it is what `--sources shipped` takes for MiniLM now."""
    from bench.core.presets import PRESETS
    from methods.shipped import resolve_sources
    from tasks.loading import DataSource, fingerprint, load_examples
    from tasks.registry import TASKS

    [v2] = [s for s in shipped_sets() if s.name == "minilm-cpu-v2"]
    assert v2.tasks == ["mnli", "mrpc", "qnli", "qqp", "sst2"] and v2.manifest["version"] == 2
    assert resolve_sources("shipped", "sentence-transformers/all-MiniLM-L6-v2") == "shipped:minilm-cpu-v2"
    source = DataSource("dir", str(shared_data_cpu))
    sizes = {}
    for task in v2.tasks:
        entry = v2.entry(task)
        assert tuple(v2.prompt(task).shape) == (20, 384)
        encoding = entry["spec"]["train"].get("pair_encoding", "joint")
        assert encoding == ("two_tower" if TASKS.get(task).pair_fields else "joint")
        train = load_examples(TASKS.get(task), "train", source, PRESETS.get("paper"), 42)
        assert entry["spec"]["data"][task]["fingerprints"]["train"] == fingerprint(train)
        sizes[task] = len(train)
        assert entry["test"][task] > entry["floor"][task] and not entry["weak"]
    assert sizes == {"mnli": 9000, "mrpc": 3667, "qnli": 7999, "qqp": 8000, "sst2": 5227}


def test_several_data_folders_give_each_task_the_first_that_has_it(shared_data, shared_data_cpu, tmp_path):
    """RTE from data-cpu (2,240 training rows, not data's 32-row sample), CB from data (no
    superglue/ in data-cpu), recorded as absolute folders; a missing folder is refused by name."""
    import os

    from bench.core.presets import PRESETS
    from tasks.loading import DataSource, load_examples
    from tasks.registry import TASKS

    source = DataSource.resolve(os.pathsep.join([str(shared_data_cpu), str(shared_data)]), False)
    assert source.path == os.pathsep.join([str(shared_data_cpu.resolve()), str(shared_data.resolve())])
    paper = PRESETS.get("paper")
    assert len(load_examples(TASKS.get("rte"), "train", source, paper, 42)) == 2240
    assert len(load_examples(TASKS.get("cb"), "train", source, paper, 42)) == 32
    assert source.describe(TASKS.get("cb"))["path"] == str(shared_data.resolve() / "superglue" / "CB")
    assert source.describe(TASKS.get("rte"))["path"] == str(shared_data_cpu.resolve() / "glue" / "RTE")
    with pytest.raises(Exception, match=f"--data-dir '{tmp_path / 'nowhere'}' is not a directory"):
        DataSource.resolve(os.pathsep.join([str(shared_data), str(tmp_path / "nowhere")]), False)


def test_few_shot_majority_rows_are_per_k_and_average_the_draws(tmp_path, capsys):
    """Each draw has its own most frequent training label: the k=4 row is the mean of the draws'."""
    assert main(["run", "--method", "pt", "--tasks", "cb", *SMOKE, "--epochs", "1", "--k-shot", "4", "--k-shot-draws", "3",
                 "--output", str(tmp_path)]) == 0
    draws = [json.loads(result_file(tmp_path, "pt", "cb", f"k4-draw{d}-seed0.json").read_text()) for d in range(3)]
    majority = [r["baselines"]["majority"]["cb"]["metrics"]["accuracy"] for r in draws]
    assert len(set(majority)) > 1  # the draws' own trained majorities differ, so the mean is not any one of them
    [floor] = {r["baselines"]["floor"]["cb"]["metrics"]["accuracy"] for r in draws}  # one test split for every draw
    capsys.readouterr()
    assert main(["leaderboard", str(tmp_path)]) == 0
    rows = {row["method"]: row for row in board_rows(capsys.readouterr().out)}
    trained, best = rows["*trained majority (4-row draws)*"], rows["*best constant (test)*"]
    assert trained["setting"] == best["setting"] == "k=4"
    assert trained["cb"] == f"{sum(majority) / 3:.1f}" and best["cb"] == f"{floor:.1f}"
