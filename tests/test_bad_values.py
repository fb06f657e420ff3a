"""Values a run cannot use are refused before any work: one line, exit 2, no traceback, naming the
value and what is valid, and nothing written to the output folder (issue 23, points 6-9)."""
from __future__ import annotations

import json
from dataclasses import fields

import pytest

from bench.backbones.catalog import is_hub_id, looks_like_path
from bench.cli import main
from bench.core.config import Range, TRAIN_RANGES, TrainConfig, check_seeds
from bench.core.registry import UsageError

RUN = ["run", "--method", "pt", "--suite", "glue", "--tasks", "rte", "--model", "tiny-t5", "--fixtures",
       "--profile", "smoke", "--quiet"]


def refused(capsys, tmp_path, *argv) -> str:
    """The one error line of `bench ARGV --output tmp_path/out`, checked to be a clean refusal that
    wrote nothing (validation errors come before the output folder is even made)."""
    output = tmp_path / "out"
    code = main([*argv, "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("bench: error: ") and "Traceback" not in err
    assert not output.exists()
    return err


# -- 6: seeds and method options ------------------------------------------------------------

@pytest.mark.parametrize("seeds,message", [
    ("-1", "--seeds: each seed must be an integer >= 0 and < 4294967296, not -1"),
    ("5000000000", "--seeds: each seed must be an integer >= 0 and < 4294967296, not 5000000000"),
    ("4294967296", "--seeds: each seed must be an integer >= 0 and < 4294967296, not 4294967296"),  # 2**32
    ("0,-1", "--seeds: each seed must be an integer >= 0 and < 4294967296, not -1"),
    ("", "--seeds takes comma-separated integers, not ''"),
    (",", "--seeds takes comma-separated integers, not ','"),
    ("0,x", "--seeds takes comma-separated integers, not '0,x'"),
])
def test_bad_seeds_are_refused(capsys, tmp_path, seeds, message):
    assert message in refused(capsys, tmp_path, *RUN, "--seeds", seeds)


@pytest.mark.parametrize("seeds,message", [
    ("-1", "--sweep-seeds: each seed must be an integer >= 0 and < 4294967296, not -1"),
    ("", "--sweep-seeds takes comma-separated integers, not ''"),
])
def test_bad_sweep_seeds_are_refused(capsys, tmp_path, seeds, message):
    argv = ["sweep", "--method", "pt", "--tasks", "rte", "--profile", "smoke", "--param", "lr", "--quiet",
            "--trials", "1", "--sweep-seeds", seeds]
    assert message in refused(capsys, tmp_path, *argv)


def test_seed_range_edges():
    check_seeds([0, 4294967295], "--seeds")  # 0 and 2**32 - 1: what np.random.seed takes
    with pytest.raises(UsageError, match="takes at least one seed"):
        check_seeds([], "--seeds")
    with pytest.raises(UsageError, match="--seeds 1,1 repeats a seed"):
        check_seeds([1, 1], "--seeds")


@pytest.mark.parametrize("method,option,message", [
    ("pt", "prompt_length=0", "option prompt_length must be an integer >= 1, not 0"),
    ("pt", "prompt_length=-3", "option prompt_length must be an integer >= 1, not -3"),
    ("pt", "lr=0", "option lr must be a number > 0, not 0.0"),
    ("pt", "weight_decay=-0.1", "option weight_decay must be a number >= 0, not -0.1"),
    ("attempt", "bottleneck=0", "option bottleneck must be an integer >= 1, not 0"),
    ("amp", "prompt_epochs=0", "option prompt_epochs must be an integer >= 1, not 0"),
    ("amp", "prompt_patience=-1", "option prompt_patience must be an integer >= 0 (0: never stop early), not -1"),
    ("amp", "key_dim=-1", "option key_dim must be an integer >= 0 (0: d), not -1"),
    ("amp", "mixing_cap=-5", "option mixing_cap must be an integer >= 0 (0: none), not -5"),
    ("mpt", "max_tasks_per_batch=-2",
     "option max_tasks_per_batch must be an integer >= 0 (0: all the run's tasks), not -2"),
])
def test_out_of_range_method_options_are_refused(capsys, tmp_path, method, option, message):
    argv = [a if a != "pt" else method for a in RUN]
    assert message in refused(capsys, tmp_path, *argv, "--option", option)


# -- 8: training settings and the run's counts -------------------------------------------------

TRAIN_CASES = [
    ("epochs", "-1", "training setting epochs must be an integer >= 0 (0: the task's default), not -1"),
    ("batch_size", "-8", "training setting batch_size must be an integer >= 0 (0: the task's default), not -8"),
    ("grad_accum", "-1", "training setting grad_accum must be an integer >= 0 (0: the task's default), not -1"),
    ("eval_batch_size", "0", "training setting eval_batch_size must be an integer >= 1, not 0"),
    ("warmup_steps", "-1", "training setting warmup_steps must be an integer >= 0, not -1"),
    ("max_grad_norm", "0", "training setting max_grad_norm must be a number > 0, not 0.0"),
    ("adam_eps", "-1e-8", "training setting adam_eps must be a number >= 0, not -1e-08"),
    ("max_source_length", "-1",
     "training setting max_source_length must be an integer >= 0 (0: the task's default), not -1"),
    ("max_target_length", "-1",
     "training setting max_target_length must be an integer >= 0 (0: the task's default), not -1"),
    ("generation_margin", "-1", "training setting generation_margin must be an integer >= 0, not -1"),
    ("max_train_examples", "-1", "training setting max_train_examples must be an integer >= 0 (0: all), not -1"),
    ("max_eval_examples", "-1", "training setting max_eval_examples must be an integer >= 0 (0: all), not -1"),
    ("max_dev_examples", "-1", "training setting max_dev_examples must be an integer >= 0 (0: all), not -1"),
    ("source_epochs", "-1", "training setting source_epochs must be an integer >= 0 (0: the task's default), not -1"),
    ("head_lr", "0", "training setting head_lr must be a number > 0, not 0.0"),
    ("head_weight_decay", "-0.5", "training setting head_weight_decay must be a number >= 0, not -0.5"),
    ("early_stopping_patience", "-1",
     "training setting early_stopping_patience must be an integer >= 0 (0: never stop early), not -1"),
    ("epoch_cap", "-30", "training setting epoch_cap must be an integer >= 0 (0: all), not -30"),
    ("adam_betas", "0.9,1", "training setting adam_betas: each beta must be a number >= 0 and < 1, not 1.0"),
    ("adam_betas", "-0.1,0.999", "training setting adam_betas: each beta must be a number >= 0 and < 1, not -0.1"),
    ("epochs", "none", "training setting epochs must be an integer >= 0 (0: the task's default), not None"),
]


@pytest.mark.parametrize("name,value,message", TRAIN_CASES)
def test_out_of_range_training_settings_are_refused(capsys, tmp_path, name, value, message):
    assert message in refused(capsys, tmp_path, *RUN, "--train", f"{name}={value}")


def test_every_numeric_training_setting_has_a_range_and_a_case():
    """A numeric setting added to TrainConfig without a range (and a test of it) fails here."""
    numeric = {f.name for f in fields(TrainConfig) if type(getattr(TrainConfig(), f.name)) in (int, float)}
    assert set(TRAIN_RANGES) == numeric
    assert {name for name, _, _ in TRAIN_CASES} == numeric | {"adam_betas"}


@pytest.mark.parametrize("flag,value,message", [
    ("--epochs", "-1", "training setting epochs must be an integer >= 0 (0: the task's default), not -1"),
    ("--batch-size", "-1", "training setting batch_size must be an integer >= 0 (0: the task's default), not -1"),
    ("--max-train-examples", "-1", "training setting max_train_examples must be an integer >= 0 (0: all), not -1"),
    ("--max-eval-examples", "-2", "training setting max_eval_examples must be an integer >= 0 (0: all), not -2"),
    ("--k-shot", "-4", "--k-shot must be an integer >= 0 (0: the full training split), not -4"),
    ("--k-shot-draws", "0", "--k-shot-draws must be an integer >= 1, not 0"),
    ("--data-seed", "-1", "--data-seed must be an integer >= 0 and < 4294967296, not -1"),
    ("--data-seed", "4294967296", "--data-seed must be an integer >= 0 and < 4294967296, not 4294967296"),
])
def test_out_of_range_run_flags_are_refused(capsys, tmp_path, flag, value, message):
    assert message in refused(capsys, tmp_path, *RUN, flag, value)


@pytest.mark.parametrize("config,message", [
    ({"seeds": [-1]}, "--seeds: each seed must be an integer >= 0 and < 4294967296, not -1"),
    ({"seeds": []}, "--seeds takes at least one seed, e.g. 0,1,2, not []"),
    ({"seeds": 3}, "--seeds takes at least one seed, e.g. 0,1,2, not 3"),
    ({"seeds": [0, 0]}, "--seeds 0,0 repeats a seed"),
    ({"data_seed": "42"}, "--data-seed must be an integer >= 0 and < 4294967296, not '42'"),
    ({"k_shot": -1}, "--k-shot must be an integer >= 0 (0: the full training split), not -1"),
    ({"method_options": {"prompt_length": 0}}, "option prompt_length must be an integer >= 1, not 0"),
    ({"method_options": {"prompt_length": 2.5}}, "option prompt_length must be an integer >= 1, not 2.5"),
    ({"train": {"epoch_cap": -30}}, "training setting epoch_cap must be an integer >= 0 (0: all), not -30"),
    ({"train": {"epochs": True}}, "training setting epochs must be an integer >= 0 (0: the task's default), not True"),
    ({"train": {"head_lr": "1e-3"}}, "training setting head_lr must be a number > 0, not '1e-3'"),
    ({"train": {"adam_betas": 0.9}}, "training setting adam_betas takes two numbers, not 0.9"),
])
def test_a_config_file_is_checked_as_the_flags_are(capsys, tmp_path, config, message):
    """The ranges hold for a YAML config as for flags (`--seeds` and the others name the setting)."""
    import yaml

    file = tmp_path / "run.yaml"
    file.write_text(yaml.safe_dump({"method": "pt", "tasks": ["rte"], "model": "tiny-t5", "fixtures": True,
                                    "profile": "smoke", **config}))
    assert message in refused(capsys, tmp_path, "run", "--config", str(file), "--quiet")


def test_a_results_file_rerun_is_checked(capsys, tmp_path):
    """A results file (its config under "config") with an out-of-range setting is refused as a flag is."""
    file = tmp_path / "seed0.json"
    file.write_text(json.dumps({"config": {"method": "pt", "tasks": ["rte"], "model": "tiny-t5", "fixtures": True,
                                           "seeds": [0], "train": {"early_stopping_patience": -1}}}))
    message = "training setting early_stopping_patience must be an integer >= 0 (0: never stop early), not -1"
    assert message in refused(capsys, tmp_path, "run", "--config", str(file), "--quiet")


@pytest.mark.parametrize("legal,accepted,refused_values,whole", [
    (Range(0), [0, 7], [-1, 0.5, True, None, "3"], True),
    (Range(1), [1], [0], True),
    (Range(0, exclusive=True), [1e-9, 3], [0, 0.0, -1e-9, float("nan")], False),
    (Range(0, limit=2**32), [0, 2**32 - 1], [2**32, -1], True),
    (Range(0, limit=1), [0.0, 0.999], [1.0, 1, -0.1], False),
])
def test_range_edges(legal, accepted, refused_values, whole):
    for value in accepted:
        legal.check("x", value, whole)
    for value in refused_values:
        with pytest.raises(UsageError, match=r"^x must be "):
            legal.check("x", value, whole)


# -- 9: a path-looking --model that is not a folder ------------------------------------------------

@pytest.mark.parametrize("model", ["./checkpoints/my-t5", "./my-t5", "../nowhere/my-t5", "/nonexistent/my-t5",
                                   "~/no-such-t5", "checkpoints/t5/final"])
def test_a_missing_model_folder_is_named_as_one(capsys, tmp_path, model):
    err = refused(capsys, tmp_path, *[a if a != "tiny-t5" else model for a in RUN])
    assert f"--model: no such folder: {model}; valid: minilm, t5-3b, t5-base, t5-large, t5-small, tiny-t5, " \
           "a Hub id (owner/name), or an existing local checkpoint folder" in err
    assert "unknown backbone" not in err


@pytest.mark.parametrize("name,hub", [
    ("google-t5/t5-base", True), ("owner/name", True), ("my.org/model_v1.2", True),
    ("./name", False), ("../name", False), ("/name", False), ("~/name", False), ("~name", False), ("a/b/c", False),
    ("-owner/name", False), ("owner/name.", False), ("own--er/name", False), ("owner/na..me", False), ("name", False),
])
def test_hub_ids_against_paths(name, hub):
    """huggingface_hub's repo-id rules: word characters, '-' and '.', neither first nor last, no '--'
    or '..'; a Hub id is never taken for a path, and anything with a separator that is not one is."""
    assert is_hub_id(name) is hub
    assert looks_like_path(name) is (not hub and name != "name")


# -- 7: a split without rows ------------------------------------------------------------------

HEADER = "index\tsentence1\tsentence2\tlabel\n"
ROWS = "".join(f"{i}\tA dog runs {i}.\tAn animal moves.\tentailment\n" for i in range(6))


@pytest.mark.parametrize("train,dev,message", [
    (HEADER, HEADER + ROWS, "glue/RTE/train.tsv: no rows (a header at most); a split needs at least one"),
    (HEADER + ROWS, HEADER, "glue/RTE/dev.tsv: no rows (a header at most); a split needs at least one"),
    (HEADER + ROWS, HEADER + ROWS.splitlines(keepends=True)[0],  # halved: test gets the one row, dev none
     "rte validation split: no rows, {root}/glue/RTE holds too few for its 'small' split protocol to give it one"),
])
def test_a_split_without_rows_is_refused(capsys, tmp_path, train, dev, message):
    data = tmp_path / "data"
    (data / "glue" / "RTE").mkdir(parents=True)
    (data / "glue" / "RTE" / "train.tsv").write_text(train)
    (data / "glue" / "RTE" / "dev.tsv").write_text(dev)
    output = tmp_path / "out"
    code = main(["run", "--method", "pt", "--tasks", "rte", "--profile", "smoke", "--quiet",
                 "--data-dir", str(data), "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message.format(root=data.resolve()) in err
    assert not [p for p in output.rglob("*") if p.is_file()]  # the folder may be made, nothing written in it


@pytest.mark.parametrize("kind,origin", [
    ("fixtures", "{folder}/train.jsonl"),
    ("hub", "nyu-mll/glue (rte) split train"),
])
def test_an_empty_split_names_its_fixture_file_or_hub_split(tmp_path, monkeypatch, kind, origin):
    """The other two sources name theirs: the fixture file, the Hub dataset (with its config) and split."""
    import tasks.loading as loading
    from bench.core.presets import Protocol
    from tasks.base import DataError
    from tasks.registry import TASKS

    (tmp_path / "train.jsonl").write_text("\n")
    monkeypatch.setattr(loading, "fixtures_of", lambda task: tmp_path)
    monkeypatch.setattr(loading, "read_hub", lambda task, hub_split: [])
    loading.read_rows.cache_clear()  # rows read before under the same key would answer instead
    try:
        with pytest.raises(DataError) as refusal:
            loading.load_examples(TASKS.get("rte"), "train", loading.DataSource(kind), Protocol())
    finally:
        loading.read_rows.cache_clear()
    assert str(refusal.value) == origin.format(folder=tmp_path) + ": no rows (a header at most); a split needs at least one"
