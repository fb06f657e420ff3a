"""The `Method` interface every prompt-transfer method implements.

A method owns only its own parameters: it never touches data files, metrics or
backbone internals. Given the input embeddings, attention mask and task ids of
a batch it returns the prompt rows `[B, m, d]` the backbone prepends.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from safetensors.torch import load_file, save
from torch import nn

from bench.core.presets import Protocol


@dataclass(frozen=True)
class ParamCounts:
    """The papers' parameter accounting (definitions in shared/spec/methods.md)."""

    trainable: int
    per_task: int
    shared: int
    frozen_extra: int
    backbone: int
    num_tasks: int = 1
    head: int = 0
    """An encoder backbone's head per task (the linear map to its labels), included in
    `per_task` and `trainable`; 0 for T5, which generates its targets."""

    @property
    def param_per_task(self) -> float:
        """The papers' "param/task" column: per_task + shared / N."""
        return self.per_task + self.shared / self.num_tasks

    def with_head(self, head: int) -> "ParamCounts":
        """The method's accounting plus a head of `head` parameters on each of its tasks."""
        return replace(self, head=head, per_task=self.per_task + head, trainable=self.trainable + head * self.num_tasks)

    def as_dict(self) -> dict:
        return {**asdict(self), "param_per_task": self.param_per_task}


@dataclass(frozen=True)
class ParamGroup:
    """Parameters trained with one learning rate and weight decay."""

    name: str
    params: list[nn.Parameter]
    lr: float
    weight_decay: float


@dataclass(frozen=True)
class Mixing:
    """How a multi-task run draws its training batches (bench/pipeline/data.py)."""

    cap: int = 0
    """Examples-proportional mixing: at most this many examples per task and epoch (0: all)."""
    max_tasks_per_batch: int = 0
    """Stochastic task sampling: each batch draws K ~ U[2, this] tasks (0: off, batches mix freely)."""


Stage = Callable[..., dict[str, torch.Tensor]]
"""Train (or fetch from the library) another method's run and return its tensors:
`stage(method, tasks, options, epochs=None, epoch_rule="task", patience=0, on_target=False, source=False)`.

- `on_target=False` (source stages: source prompts, SPoT-g's mixture, G pre-training, MPT's
  teachers and `mpt-source`): the stage trains on its tasks' full training data, whatever
  few-shot setting the run has, with the source schedule (`train.source_epochs`).
- `on_target=True` (stages on the run's own targets: SPoT-t's task embedding, AMP's per-task
  prompts): the stage sees exactly the run's training data (its few-shot draw included) and,
  unless `epochs` says otherwise, the run's own schedule.
- `epochs`: an explicit number of epochs; `epoch_rule`: what the stage's epochs are where neither
  `epochs` nor the run sets them (bench/core/config.py `TrainConfig.epoch_rule`); `patience`: early stopping after that many epochs
  without a better dev score (0: never).
- `source=True` marks a source prompt, which `--sources imported` takes from the task's newest
  import (a released prompt file or a PEFT adapter) instead of training it."""


@dataclass
class MethodContext:
    """What a method may know about its surroundings when it is built."""

    d_model: int
    embedding: nn.Embedding | None
    """The backbone's pretrained input embedding (read-only; on torch's `meta` device, or None,
    when the method is only built to count parameters)."""
    tokenizer: Any
    task_names: list[str]
    protocol: Protocol = field(default_factory=Protocol)
    seed: int = 0
    backbone_params: int = 0
    stage: Stage | None = None
    """Provided by the runner; None when the method is only built to count parameters."""

    def generator(self, stream: str) -> torch.Generator:
        """A random stream of its own for each named draw (`"prompt"`, `"target/cb"`, `"attention"`):
        two draws never share numbers, and adding a draw never shifts another's."""
        return torch.Generator().manual_seed(derived_seed(self.seed, stream))

    def source_prompt(self, task: str, length: int) -> torch.Tensor:
        """The library's PT prompt for a source task (zeros when only counting)."""
        if self.stage is None:
            return torch.zeros(length, self.d_model)
        return self.stage("pt", [task], {"prompt_length": length}, source=True)["prompt"]


class Method(nn.Module):
    name: ClassVar[str]
    multi_task: ClassVar[bool] = False
    """True when one run trains all tasks of the set jointly."""
    accepts_imported_sources: ClassVar[bool] = False
    """True when the method uses source-task prompts, which `--sources imported` can supply."""

    def __init__(self, config, context: MethodContext):
        super().__init__()
        self.config = config
        self.context = context

    mixing: Mixing = Mixing()
    """Batch drawing for multi-task runs; methods that need more override it."""

    @property
    def evaluates_as_first_task(self) -> bool:
        """True when every task is evaluated with the first task's prompt and metrics: the
        official ATTEMPT-m evaluation, reproduced by ATTEMPT-m under `attempt-code` only."""
        return False

    def prompts(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def training_loss(self, backbone, batch: dict[str, torch.Tensor], prompt: torch.Tensor) -> torch.Tensor:
        """The loss to minimise; the default is the LM's token cross-entropy.

        MPT overrides it to add distillation terms from teacher passes.
        """
        return backbone(batch["input_ids"], batch["attention_mask"], batch["labels"], prompt, task_ids=batch["task_ids"],
                        **pairs_of(batch)).loss

    def param_groups(self) -> list[ParamGroup]:
        raise NotImplementedError

    def param_counts(self) -> ParamCounts:
        raise NotImplementedError

    @classmethod
    def search_space(cls, trial) -> dict:
        """Config overrides an optuna trial proposes (sweeps)."""
        raise NotImplementedError

    def on_evaluation(self, split: str) -> None:
        """Called before each evaluation pass (dev every epoch, then test), e.g. to reset
        accumulated attention weights so that `report` describes the last pass."""

    def report(self) -> dict:
        """Method-specific facts for the results file, JSON-ready. Attention-based methods
        report `{"attention": {"sources": [names], "targets": {task: [weight per source]}}}`,
        averaged over the examples of the last evaluation pass (the test split)."""
        return {}

    def training_record(self) -> dict:
        """What the method accumulates over training steps for its report (MPT's loss terms), kept
        by epoch checkpoints so that a resumed run reports what an uninterrupted one would."""
        return {}

    def restore_training_record(self, record: dict) -> None:
        """Inverse of `training_record`."""

    def export(self) -> dict[str, torch.Tensor]:
        """Tensors to ship beside the results for inference (AMP's computed target prompts)."""
        return {}

    def save(self, path: Path) -> None:
        """Only this method's own tensors, never the backbone's."""
        from bench.core.results import atomic_write

        atomic_write(path, save({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}))

    def load(self, path: Path) -> None:
        self.load_state_dict(load_file(str(path)))


def pairs_of(batch: dict) -> dict:
    """The batch's `pairs` (two towers: each example's two encoder rows) as a backbone keyword,
    or nothing: backbones that read one text per example never see it."""
    return {"pairs": batch["pairs"]} if "pairs" in batch else {}


def numel(*tensors: torch.Tensor) -> int:
    return sum(t.numel() for t in tensors)


def derived_seed(seed: int, stream: str) -> int:
    """A 32-bit seed (what numpy accepts) for `stream` under `seed`, stable across processes and
    versions of Python (unlike `hash`)."""
    digest = hashlib.sha256(f"{seed}/{stream}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def decay_groups(name: str, decayed: list[nn.Parameter], exempt: list[nn.Parameter], lr: float,
                 weight_decay: float, protocol: Protocol) -> list[ParamGroup]:
    """One group with weight decay and, unless `protocol.weight_decay_everywhere`, one without it
    for `exempt` (LayerNorm weights and biases, identity-initialised maps): decay pulls a weight
    towards 0, which is a prior only for weights that start near 0."""
    if protocol.weight_decay_everywhere:
        decayed, exempt = decayed + exempt, []
    groups = [ParamGroup(name, decayed, lr, weight_decay)] if decayed else []
    if exempt:
        groups.append(ParamGroup(f"{name}_no_decay", exempt, lr, 0.0))
    return groups
