"""The loss terms of MPT's source training (teacher: a task's PT prompt; student: its
decomposed prompt), over the positions that carry tokens."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


def logits_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor,
              temperature: float) -> torch.Tensor:
    """`KL(teacher ‖ student)` of the output token distributions softened by `T`, summed over the
    vocabulary, averaged over the positions where `mask` is set, times `T²`."""
    teacher = torch.log_softmax(teacher_logits / temperature, dim=-1)
    student = torch.log_softmax(student_logits / temperature, dim=-1)
    per_position = (teacher.exp() * (teacher - student)).sum(dim=-1)
    return masked_mean(per_position, mask) * temperature**2


def hidden_mse(teacher: torch.Tensor, student: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error of `[B, S, d]` hidden states over the positions where `mask` is set."""
    return masked_mean((teacher - student).pow(2).mean(dim=-1), mask)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


@contextmanager
def eval_mode(module: nn.Module):
    """Run `module` without dropout, then restore its mode: a teacher is a fixed function of
    its input, so its targets should not be noised, and the student pass that the distillation
    terms compare with it is run the same way (see `MPTConfig.student_dropout`)."""
    was_training = module.training
    module.train(False)
    try:
        yield
    finally:
        module.train(was_training)
