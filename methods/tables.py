"""Per-task parameter tables: one row block per task, picked by each example's task id."""
from __future__ import annotations

import torch
from torch import nn


class TaskTable(nn.Module):
    """`[N, *shape]` trainable values, one block per task of the run.

    Multi-task methods (ATTEMPT-m's target prompts, MPT's task vectors) look up
    the block of each example's task, so mixed batches need no special casing.
    """

    def __init__(self, initial: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(initial.clone())

    @property
    def num_tasks(self) -> int:
        return self.weight.shape[0]

    def forward(self, task_ids: torch.Tensor) -> torch.Tensor:
        return self.weight[task_ids]

    def per_task_numel(self) -> int:
        return self.weight[0].numel()
