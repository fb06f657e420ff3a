"""The backbone adapter: the only code that knows T5 internals.

Soft prompts go in front of the *encoder* input embeddings only, with the
attention mask extended by ones; the decoder sees no virtual tokens. Training
loss and generation both go through `with_prompt`, so they cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.registry import Registry, UsageError

TINY_SEED = 0


@dataclass(frozen=True)
class T5Shape:
    """Width, depth and Hub id of an official T5 v1.0 checkpoint."""

    hub_id: str
    d_model: int
    d_ff: int
    d_kv: int
    num_heads: int
    num_layers: int

    def config(self):
        from transformers import T5Config

        return T5Config(
            vocab_size=32128, d_model=self.d_model, d_ff=self.d_ff, d_kv=self.d_kv,
            num_heads=self.num_heads, num_layers=self.num_layers, num_decoder_layers=self.num_layers,
            feed_forward_proj="relu", tie_word_embeddings=True, decoder_start_token_id=0,
            pad_token_id=0, eos_token_id=1,
        )


def tiny_t5_config():
    """A two-layer T5 over ByT5's byte vocabulary: real architecture, no download."""
    from transformers import T5Config

    return T5Config(
        vocab_size=384, d_model=64, d_ff=128, d_kv=16, num_heads=4, num_layers=2,
        num_decoder_layers=2, feed_forward_proj="relu", dropout_rate=0.1,
        tie_word_embeddings=True, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )


BACKBONES: Registry[T5Shape | None] = Registry("backbone")
BACKBONES.register("tiny-t5", None, aliases=("tiny",))
for _name, _shape in {
    "t5-small": T5Shape("google-t5/t5-small", 512, 2048, 64, 8, 6),
    "t5-base": T5Shape("google-t5/t5-base", 768, 3072, 64, 12, 12),
    "t5-large": T5Shape("google-t5/t5-large", 1024, 4096, 64, 16, 24),
    "t5-3b": T5Shape("google-t5/t5-3b", 1024, 16384, 128, 32, 24),
}.items():
    BACKBONES.register(_name, _shape, aliases=(_shape.hub_id,))


def check_backbone_name(name: str) -> None:
    """Accept a known name, an existing local checkpoint, or an `owner/name` Hub id."""
    if name in BACKBONES or Path(name).is_dir() or (name.count("/") == 1 and not Path(name).exists()):
        return
    raise UsageError(BACKBONES.unknown_message(name) + ", a local checkpoint folder, or a Hub id (owner/name)")


def offline_config(name: str):
    """The config of a known backbone without touching the Hub (for `bench params`)."""
    check_backbone_name(name)
    if name in BACKBONES:
        shape = BACKBONES.get(name)
        return tiny_t5_config() if shape is None else shape.config()
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name)
    except Exception as error:
        raise UsageError(_unreachable(name, error)) from None


def _unreachable(name: str, error: Exception) -> str:
    return (
        f"cannot load backbone {name!r} ({type(error).__name__}): the Hugging Face Hub is unreachable "
        f"or the id is wrong; use --model tiny-t5 offline, or a local checkpoint folder"
    )


class Backbone(nn.Module):
    """A frozen encoder-decoder LM that accepts soft prompt rows."""

    def __init__(self, model: nn.Module, tokenizer, name: str):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @property
    def d_model(self) -> int:
        return self.model.config.d_model

    @property
    def embedding(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def with_prompt(self, prompt: torch.Tensor | None, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """`[P; X]` and `[1..1; mask]`: the one place prompts enter the model."""
        embeds = self.embedding(input_ids)
        if prompt is None:
            return embeds, attention_mask
        ones = attention_mask.new_ones(prompt.shape[:2])
        return torch.cat([prompt.to(embeds.dtype), embeds], dim=1), torch.cat([ones, attention_mask], dim=1)

    def forward(self, input_ids, attention_mask, labels, prompt=None, **kwargs):
        embeds, mask = self.with_prompt(prompt, input_ids, attention_mask)
        labels = labels.masked_fill(labels == self.tokenizer.pad_token_id, -100)
        return self.model(inputs_embeds=embeds, attention_mask=mask, labels=labels, **kwargs)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, prompt=None, max_new_tokens: int = 20) -> torch.Tensor:
        embeds, mask = self.with_prompt(prompt, input_ids, attention_mask)
        return self.model.generate(
            inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
            do_sample=False, num_beams=1,
        )

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def backbone_name(name: str) -> str:
    """The canonical name of a backbone: `tiny-t5`, a Hub id, or the path given."""
    if name in BACKBONES:
        shape = BACKBONES.get(name)
        return "tiny-t5" if shape is None else shape.hub_id
    return name


def load_tokenizer(name: str):
    """The tokenizer of a backbone, or of a SentencePiece `.model` file (T5's `spiece.model`)."""
    if name.endswith(".model") and Path(name).is_file():
        from transformers import T5Tokenizer

        return T5Tokenizer(vocab_file=name, legacy=True)
    check_backbone_name(name)
    if backbone_name(name) == "tiny-t5":
        from transformers import ByT5Tokenizer

        return ByT5Tokenizer()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(backbone_name(name))
    except Exception as error:
        raise UsageError(_unreachable(backbone_name(name), error)) from None


def load_backbone(name: str) -> Backbone:
    tokenizer = load_tokenizer(name)
    if backbone_name(name) == "tiny-t5":
        from transformers import T5ForConditionalGeneration

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            model = T5ForConditionalGeneration(tiny_t5_config())
        return Backbone(model, tokenizer, "tiny-t5")
    from transformers import AutoModelForSeq2SeqLM

    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(backbone_name(name))
    except Exception as error:
        raise UsageError(_unreachable(backbone_name(name), error)) from None
    return Backbone(model, tokenizer, backbone_name(name))
