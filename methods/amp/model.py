"""AMP: every task of the set is both a source and a target.

Stage 1 is the library's PT prompt of each task; stage 2 trains only ψ, which
turns the frozen stack `P [n, l, d]` into one target prompt per task. The target
prompts do not depend on the input, so they are exported after training and
inference then costs exactly what PT costs.
"""
from __future__ import annotations

import torch

from methods.amp.attention import PromptAttention, score_scale
from methods.amp.config import AMPConfig
from methods.base import Method, MethodContext, Mixing, ParamCounts, ParamGroup, numel


class AMP(Method):
    name = "amp"
    multi_task = True

    def __init__(self, config: AMPConfig, context: MethodContext):
        super().__init__(config, context)
        sources = [context.source_prompt(task, config.prompt_length) for task in context.task_names]
        # persistent: a checkpoint alone recomputes the target prompts
        self.register_buffer("sources", torch.stack(sources).float())
        key_dim = config.key_dim or context.d_model
        self.psi = PromptAttention(context.d_model, key_dim, config.pooling, score_scale(config.scale, key_dim),
                                   config.value_init, context.generator)
        self.mixing = Mixing(cap=config.mixing_cap)

    def prompts(self, inputs_embeds, attention_mask, task_ids):
        return self.psi(self.sources)[task_ids]

    def param_groups(self):
        return [ParamGroup("psi", list(self.psi.parameters()), self.config.lr, self.config.weight_decay)]

    def param_counts(self):
        """ψ is shared by all tasks; nothing is trained per task here (each task's source prompt
        is trained by its own PT stage and stays frozen, so it counts as frozen_extra)."""
        shared = numel(*self.psi.parameters())
        return ParamCounts(shared, 0, shared, numel(self.sources), self.context.backbone_params,
                           len(self.context.task_names))

    @torch.no_grad()
    def report(self):
        attention = self.psi.attention(self.sources)
        names = self.context.task_names
        return {"attention": {"sources": list(names),
                              "targets": {task: attention[i].tolist() for i, task in enumerate(names)}}}

    @torch.no_grad()
    def export(self):
        """The n computed target prompts `{task: [l, d]}`: all that inference needs."""
        targets = self.psi(self.sources)
        return {task: targets[i] for i, task in enumerate(self.context.task_names)}

    @classmethod
    def search_space(cls, trial):
        return {"lr": trial.suggest_float("lr", 1e-5, 1e-2, log=True)}
