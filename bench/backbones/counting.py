"""Parameter counts of any method on any known backbone, without downloading it.

The method is built exactly as a run builds it, but over a backbone on torch's
`meta` device: shapes without memory or weights. Its embedding is a meta tensor
too and its tokenizer the real one, so every prompt initialisation (`vocab`,
`text`, ...) takes the same path as in training and fails the same way.

A T5 backbone is counted from its config (`t5_parameters`), not built: building it,
even on `meta`, imports transformers' modelling code and torch._dynamo (a random
initialisation on `meta` runs through torch's Python decompositions): nearly half
of the command's time, for one number.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.backbones.catalog import ENCODER_TYPES, load_tokenizer, offline_config
from bench.core.presets import PRESETS
from methods.base import MethodContext, ParamCounts
from methods.registry import METHODS


def backbone_parameters(config) -> int:
    """The backbone's own parameters: from the config for T5, else counted on a model built on `meta`."""
    if config.model_type == "t5":
        return t5_parameters(config)
    from transformers import AutoModel, AutoModelForSeq2SeqLM

    with torch.device("meta"):
        model = (AutoModel if is_encoder(config) else AutoModelForSeq2SeqLM).from_config(config)
    return sum(p.numel() for p in model.parameters())


def t5_parameters(config) -> int:
    """T5's parameters as transformers' T5ForConditionalGeneration holds them, from its config
    (tests/test_params.py checks it against the built model): the shared embedding; per encoder
    layer self-attention (q, k, v, o), the feed-forward (wi, or gated wi_0 and wi_1, then wo) and a
    norm before each; per decoder layer the same plus cross-attention and its norm; in each stack
    the relative position bias (its first layer's) and a final norm; the LM head where not tied."""
    width, vocab = config.d_model, config.vocab_size
    attention = 4 * width * config.num_heads * config.d_kv
    feed_forward = (3 if config.is_gated_act else 2) * width * config.d_ff
    encoder_layer = attention + feed_forward + 2 * width
    decoder_layer = 2 * attention + feed_forward + 3 * width
    stack = config.relative_attention_num_buckets * config.num_heads + width
    head = 0 if config.tie_word_embeddings else vocab * width
    return (vocab * width + head + config.num_layers * encoder_layer + config.num_decoder_layers * decoder_layer
            + 2 * stack)


def is_encoder(config) -> bool:
    return config.model_type in ENCODER_TYPES and not config.is_encoder_decoder


def head_params(width: int, num_labels: int, two_tower: bool = False) -> int:
    """An encoder head's parameters per task (bench/backbones/model.py): a linear map from the pooled
    state to `num_labels` logits (1: a regression score); read with two towers, a classification
    pair task's map over (u, v, |u - v|, u * v), four states wide, and a regression pair task's
    scaled cosine, two numbers."""
    if two_tower:
        return 2 if num_labels == 1 else (4 * width + 1) * num_labels
    return (width + 1) * num_labels


def count_params(method: str, model: str, num_tasks: int = 1, options: dict | None = None,
                 preset: str = "paper", num_labels: int = 2, two_tower: bool = False) -> ParamCounts:
    """The method's accounting on `model`; on an encoder, plus a head over `num_labels` per task
    (`two_tower`: a pair task's, each text read alone: `head_params`)."""
    spec = METHODS.get(method)
    config = offline_config(model)
    width = config.hidden_size if is_encoder(config) else config.d_model
    # the backbone's embedding, frozen as in a run; given, not drawn: a random init on meta imports torch._dynamo
    context = MethodContext(
        d_model=width, embedding=nn.Embedding.from_pretrained(torch.empty(config.vocab_size, width, device="meta")),
        tokenizer=load_tokenizer(model), task_names=[f"task{i}" for i in range(num_tasks)],
        backbone_params=backbone_parameters(config), protocol=PRESETS.get(preset),
    )
    counts = spec.build(spec.make_config(options), context).param_counts()
    return counts.with_head(head_params(width, num_labels, two_tower) if is_encoder(config) else 0)
