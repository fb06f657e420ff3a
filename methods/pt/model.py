"""PT: one trainable `[m, d]` matrix in front of every input; the LM stays frozen."""
from __future__ import annotations

from torch import nn

from methods.base import Method, MethodContext, ParamCounts, ParamGroup, numel
from methods.prompts import init_prompt
from methods.pt.config import PTConfig


class PromptTuning(Method):
    name = "pt"

    def __init__(self, config: PTConfig, context: MethodContext):
        super().__init__(config, context)
        self.prompt = nn.Parameter(
            init_prompt(config.init, config.prompt_length, context, config.init_text, config.init_checkpoint)
        )

    def prompts(self, inputs_embeds, attention_mask, task_ids):
        return self.prompt.unsqueeze(0).expand(inputs_embeds.shape[0], -1, -1)

    def param_groups(self):
        return [ParamGroup("prompt", [self.prompt], self.config.lr, self.config.weight_decay)]

    def param_counts(self):
        n = numel(self.prompt)
        return ParamCounts(n, n, 0, 0, self.context.backbone_params)

    @classmethod
    def search_space(cls, trial):
        return {"lr": trial.suggest_float("lr", 1e-2, 1.0, log=True)}
