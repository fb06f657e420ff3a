"""Parameter counts of any method on any known backbone, without downloading it.

The method is built exactly as a run builds it, but over a backbone on torch's
`meta` device: shapes without memory or weights. Its embedding is a meta tensor
too and its tokenizer the real one, so every prompt initialisation (`vocab`,
`text`, ...) takes the same path as in training and fails the same way.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.backbones.catalog import ENCODER_TYPES, load_tokenizer, offline_config
from bench.core.presets import PRESETS
from methods.base import MethodContext, ParamCounts
from methods.registry import METHODS


def backbone_parameters(config) -> int:
    from transformers import AutoModel, AutoModelForSeq2SeqLM

    with torch.device("meta"):
        model = (AutoModel if is_encoder(config) else AutoModelForSeq2SeqLM).from_config(config)
    return sum(p.numel() for p in model.parameters())


def is_encoder(config) -> bool:
    return config.model_type in ENCODER_TYPES and not config.is_encoder_decoder


def count_params(method: str, model: str, num_tasks: int = 1, options: dict | None = None,
                 preset: str = "paper", num_labels: int = 2) -> ParamCounts:
    """The method's accounting on `model`; on an encoder, plus a head over `num_labels` per task."""
    spec = METHODS.get(method)
    config = offline_config(model)
    width = config.hidden_size if is_encoder(config) else config.d_model
    context = MethodContext(
        d_model=width, embedding=nn.Embedding(config.vocab_size, width, device="meta"),
        tokenizer=load_tokenizer(model), task_names=[f"task{i}" for i in range(num_tasks)],
        backbone_params=backbone_parameters(config), protocol=PRESETS.get(preset),
    )
    counts = spec.build(spec.make_config(options), context).param_counts()
    return counts.with_head((width + 1) * num_labels if is_encoder(config) else 0)
