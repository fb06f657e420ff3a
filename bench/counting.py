"""Parameter counts of any method on any known backbone, without downloading it."""
from __future__ import annotations

import torch

from bench.backbone import offline_config
from bench.presets import PRESETS
from methods.base import MethodContext, ParamCounts
from methods.registry import METHODS


def backbone_parameters(config) -> int:
    from transformers import AutoModelForSeq2SeqLM

    with torch.device("meta"):
        model = AutoModelForSeq2SeqLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def count_params(method: str, model: str, num_tasks: int = 1, options: dict | None = None,
                 preset: str = "paper") -> ParamCounts:
    spec = METHODS.get(method)
    config = offline_config(model)
    options = dict(options or {})
    method_config = spec.make_config(options)
    if hasattr(method_config, "init") and "init" not in options:
        method_config = spec.make_config({**options, "init": "normal"})  # no embedding needed to count
    context = MethodContext(
        d_model=config.d_model, embedding=None, tokenizer=None,
        task_names=[f"task{i}" for i in range(num_tasks)], backbone_params=backbone_parameters(config),
        protocol=PRESETS.get(preset),
    )
    return spec.build(method_config, context).param_counts()
