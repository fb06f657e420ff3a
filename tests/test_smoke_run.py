"""End to end: `bench run --profile smoke` writes complete results and a leaderboard."""
from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from bench.cli import main
from helpers import board_rows, result_file


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    output = tmp_path_factory.mktemp("runs")
    code = main(["run", "--method", "pt", "--suite", "superglue", "--profile", "smoke", "--quiet", "--output", str(output)])
    assert code == 0
    return output


def test_one_result_per_task_with_full_record(smoke):
    paths = sorted(p.relative_to(smoke).parts for p in smoke.rglob("seed*.json"))
    assert [(method, task, name) for method, task, _, name in paths] == [
        ("pt", t, "seed0.json") for t in ("boolq", "cb", "multirc", "wic", "wsc")]
    path = result_file(smoke, "pt", "cb")
    result = json.loads(path.read_text())
    assert result["run"] == {"method": "pt", "tasks": ["cb"], "suite": "superglue", "seed": 0, "preset": "paper",
                             "profile": "smoke", "backbone": "tiny-t5", "k_shot": 0, "draw": 0,
                             "configuration": path.parent.name}
    assert len(path.parent.name) == 12 and path.stat().st_mode & 0o777 == 0o644  # readable by others
    assert result["data"]["cb"]["sizes"] == {"train": 32, "validation": 12, "test": 12}
    assert result["data"]["cb"]["source"]["kind"] == "fixtures"
    assert len(result["data"]["cb"]["fingerprints"]["test"]) == 16
    assert [e["epoch"] for e in result["epochs"]] == [1, 2]
    assert set(result["epochs"][0]["dev"]["cb"]["metrics"]) == {"accuracy", "macro_f1"}
    assert result["best_epoch"] in (1, 2)
    assert set(result["test"]["cb"]) == {"metrics", "mean", "invalid", "n"} and result["test"]["cb"]["n"] == 12
    assert result["params"] == {"trainable": 640, "per_task": 640, "shared": 0, "frozen_extra": 0,
                                "backbone": 189_440, "num_tasks": 1, "head": 0, "param_per_task": 640.0}
    assert result["config"]["protocol"]["copa_question"] is True
    assert result["config"]["train"]["epochs"] == 2 and result["method_config"]["prompt_length"] == 10
    assert result["memory"]["peak_rss_bytes"] > 0 and result["memory"]["autograd_saved_bytes_first_step"] > 0
    assert result["memory"]["peak_rss_scope"] == "run"  # Linux: the peak is reset at the start of each run
    assert result["timing"]["steps"] == 8  # 32 examples / batch 8 x 2 epochs
    assert result["environment"]["packages"]["torch"]
    # the test predictions are recorded, and scoring them again gives the recorded metrics
    from bench.pipeline.evaluation import score
    from bench.core.presets import PRESETS
    from tasks.loading import DataSource, load_examples
    from tasks.registry import TASKS

    examples = load_examples(TASKS.get("cb"), "test", DataSource("fixtures"), PRESETS.get("paper"))
    assert len(result["predictions"]["cb"]) == 12
    assert score(TASKS.get("cb"), examples, result["predictions"]["cb"], PRESETS.get("paper")).metrics == result["test"]["cb"]["metrics"]


def test_checkpoint_holds_only_the_prompt(smoke):
    tensors = load_file(str(result_file(smoke, "pt", "wic", "seed0.safetensors")))
    assert list(tensors) == ["prompt"] and tuple(tensors["prompt"].shape) == (10, 64)


def test_leaderboard_has_our_row_and_the_papers(smoke):
    board = (smoke / "leaderboard.md").read_text()
    rows = {row["method"]: row for row in board_rows(board)}
    ours = rows["pt"]
    assert list(ours) == ["#", "method", "setting", "backbone", "runs", "multirc", "boolq", "wic", "wsc", "cb",
                          "avg", "Δ paper avg", "invalid", "collapsed"]  # one preset: named above, not a column
    assert "Every row's preset: `paper`." in board
    assert ours["#"] == "1" and ours["backbone"] == "tiny-t5 (profile smoke)"
    assert ours["collapsed"] == "5/5"  # 0 on every task: at or below each floor
    assert ours["Δ paper avg"] == "–"  # a random tiny-t5 on fixtures is not set against T5-base's published numbers
    # a random tiny-t5 emits no label: every test prediction of the five tasks is invalid
    results = [json.loads(p.read_text()) for p in smoke.rglob("seed0.json")]
    total = sum(r["data"][r["run"]["tasks"][0]]["sizes"]["test"] for r in results)
    assert ours["invalid"] == f"{total}/{total}" and total > 0
    paper = rows["*PT (paper)*"]
    assert [paper[t] for t in ("multirc", "boolq", "wic", "wsc", "cb", "avg")] == ["58.7", "61.7", "48.9", "51.9", "67.9", "57.8"]
    assert (paper["#"], paper["backbone"]) == ("", "ATTEMPT Table 1 (t5-base)")
    [cost] = board_rows(board[board.index("Cost of each row"):])
    assert (cost["#"], cost["method"], cost["param/task"]) == ("1", "pt", "640")  # 10 prompt positions x 64


def test_rerun_from_results_file_reproduces_numbers(smoke, tmp_path, monkeypatch):
    """`--config RESULT.json` alone reruns exactly that run (one task, one seed), from any directory."""
    recorded = result_file(smoke, "pt", "wsc")
    original = json.loads(recorded.read_text())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["run", "--config", str(recorded), "--quiet", "--output", "again"]) == 0
    [rerun] = (elsewhere / "again").rglob("seed*.json")
    assert rerun.relative_to(elsewhere / "again") == recorded.relative_to(smoke)  # same configuration, same name
    again = json.loads(rerun.read_text())
    assert again["epochs"] == [{**e, "train_seconds": a["train_seconds"]} for e, a in zip(original["epochs"], again["epochs"])]
    assert again["test"] == original["test"] and again["identity"] == original["identity"]
    assert (load_file(str(rerun.with_suffix(".safetensors")))["prompt"]
            .equal(load_file(str(recorded.with_suffix(".safetensors")))["prompt"]))


def test_rerun_refuses_data_that_changed(smoke, tmp_path, capsys):
    """A results file whose data no longer match what is on disk is refused in one line."""
    result = json.loads(result_file(smoke, "pt", "cb").read_text())
    result["identity"]["data"]["cb"]["fingerprints"]["validation"] = "0123456789abcdef"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(result))
    assert main(["run", "--config", str(edited), "--quiet", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the cb validation data differ from the results file's" in err
    assert not (tmp_path / "out" / "pt").exists()


def test_a_changed_setting_never_overwrites_nor_averages(smoke, tmp_path):
    """The reproduction: 3 seeds of pt on cb, then the same with --epochs 1 into the same folder."""
    output = tmp_path / "runs"
    base = ["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--quiet", "--output", str(output)]
    assert main([*base, "--seeds", "0,1,2"]) == 0
    two_epochs = {p: p.read_bytes() for p in output.rglob("seed*.json")}
    assert main([*base, "--seeds", "0", "--epochs", "1"]) == 0
    assert all(p.read_bytes() == data for p, data in two_epochs.items())  # nothing overwritten
    configurations = sorted({p.parent for p in output.rglob("seed*.json")})
    assert len(configurations) == 2
    one_epoch = next(c for c in configurations if c not in {p.parent for p in two_epochs})
    assert [p.name for p in one_epoch.iterdir() if p.suffix == ".json"] == ["seed0.json"]
    rows = [row for row in board_rows((output / "leaderboard.md").read_text()) if row["method"] == "pt"]
    assert sorted((row["differs in"], row["runs"]) for row in rows) == [("epochs=1", "1"), ("epochs=2", "3")]


def test_repeated_seeds_are_refused(capsys, tmp_path):
    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--seeds", "0,0", "--quiet",
                 "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seeds 0,0 repeats a seed" in err


def test_resume_skips_finished_runs(smoke, capsys):
    before = {p: p.stat().st_mtime_ns for p in smoke.rglob("seed0.json")}
    assert main(["run", "--method", "pt", "--suite", "superglue", "--profile", "smoke", "--quiet", "--resume",
                 "--output", str(smoke)]) == 0
    assert {p: p.stat().st_mtime_ns for p in smoke.rglob("seed0.json")} == before


def test_unwritable_output_is_refused_before_training(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--quiet",
                 "--output", str(blocker / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--output '{blocker / 'runs'}' is not writable" in err


def test_rerun_finds_a_relative_data_dir_from_anywhere(shared_data, tmp_path, monkeypatch):
    """The results file records where its data were (absolute), so a rerun from another directory
    reads the same files; the data fingerprints prove it."""
    monkeypatch.chdir(shared_data.parent)
    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--epochs", "1", "--quiet",
                 "--data-dir", shared_data.name, "--output", str(tmp_path / "first")]) == 0
    recorded = result_file(tmp_path / "first", "pt", "cb")
    result = json.loads(recorded.read_text())
    assert result["config"]["data_dir"] == str(shared_data.resolve())
    assert result["data"]["cb"]["sizes"] == {"train": 32, "validation": 28, "test": 28}  # real CB: 56 dev rows halved
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--config", str(recorded), "--quiet", "--output", "again"]) == 0
    again = json.loads(result_file(tmp_path / "again", "pt", "cb").read_text())
    assert again["identity"] == result["identity"] and again["test"] == result["test"]


def test_demo_without_cpu_data_runs_the_smoke(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("bench.cli.cpu_data_dir", lambda given: None)
    assert main(["demo", "--quiet", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bench demo: without shared/data-cpu (or --data-dir), the tiny-t5 smoke run on SuperGLUE")
    assert len(list(tmp_path.rglob("seed0.json"))) == 5


def test_demo_refuses_a_data_dir_without_sst2(tmp_path, capsys):
    assert main(["demo", "--data-dir", str(tmp_path), "--output", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no glue/SST-2/train.tsv" in err


def test_deltas_only_for_the_papers_backbone_schedule_and_real_data():
    from bench.studies.report import Reference, comparable

    t5_base = Reference(57.8, "ATTEMPT Table 1 (t5-base)", "t5-base")
    result = {"run": {"profile": "paper", "backbone": "google-t5/t5-base"},
              "identity": {"train": {"max_train_examples": 0, "max_eval_examples": 0},
                           "data": {"cb": {"source": {"kind": "hub"}}}}}
    assert comparable(result, t5_base)
    assert not comparable(result, Reference(76.6, "AMP Table 1 (roberta-base)", "roberta-base"))
    for path, value in [(("run", "profile"), "cpu"), (("run", "backbone"), "tiny-t5"),
                        (("identity", "train", "max_train_examples"), 1200)]:
        changed = json.loads(json.dumps(result))
        node = changed
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        assert not comparable(changed, t5_base), path
    fixtures = json.loads(json.dumps(result))
    fixtures["identity"]["data"]["cb"]["source"]["kind"] = "fixtures"
    assert not comparable(fixtures, t5_base)


def test_settings_added_later_keep_older_results_in_their_folder(smoke):
    """A results file from before `group_by_length`, `eval_mode`, `backbone_dropout` and `precision`
    existed has no such keys: at their neutral values they are left out of the key, so `--resume`
    still finds it; set, they name another configuration."""
    from bench.core.identity import configuration_key

    path = result_file(smoke, "pt", "cb")
    identity = json.loads(path.read_text())["identity"]
    added = {"group_by_length": (False, True), "eval_mode": ("generate", "rank"), "backbone_dropout": (True, False),
             "precision": ("fp32", "bf16")}
    assert {name: identity["train"][name] for name in added} == {name: neutral for name, (neutral, _) in added.items()}
    older = {**identity, "train": {k: v for k, v in identity["train"].items() if k not in added}}
    assert configuration_key(older) == configuration_key(identity) == path.parent.name
    for name, (_, value) in added.items():
        assert configuration_key({**identity, "train": {**identity["train"], name: value}}) != path.parent.name


def test_settings_added_with_the_vocab_init_fix_keep_their_neutral_values_out_of_keys(smoke):
    """`epoch_rule` (train) and `attempt_temperature` (protocol) are left out at their neutral
    values; `vocab_init_real_tokens` is left out only off (bench's rule before it): on, the
    default, it names a new configuration, since MiniLM's numbers changed with it."""
    from bench.core.identity import configuration_key

    path = result_file(smoke, "pt", "cb")
    identity = json.loads(path.read_text())["identity"]
    assert (identity["train"]["epoch_rule"], identity["protocol"]["attempt_temperature"],
            identity["protocol"]["vocab_init_real_tokens"]) == ("task", 0.0, True)
    without = {**identity, "train": {k: v for k, v in identity["train"].items() if k != "epoch_rule"},
               "protocol": {k: v for k, v in identity["protocol"].items() if k != "attempt_temperature"}}
    assert configuration_key(without) == path.parent.name
    older = {**without, "protocol": {k: v for k, v in without["protocol"].items() if k != "vocab_init_real_tokens"}}
    assert configuration_key(older) != path.parent.name
    assert configuration_key({**identity, "protocol": {**identity["protocol"], "vocab_init_real_tokens": False}}) \
        == configuration_key(older)
    for section, name, value in (("train", "epoch_rule", "task-embedding"), ("protocol", "attempt_temperature", 2087.0)):
        assert configuration_key({**identity, section: {**identity[section], name: value}}) != path.parent.name


def test_epoch_cap_keeps_its_neutral_value_out_of_keys(smoke):
    """`epoch_cap` (added with the transfer study) at 0 leaves a configuration's folder as it was;
    a cap names a new one."""
    from bench.core.identity import configuration_key

    path = result_file(smoke, "pt", "cb")
    identity = json.loads(path.read_text())["identity"]
    assert identity["train"]["epoch_cap"] == 0
    older = {**identity, "train": {k: v for k, v in identity["train"].items() if k != "epoch_cap"}}
    assert configuration_key(older) == path.parent.name
    assert configuration_key({**identity, "train": {**identity["train"], "epoch_cap": 1000}}) != path.parent.name
