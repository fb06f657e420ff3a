"""Experiment trackers (`bench run --log-with tensorboard|wandb|mlflow`) through accelerate's tracker API.

A run's curves go to the tracker as it trains: each optimiser step's loss (the mean of its
accumulation window's batch losses), learning rate per parameter group and gradient norm (as
the meter recorded them, so they are the results file's numbers), each epoch's train loss
and dev scores, the final test scores, and the run's configuration as hyperparameters. The
x axis is the optimiser step. Only the run itself is logged, never the library stages it
trains (their prompts are another run's business, and would mix their steps into its curves).

A tracker changes no number of a run: it is an argument of the run, not part of its config
(bench/core/identity.py). Runs log under `<output>/tracking/`, one tracker run per results file,
named like it (`pt/boolq/<configuration>/seed0`), so `tensorboard --logdir runs/tracking`
shows a study side by side. W&B logs to project `bench` (offline with WANDB_MODE=offline) and
MLflow to experiment `bench` (a local store with MLFLOW_TRACKING_URI=sqlite:///mlflow.db).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from bench.core.identity import flatten
from bench.core.registry import UsageError

TRACKERS = ("tensorboard", "wandb", "mlflow")
"""Each is also the name of its Python module and of its pip package."""
TRACKING_DIR = "tracking"
PROJECT = "bench"


def check_tracker(name: str) -> None:
    """Before any work: accelerate would skip a tracker whose package is missing without a word."""
    if importlib.util.find_spec(name) is None:
        raise UsageError(f"--log-with {name} needs the {name} package: pip install {name}")


def accelerator_options(log_with: str | None, output: Path) -> dict:
    """`Accelerator(**options)` for a run that logs (nothing for one that does not)."""
    return {"log_with": log_with, "project_dir": str(Path(output) / TRACKING_DIR)} if log_with else {}


def hyperparameters(run: dict, config: dict) -> dict:
    """The run (seed, draw, configuration key) and its resolved config, flattened to the scalars
    trackers take (`train.epochs`); lists and empty values as JSON text (`seeds` -> "[0]")."""
    flat = {**{f"run.{k}": v for k, v in run.items()}, **flatten(config)}
    return {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v) for k, v in flat.items()}


class RunLog:
    """What one run sends to the accelerator's trackers."""

    def __init__(self, accelerator, meter):
        self.accelerator, self.meter = accelerator, meter

    @classmethod
    def start(cls, accelerator, meter, result: Path, hparams: dict) -> "RunLog":
        """`result`: the results file's path under the output; the tracker's run is named by it
        without `.json` (TensorBoard: the run's folder under `tracking/`)."""
        name, tracker = result.with_suffix("").as_posix(), str(accelerator.log_with[0])
        project, kwargs = (name, {}) if tracker == "tensorboard" else (PROJECT, {
            "wandb": {"name": name, "dir": accelerator.logging_dir},
            "mlflow": {"run_name": name}}[tracker])
        Path(accelerator.logging_dir).mkdir(parents=True, exist_ok=True)  # W&B's `dir` must exist
        accelerator.init_trackers(project, config=hparams, init_kwargs={tracker: kwargs})
        return cls(accelerator, meter)

    @property
    def step(self) -> int:
        """Optimiser steps taken: every value is logged against it."""
        return len(self.meter.grad_norms)

    def optimizer_step(self, loss: float) -> None:
        lrs = {f"train/lr/{group}": lr for group, lr in self.meter.lrs[-1].items()}
        self.accelerator.log({"train/loss": loss, "train/grad_norm": self.meter.grad_norms[-1], **lrs}, step=self.step)

    def epoch(self, record: dict) -> None:
        """An entry of the results' `epochs`: its train loss and dev scores."""
        self.accelerator.log({"epoch": record["epoch"], "train/epoch_loss": record["train_loss"],
                              **scores("dev", record["dev"], record["dev_mean"])}, step=self.step)

    def test(self, test: dict, mean: float) -> None:
        self.accelerator.log(scores("test", test, mean), step=self.step)

    def end(self) -> None:
        """Each tracker's `finish` (what `end_training` does first): not `end_training` itself, which
        also ends the process group that the grid's next run trains in under `accelerate launch`."""
        for tracker in self.accelerator.trackers:
            tracker.finish()


def scores(split: str, per_task: dict, mean: float) -> dict[str, float]:
    """`split/<task>/<metric>` for each task's metrics (Score.as_dict), and `split/mean`."""
    values = {f"{split}/{task}/{metric}": value for task, score in per_task.items()
              for metric, value in score["metrics"].items()}
    return {**values, f"{split}/mean": mean}
