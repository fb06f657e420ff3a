"""`bench run --log-with`: what a run logs to its experiment tracker, read back and set against its results file."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import yaml

from bench.cli import main
from helpers import result_file

# cb's 32 fixture examples in batches of 8, 3 batches a step: windows of 3 and 1 batches, 2 steps an epoch
SMOKE = ["--method", "pt", "--tasks", "cb", "--profile", "smoke", "--quiet", "--train", "grad_accum=3"]


def f32(value: float) -> float:
    """TensorBoard keeps scalars as 32-bit floats."""
    return float(np.float32(value))


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """(results file, its TensorBoard run folder) of a smoke run logged with --log-with tensorboard."""
    pytest.importorskip("tensorboard", reason="pip install tensorboard (the test extra) to test --log-with tensorboard")
    output = tmp_path_factory.mktemp("runs")
    assert main(["run", *SMOKE, "--output", str(output), "--log-with", "tensorboard"]) == 0
    path = result_file(output, "pt", "cb")
    return json.loads(path.read_text()), output / "tracking" / "pt" / "cb" / path.parent.name / "seed0"


def test_each_step_logs_its_lr_per_group_grad_norm_and_window_loss(logged):
    result, folder = logged
    found = scalars(folder)
    # warm-up over 2 of 4 steps from 0 to PT's 0.3, then down to 0: the rate each step applied
    assert found["train/lr/prompt"] == [(1, 0.0), (2, f32(0.15)), (3, f32(0.3)), (4, f32(0.15))]
    assert [(e["epoch"], e["lr"]) for e in result["epochs"]] == [(1, {"prompt": 0.15}), (2, {"prompt": 0.15})]
    norms = [value for _, value in found["train/grad_norm"]]
    assert [step for step, _ in found["train/grad_norm"]] == [1, 2, 3, 4]
    for epoch, pair in zip(result["epochs"], (norms[:2], norms[2:])):
        assert max(pair) == f32(epoch["grad_norm"]["max"])
        assert np.mean(pair) == pytest.approx(epoch["grad_norm"]["mean"], rel=1e-6)
    losses = [value for _, value in found["train/loss"]]
    assert [step for step, _ in found["train/loss"]] == [1, 2, 3, 4]
    for epoch, (window_of_3, window_of_1) in zip(result["epochs"], (losses[:2], losses[2:])):
        assert (3 * window_of_3 + window_of_1) / 4 == pytest.approx(epoch["train_loss"], rel=1e-6)


def test_each_epoch_logs_its_train_loss_and_dev_scores_and_the_end_the_test_scores(logged):
    result, folder = logged
    found = scalars(folder)
    epochs = result["epochs"]
    assert found["epoch"] == [(2, 1.0), (4, 2.0)]
    assert found["train/epoch_loss"] == [(2, f32(epochs[0]["train_loss"])), (4, f32(epochs[1]["train_loss"]))]
    for metric in ("accuracy", "macro_f1"):
        assert found[f"dev/cb/{metric}"] == [(2 * e["epoch"], f32(e["dev"]["cb"]["metrics"][metric])) for e in epochs]
        assert found[f"test/cb/{metric}"] == [(4, f32(result["test"]["cb"]["metrics"][metric]))]
    assert found["dev/mean"] == [(2, f32(epochs[0]["dev_mean"])), (4, f32(epochs[1]["dev_mean"]))]
    assert found["test/mean"] == [(4, f32(result["test_mean"]))]


def test_the_run_configuration_is_logged_as_hyperparameters(logged):
    result, folder = logged
    (stored,) = folder.glob("*/hparams.yml")
    hparams = yaml.safe_load(stored.read_text())
    config = result["config"]
    assert {k: hparams[k] for k in ("run.seed", "run.draw", "run.configuration")} == {
        "run.seed": 0, "run.draw": 0, "run.configuration": result["run"]["configuration"]}
    assert (hparams["method"], hparams["model"], hparams["profile"]) == ("pt", "tiny-t5", "smoke")
    assert (hparams["train.epochs"], hparams["train.grad_accum"], hparams["method_options.prompt_length"]) == (2, 3, 10)
    assert hparams["protocol.copa_question"] is config["protocol"]["copa_question"] is True
    assert (hparams["tasks"], hparams["seeds"], hparams["train.adam_betas"], hparams["suite"]) == (
        '["cb"]', "[0]", "[0.9, 0.999]", "null")  # what trackers cannot take, as JSON text


def test_a_tracker_changes_no_number_and_no_configuration(logged, tmp_path):
    result, _ = logged
    assert main(["run", *SMOKE, "--output", str(tmp_path)]) == 0
    plain = json.loads(result_file(tmp_path, "pt", "cb").read_text())
    assert plain["run"]["configuration"] == result["run"]["configuration"]
    assert [e["train_loss"] for e in plain["epochs"]] == [e["train_loss"] for e in result["epochs"]]
    assert plain["optimizer"] == result["optimizer"] and plain["predictions"] == result["predictions"]
    assert not (tmp_path / "tracking").exists()


def test_library_stages_are_not_logged(tmp_path):
    """spot-g trains mnli's PT source prompt in the library first: only the spot-g run is logged."""
    pytest.importorskip("tensorboard", reason="pip install tensorboard (the test extra) to test --log-with tensorboard")
    assert main(["run", "--method", "spot-g", "--tasks", "cb", "--profile", "smoke", "--quiet", "--epochs", "1",
                 "--option", "sources=mnli", "--output", str(tmp_path / "runs"), "--library", str(tmp_path / "lib"),
                 "--log-with", "tensorboard"]) == 0
    assert any((tmp_path / "lib").rglob("*.safetensors"))  # the stage was trained here
    configuration = result_file(tmp_path / "runs", "spot-g", "cb").parent.name
    runs = sorted(p.parent.relative_to(tmp_path / "runs" / "tracking").as_posix()
                  for p in (tmp_path / "runs" / "tracking").rglob("events.out.tfevents.*") if "." not in p.parent.name)
    assert runs == [f"spot-g/cb/{configuration}/seed0"]


def test_an_unknown_tracker_is_one_line_naming_the_choices(capsys):
    assert main(["run", *SMOKE, "--log-with", "tensorbord"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: argument --log-with: invalid choice: 'tensorbord' (choose from ")
    assert err.count("\n") == 1 and all(name in err for name in ("tensorboard", "wandb", "mlflow"))


def test_a_tracker_whose_package_is_missing_names_the_pip_command(capsys, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "mlflow" else real(name, *rest))
    assert main(["run", *SMOKE, "--output", str(tmp_path), "--log-with", "mlflow"]) == 2
    assert capsys.readouterr().err == "bench: error: --log-with mlflow needs the mlflow package: pip install mlflow\n"
    assert not any(tmp_path.iterdir())  # refused before any work


def wandb_records(path):
    """The protobuf records of an offline W&B run file: a 7-byte header, then LevelDB's log format
    (32 KiB blocks of chunks, each with a 7-byte header: crc, length, kind; kinds 1 and 4 end a record)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, pending = path.read_bytes(), 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a chunk header is padding
            pos += 32768 - pos % 32768
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        pending, pos = pending + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def test_wandb_offline_run_holds_the_curves_scores_and_config(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install wandb) to test --log-with wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert main(["run", *SMOKE, "--output", str(tmp_path), "--log-with", "wandb"]) == 0
    result = json.loads(result_file(tmp_path, "pt", "cb").read_text())
    (file,) = (tmp_path / "tracking" / "wandb").glob("offline-run-*/run-*.wandb")
    records = list(wandb_records(file))
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (run.project, run.display_name) == ("bench", f"pt/cb/{result['run']['configuration']}/seed0")
    steps = {}  # W&B merges what is logged at one step into one row
    for record in records:
        if record.WhichOneof("record_type") == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            steps[row["_step"]] = row
    assert sorted(steps) == [1, 2, 3, 4]
    assert [steps[step]["train/lr/prompt"] for step in (1, 2, 3, 4)] == [0, 0.15, 0.3, 0.15]
    assert (steps[2]["train/epoch_loss"], steps[4]["train/epoch_loss"]) == tuple(e["train_loss"] for e in result["epochs"])
    assert (steps[4]["test/mean"], steps[4]["test/cb/accuracy"]) == (result["test_mean"],
                                                                     result["test"]["cb"]["metrics"]["accuracy"])
    config = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for r in records if r.WhichOneof("record_type") == "config"
              for item in r.config.update}
    assert (config["train.grad_accum"], config["run.seed"], config["seeds"]) == (3, 0, "[0]")


def test_mlflow_local_store_holds_the_dev_curve(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install mlflow) to test --log-with mlflow")
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3.x keeps the file store in maintenance mode
    assert main(["run", *SMOKE, "--output", str(tmp_path / "runs"), "--log-with", "mlflow"]) == 0
    result = json.loads(result_file(tmp_path / "runs", "pt", "cb").read_text())
    client = mlflow.tracking.MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("bench").experiment_id])
    assert run.info.run_name == f"pt/cb/{result['run']['configuration']}/seed0"
    history = client.get_metric_history(run.info.run_id, "dev/mean")
    assert [(m.step, m.value) for m in history] == [(2, result["epochs"][0]["dev_mean"]), (4, result["epochs"][1]["dev_mean"])]
    test = client.get_metric_history(run.info.run_id, "test/cb/accuracy")
    assert [(m.step, m.value) for m in test] == [(4, result["test"]["cb"]["metrics"]["accuracy"])]
    assert run.data.params["train.grad_accum"] == "3"
