"""The backbone adapter: the only code that knows T5 internals at run time.

Soft prompts go in front of the *encoder* input embeddings only, with the
attention mask extended by ones; the decoder sees no virtual tokens. Training
loss and generation both go through `with_prompt`, so they cannot drift apart.
This module needs torch; naming, configs and tokenizers (bench/backbone.py) do not.
"""
from __future__ import annotations

import torch
from torch import nn


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
