"""What ATTEMPT transfers from the source tasks besides the source prompts themselves:
the prompt a target starts from, and a G pre-trained by ATTEMPT-m on the source tasks.

Both follow the paper's split between question answering and everything else.
"""
from __future__ import annotations

import torch

from methods.base import MethodContext

QA_TASKS = ("squad", "nq", "hotpotqa", "searchqa", "newsqa", "record")
"""Targets whose prompt starts from SQuAD's and whose G comes from the QA source group."""
G_GROUPS = {"glue": ("mnli", "sst2", "qqp", "qnli"), "qa": ("squad", "record")}
"""The paper's two ATTEMPT-m pre-training groups of source tasks."""


G_LR = 0.3
"""G's learning rate in the paper's runs, except for the suites below."""
G_LR_LOW = 0.1
"""The paper's G learning rate for SuperGLUE targets and for multi-task runs on the "others" suite."""


def paper_g_lr(tasks: list[str], multi_task: bool) -> float:
    """G's learning rate from the paper's table for these targets (protocol.md, "Training")."""
    from tasks.registry import SUITES

    if set(tasks) <= set(SUITES.get("superglue")) or (multi_task and set(tasks) <= set(SUITES.get("others"))):
        return G_LR_LOW
    return G_LR


def is_qa(tasks: list[str]) -> bool:
    """A run counts as QA when all its targets are (MRQA and the QA source tasks)."""
    return all(task in QA_TASKS for task in tasks)


def init_source(tasks: list[str]) -> str:
    """The source prompt a target is initialised from: SQuAD's for QA, MNLI's otherwise."""
    return "squad" if is_qa(tasks) else "mnli"


def pretrained_g(context: MethodContext, prompt_length: int, bottleneck: int, temperature: float) -> dict[str, torch.Tensor]:
    """G's tensors from an ATTEMPT-m run on the source group that matches the targets.

    The stage uses the default ATTEMPT-m config with only the fields that shape G
    and its scores, so every variant (token-level, single source, no target) and
    every seed shares one library entry; G itself does not depend on the sources.
    `temperature` is the run's option, not the T it resolved: the stage has the run's protocol
    and backbone, so it resolves the same T (the option, else the protocol's, else d·e), and
    the keys of the stages trained before the protocol had a temperature stay as they were.
    """
    group = G_GROUPS["qa" if is_qa(context.task_names) else "glue"]
    options = {"prompt_length": prompt_length, "bottleneck": bottleneck, "temperature": temperature, "pretrain_g": False}
    tensors = context.stage("attempt-m", list(group), options)
    return {key.removeprefix("g."): value for key, value in tensors.items() if key.startswith("g.")}
