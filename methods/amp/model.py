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
from methods.base import Method, MethodContext, Mixing, ParamCounts, decay_groups, numel


class AMP(Method):
    name = "amp"
    multi_task = True

    def __init__(self, config: AMPConfig, context: MethodContext):
        super().__init__(config, context)
        sources = [self._own_prompt(task) for task in context.task_names]
        # persistent: a checkpoint alone recomputes the target prompts
        self.register_buffer("sources", torch.stack(sources).float())
        key_dim = config.key_dim or context.d_model
        self.psi = PromptAttention(context.d_model, key_dim, config.pooling, score_scale(config.scale, key_dim),
                                   config.value_init, context.generator("psi"))
        self.mixing = Mixing(cap=config.mixing_cap)

    def _own_prompt(self, task: str) -> torch.Tensor:
        """Stage 1: the task's own PT prompt, trained on the run's data for that task with the
        paper's schedule (up to `prompt_epochs`, early stopping on dev); zeros when only counting."""
        config, context = self.config, self.context
        if context.stage is None:
            return torch.zeros(config.prompt_length, context.d_model)
        return context.stage("pt", [task], {"prompt_length": config.prompt_length}, epochs=config.prompt_epochs,
                             patience=config.prompt_patience, on_target=True)["prompt"]

    def prompts(self, inputs_embeds, attention_mask, task_ids):
        return self.psi(self.sources)[task_ids]

    def param_groups(self):
        """ψ at its own rate; W_V, which starts as the identity by default, exempt from weight decay."""
        psi, exempt = self.psi, [self.psi.value.weight] if self.config.value_init == "identity" else []
        decayed = [p for p in psi.parameters() if all(p is not e for e in exempt)]
        return decay_groups("psi", decayed, exempt, self.config.lr, self.config.weight_decay, self.context.protocol)

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
