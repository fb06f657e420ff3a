"""The training loop the runner builds: learning-rate trace per group, accumulation windows,
clipping, checkpoint selection and early stopping, read from what real runs record.

CB's fixture has 32 training examples, so `--batch-size 32` makes every epoch exactly one
optimiser step and the per-epoch records are the whole learning-rate trace.
"""
from __future__ import annotations

import hashlib
import json

import pytest
import torch
from accelerate import Accelerator

from bench.cli import main
from bench.core.config import TrainConfig
from bench.core.progress import Progress
from bench.pipeline.data import Collator, Encoded
from bench.pipeline.evaluation import Score
import bench.pipeline.runner
from bench.pipeline.training import Meter, train_epoch
from helpers import result_file

ONE_STEP_PER_EPOCH = ["--tasks", "cb", "--profile", "smoke", "--quiet", "--batch-size", "32", "--epochs", "4",
                      "--train", "warmup_steps=2", "--max-eval-examples", "4"]


def run(tmp_path, method="pt", *extra, library=None) -> dict:
    argv = ["run", "--method", method, *ONE_STEP_PER_EPOCH, *extra, "--output", str(tmp_path / "runs"),
            "--library", str(library or tmp_path / "library")]
    assert main(argv) == 0
    return json.loads(result_file(tmp_path / "runs", method, "cb").read_text())


def trace(result: dict, group: str) -> list[float]:
    return [epoch["lr"][group] for epoch in result["epochs"]]


def test_learning_rate_warms_up_then_decays_to_zero(tmp_path):
    # LambdaLR with 2 warm-up steps over 4: factors 0/2, 1/2, then (4-2)/2, (4-3)/2; after the last step (4-4)/2
    result = run(tmp_path)
    assert trace(result, "prompt") == pytest.approx([0.0, 0.15, 0.3, 0.15])
    assert [e["optimizer_steps"] for e in result["epochs"]] == [1, 1, 1, 1]
    assert result["optimizer"]["final_lr"] == {"prompt": 0.0}
    assert result["optimizer"]["groups"] == [{"name": "prompt", "lr": 0.3, "weight_decay": 1e-5, "params": 640}]
    assert result["optimizer"]["scheduled_steps"] == result["optimizer"]["steps"] == 4


def test_each_group_trains_at_its_own_rate_and_decay(tmp_path):
    """ATTEMPT on CB (SuperGLUE): target prompt 0.3, G 0.1, G's LayerNorm without weight decay."""
    result = run(tmp_path, "attempt", "--option", "sources=mnli")
    groups = {g["name"]: (g["lr"], g["weight_decay"]) for g in result["optimizer"]["groups"]}
    assert groups == {"prompt": (0.3, 1e-5), "attention": (0.1, 1e-5), "attention_no_decay": (0.1, 0.0)}
    assert trace(result, "attention") == pytest.approx([0.0, 0.05, 0.1, 0.05])
    assert trace(result, "prompt") == pytest.approx([0.0, 0.15, 0.3, 0.15])


def test_mpt_trains_its_shared_prompt_and_task_vectors_at_two_rates(tmp_path):
    result = run(tmp_path, "mpt", "--option", "source_tasks=mnli,sst2")
    groups = {g["name"]: (g["lr"], g["weight_decay"]) for g in result["optimizer"]["groups"]}
    assert groups == {"shared": (0.3, 1e-5), "task_vectors": (0.4, 1e-5)}
    assert trace(result, "task_vectors") == pytest.approx([0.0, 0.2, 0.4, 0.2])


def test_accumulation_steps_every_window_and_the_last_partial_one(tmp_path, monkeypatch):
    """32 examples in batches of 12: 3 batches an epoch, windows of 2 -> 2 steps an epoch (the second
    of one batch); no gradient is pending when dev is evaluated; the schedule spans the 4 real steps."""
    real_evaluate = bench.pipeline.runner.evaluate
    pending = []

    def evaluate(model, *args, **kwargs):
        pending.append([p.grad is not None and bool(p.grad.abs().sum()) for p in model.method.parameters()])
        return real_evaluate(model, *args, **kwargs)

    monkeypatch.setattr(bench.pipeline.runner, "evaluate", evaluate)
    result = run(tmp_path, "pt", "--batch-size", "12", "--epochs", "2", "--train", "grad_accum=2",
                 "--train", "warmup_steps=1")
    assert [e["optimizer_steps"] for e in result["epochs"]] == [2, 2]
    # factors: 0/1 (warm-up), then (4-1)/3, (4-2)/3, (4-3)/3; each epoch records its last step's
    assert trace(result, "prompt") == pytest.approx([0.3, 0.1])
    assert result["optimizer"]["final_lr"] == {"prompt": 0.0} and result["optimizer"]["steps"] == 4
    assert result["schedule"]["grad_accum"] == 2 and result["timing"]["steps"] == 4
    assert pending == [[False], [False], [False]]  # dev after each epoch, then test


def test_gradients_reach_the_optimiser_clipped(tmp_path):
    clipped = run(tmp_path / "a", "pt", "--train", "max_grad_norm=0.0001")
    free = run(tmp_path / "b", "pt")
    assert all(e["grad_norm"]["max"] <= 1e-4 * 1.001 for e in clipped["epochs"])
    assert all(e["grad_norm"]["mean"] > 1e-3 for e in free["epochs"])  # the clip did bite


def state_digest(model) -> str:
    return hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in model.method.state_dict().values())).hexdigest()


def scripted_evaluation(monkeypatch, dev_scores: list[float]) -> None:
    """Dev scores scripted per epoch; a test pass scores the number of the epoch whose method
    state it was given, so the test score tells which checkpoint was restored."""
    epochs_by_state: dict[str, int] = {}

    def evaluate(model, tasks, encoded, split, config, collator, progress):
        digest = state_digest(model)
        if split == "validation":
            epochs_by_state[digest] = len(epochs_by_state) + 1
            value = dev_scores[epochs_by_state[digest] - 1]
        else:
            value = float(epochs_by_state[digest])
        return {"cb": Score({"accuracy": value, "macro_f1": value}, 0, 1)}

    monkeypatch.setattr(bench.pipeline.runner, "evaluate", evaluate)


def test_test_scores_come_from_the_best_dev_epoch(tmp_path, monkeypatch):
    scripted_evaluation(monkeypatch, [50.0, 90.0, 10.0, 70.0])
    result = run(tmp_path)
    assert [e["dev_mean"] for e in result["epochs"]] == [50.0, 90.0, 10.0, 70.0]
    assert result["best_epoch"] == 2 and result["dev"]["cb"]["mean"] == 90.0
    assert result["test_mean"] == 2.0  # the state tested is the one dev scored at epoch 2


def test_early_stopping_after_patience_epochs_without_a_better_dev_score(tmp_path, monkeypatch):
    scripted_evaluation(monkeypatch, [50.0, 40.0, 60.0, 55.0, 58.0, 59.0])
    result = run(tmp_path, "pt", "--epochs", "6", "--train", "early_stopping_patience=2")
    assert [e["epoch"] for e in result["epochs"]] == [1, 2, 3, 4, 5]
    assert result["schedule"]["epochs_run"] == 5 and result["best_epoch"] == 3 and result["test_mean"] == 3.0


def test_unknown_training_setting_is_one_line(capsys, tmp_path):
    assert main(["run", "--method", "pt", *ONE_STEP_PER_EPOCH, "--train", "warmup=3", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown training setting 'warmup'; valid: " in err and "warmup_steps" in err
    assert main(["run", "--method", "pt", *ONE_STEP_PER_EPOCH, "--train", "warmup_steps=soon",
                 "--output", str(tmp_path)]) == 2
    assert "training setting warmup_steps takes an integer, not 'soon'" in capsys.readouterr().err


def test_each_epochs_dev_score_reaches_the_hook_which_may_stop_the_run(tmp_path):
    """What a sweep hangs on: `on_epoch(epoch, dev_mean)` after every dev evaluation; raising stops
    the run before it writes any result (a pruned trial)."""
    from bench.cli import build_parser, resolve_run_config
    from bench.core.progress import Progress

    config = resolve_run_config(build_parser().parse_args(["run", "--method", "pt", *ONE_STEP_PER_EPOCH,
                                                           "--output", str(tmp_path / "runs")]))
    seen = []

    class Pruned(Exception):
        pass

    def on_epoch(epoch, dev_mean):
        seen.append((epoch, dev_mean))
        if epoch == 2:
            raise Pruned

    with pytest.raises(Pruned):
        bench.pipeline.runner.run(config, Progress(), on_epoch=on_epoch)
    assert [epoch for epoch, _ in seen] == [1, 2] and all(isinstance(dev, float) for _, dev in seen)
    assert not list((tmp_path / "runs").rglob("seed*.json"))


class LinearScore(torch.nn.Module):
    """A method's loss in its plainest form: the mean over a batch's examples of (w·x - y)², with
    the input ids as x and one scalar label each, as an encoder head's loss averages examples."""

    def __init__(self, weights: list[float]):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(weights))

    def forward(self, batch: dict) -> torch.Tensor:
        return ((batch["input_ids"].float() @ self.w - batch["labels"]) ** 2).mean()


def plain_gradient(weights: torch.Tensor, rows: list[tuple[list[int], float]]) -> torch.Tensor:
    """The gradient of the mean squared error over `rows`, by plain autograd on a fresh leaf."""
    w = weights.detach().clone().requires_grad_()
    x = torch.tensor([ids for ids, _ in rows], dtype=torch.float)
    ((x @ w - torch.tensor([y for _, y in rows])) ** 2).mean().backward()
    return w.grad


def test_an_accumulation_window_steps_with_its_batches_mean_gradient():
    """grad_accum 2, batches of 2: the first window's gradient is exactly that of one batch of its 4
    examples (each batch's loss divided by the window's 2 batches); the epoch's last window, of one
    batch, steps with that batch's gradient, not half of it. With SGD at lr 0.1, the weights after each
    step are those before it minus 0.1 times that gradient."""
    rows = [([1, 2, 0], 3.0), ([0, 1, 4], -1.0), ([2, 2, 1], 0.5), ([3, 0, 1], 2.0), ([1, 1, 1], 4.0), ([0, 3, 2], -2.0)]
    items = [Encoded(ids, [y], 0) for ids, y in rows]
    model = LinearScore([0.5, -0.25, 0.125])
    start = model.w.detach().clone()
    optimizer = torch.optim.SGD([{"params": [model.w], "lr": 0.1, "name": "w"}])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    received = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: received.append(model.w.grad.clone()))
    plan = [items[0:2], items[2:4], items[4:6]]
    train_epoch(model, plan, Collator(0, scalar_labels=True), Accelerator(cpu=True), optimizer, scheduler,
                TrainConfig(max_grad_norm=1e9), 2, Meter(), Progress(), "", first=False)
    first = plain_gradient(start, rows[:4])
    after_first = start - 0.1 * first
    second = plain_gradient(after_first, rows[4:])
    assert len(received) == 2
    torch.testing.assert_close(received[0], first, rtol=0, atol=1e-6)
    torch.testing.assert_close(received[1], second, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.w.detach(), after_first - 0.1 * second, rtol=0, atol=1e-6)
    assert not torch.allclose(first, plain_gradient(start, rows[:2]) + plain_gradient(start, rows[2:4]))  # the sum is other
