"""PT with one learned scalar in front of the prompt: a method is a `methods.base.Method`."""
from __future__ import annotations

import torch
from torch import nn

from methods.base import ParamCounts, ParamGroup, numel
from methods.pt.model import PromptTuning


class ScaledPromptTuning(PromptTuning):
    name = "pt-scaled"

    def __init__(self, config, context):
        super().__init__(config, context)
        self.scale = nn.Parameter(torch.tensor(float(config.scale_init)))

    def prompts(self, inputs_embeds, attention_mask, task_ids):
        return self.scale * super().prompts(inputs_embeds, attention_mask, task_ids)

    def param_groups(self):
        return [ParamGroup("prompt", [self.prompt, self.scale], self.config.lr, self.config.weight_decay)]

    def param_counts(self):
        n = numel(self.prompt, self.scale)
        return ParamCounts(n, n, 0, 0, self.context.backbone_params)
