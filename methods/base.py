"""The `Method` interface every prompt-transfer method implements.

A method owns only its own parameters: it never touches data files, metrics or
backbone internals. Given the input embeddings, attention mask and task ids of
a batch it returns the prompt rows `[B, m, d]` the backbone prepends.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from safetensors.torch import load_file, save
from torch import nn

from bench.presets import Protocol


@dataclass(frozen=True)
class ParamCounts:
    """The papers' parameter accounting (definitions in shared/spec/methods.md)."""

    trainable: int
    per_task: int
    shared: int
    frozen_extra: int
    backbone: int
    num_tasks: int = 1

    @property
    def param_per_task(self) -> float:
        """The papers' "param/task" column: per_task + shared / N."""
        return self.per_task + self.shared / self.num_tasks

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
    """How a multi-task run draws its training batches (bench/data.py)."""

    cap: int = 0
    """Examples-proportional mixing: at most this many examples per task and epoch (0: all)."""
    max_tasks_per_batch: int = 0
    """Stochastic task sampling: each batch draws K ~ U[2, this] tasks (0: off, batches mix freely)."""


Stage = Callable[..., dict[str, torch.Tensor]]
"""Train (or fetch from the library) another method's run: (method, tasks, options, epochs=None,
source=False) -> its tensors. `source=True` marks a source prompt, which `--sources imported`
takes from the imported release; other PT stages (SPoT's mixture and task embeddings) train."""


@dataclass
class MethodContext:
    """What a method may know about its surroundings when it is built."""

    d_model: int
    embedding: nn.Embedding | None
    """The backbone's pretrained input embedding (read-only; None when only counting)."""
    tokenizer: Any
    task_names: list[str]
    protocol: Protocol = field(default_factory=Protocol)
    seed: int = 0
    backbone_params: int = 0
    stage: Stage | None = None
    """Provided by the runner; None when the method is only built to count parameters."""
    backbone: Any = None
    """The frozen backbone (bench.backbone.Backbone), for methods whose loss needs extra forward
    passes (MPT's teachers); None when only counting."""

    @property
    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def source_prompt(self, task: str, length: int) -> torch.Tensor:
        """The library's PT prompt for a source task (zeros when only counting)."""
        if self.stage is None:
            return torch.zeros(length, self.d_model)
        return self.stage("pt", [task], {"prompt_length": length}, source=True)["prompt"]


class Method(nn.Module):
    name: ClassVar[str]
    multi_task: ClassVar[bool] = False
    """True when one run trains all tasks of the set jointly."""

    def __init__(self, config, context: MethodContext):
        super().__init__()
        self.config = config
        self.context = context

    mixing: Mixing = Mixing()
    """Batch drawing for multi-task runs; methods that need more override it."""

    def prompts(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def training_loss(self, backbone, batch: dict[str, torch.Tensor], prompt: torch.Tensor) -> torch.Tensor:
        """The loss to minimise; the default is the LM's token cross-entropy.

        MPT overrides it to add distillation terms from teacher passes.
        """
        return backbone(batch["input_ids"], batch["attention_mask"], batch["labels"], prompt).loss

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

    def export(self) -> dict[str, torch.Tensor]:
        """Tensors to ship beside the results for inference (AMP's computed target prompts)."""
        return {}

    def save(self, path: Path) -> None:
        """Only this method's own tensors, never the backbone's."""
        from bench.results import atomic_write

        atomic_write(path, save({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}))

    def load(self, path: Path) -> None:
        self.load_state_dict(load_file(str(path)))


def numel(*tensors: torch.Tensor) -> int:
    return sum(t.numel() for t in tensors)
