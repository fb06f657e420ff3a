"""ATTEMPT and ATTEMPT-m: an input-dependent attention mixture of frozen source prompts
and a trainable target prompt.

The source prompts come from the library (`context.source_prompt`) and are a
non-persistent buffer: the checkpoint holds only what this run trained (target
prompts and G), and the library entry they came from is keyed by the run's
recorded config, so they are never duplicated into every results folder.
"""
from __future__ import annotations

import math

import torch

from methods.attempt.attention import AttentionModule, mix, prompt_scores, token_scores
from methods.attempt.config import AttemptConfig
from methods.attempt.transfer import init_source, paper_g_lr, pretrained_g
from methods.base import Method, MethodContext, ParamCounts, decay_groups, numel
from methods.pooling import max_pool
from methods.prompts import init_prompt
from methods.tables import TaskTable


class Attempt(Method):
    name = "attempt"
    accepts_imported_sources = True

    def __init__(self, config: AttemptConfig, context: MethodContext):
        super().__init__(config, context)
        m = config.prompt_length
        self.target_names = list(context.task_names) if self.multi_task else list(context.task_names[:1])
        self.source_names = self._source_names()
        self.register_buffer("sources", torch.stack([context.source_prompt(s, m).float() for s in self.source_names]),
                             persistent=False)
        self.target = None
        if config.target:
            self.target = TaskTable(torch.stack([self._initial_target(task) for task in self.target_names]))
        self.g = None
        if config.attention != "constant":
            self.g = AttentionModule(context.d_model, config.bottleneck, context.generator("attention"))
            if config.pretrain_g and context.stage is not None:  # not when only counting
                self.g.load_state_dict(pretrained_g(context, m, config.bottleneck, config.temperature))
            self.g.norm.requires_grad_(context.protocol.g_layernorm_trainable)
        self.temperature = config.temperature or context.protocol.attempt_temperature or context.d_model * math.e
        """T: the method's option, else the protocol's (attempt-code: the official 2087), else d·e (the paper)."""
        self._reset_attention()

    def _source_names(self) -> list[str]:
        if self.config.sources.strip() == "auto":
            return [self.config.init_source or init_source(self.target_names)]
        return [name.strip() for name in self.config.sources.split(",") if name.strip()]

    def _initial_target(self, task: str) -> torch.Tensor:
        config, context = self.config, self.context
        if context.stage is None:  # only counting: the shape is all that matters
            return torch.zeros(config.prompt_length, context.d_model)
        if config.target_init == "source":
            return context.source_prompt(config.init_source or init_source([task]), config.prompt_length).float().clone()
        return init_prompt(config.target_init, config.prompt_length, context, stream=f"target/{task}")

    # -- forward ------------------------------------------------------------
    def prompts(self, inputs_embeds, attention_mask, task_ids):
        target = self.target(task_ids) if self.target is not None else None
        weights = self.attention_weights(inputs_embeds, attention_mask, target)
        if not self.training:
            self._record(weights, task_ids)
        return mix(self.sources, target, weights)

    def attention_weights(self, inputs_embeds, attention_mask, target) -> torch.Tensor:
        """`[B, m, k]` mixture weights: softmax over the prompts (per row for token-level)."""
        batch, m = inputs_embeds.shape[0], self.config.prompt_length
        k = self.sources.shape[0] + (target is not None)
        if self.g is None:
            return self.sources.new_full((batch, m, k), 1.0 / k)
        mask = attention_mask if self.context.protocol.maxpool_mask_padding else None
        h = self.g(max_pool(inputs_embeds, mask).to(self.sources.dtype))
        if self.config.attention == "token":
            scores = token_scores(self.sources, target, h, self.temperature)
        else:
            scores = prompt_scores(self.sources, target, h, self.temperature).unsqueeze(1).expand(-1, m, -1)
        return scores.softmax(dim=-1)

    # -- attention report -----------------------------------------------------
    def on_evaluation(self, split):
        self._reset_attention()

    def _reset_attention(self) -> None:
        """Sums of the evaluation passes' weights per target task, so `report` describes the last pass."""
        k = len(self.source_names) + (self.target is not None)
        self._weight_sums = torch.zeros(len(self.target_names), k, dtype=torch.float64)
        self._counts = torch.zeros(len(self.target_names), dtype=torch.float64)

    def _record(self, weights: torch.Tensor, task_ids: torch.Tensor) -> None:
        per_example = weights.detach().mean(dim=1).double().cpu()  # token-level: mean over positions
        ids = task_ids.cpu()
        self._weight_sums.index_add_(0, ids, per_example)
        self._counts.index_add_(0, ids, torch.ones(len(ids), dtype=torch.float64))

    def report(self):
        """Mean attention per source prompt and target task over the last evaluation pass, and
        G's learning rate and the softmax temperature the run used (None without G).

        Under the official multi-task evaluation (every task through task 0's prompt) all
        examples carry task id 0, so they are reported under the first task, as computed."""
        targets = {task: (self._weight_sums[i] / self._counts[i]).tolist()
                   for i, task in enumerate(self.target_names) if self._counts[i] > 0}
        sources = self.source_names + (["target"] if self.target is not None else [])
        uses_g = self.g is not None
        return {"attention": {"sources": sources, "targets": targets}, "g_lr": self.g_lr if uses_g else None,
                "temperature": self.temperature if uses_g else None}

    # -- training and accounting ----------------------------------------------
    @property
    def g_lr(self) -> float:
        """G's learning rate: the config's, else the paper's per-suite value; the prompt's
        when the protocol reproduces the official code's ineffective separate rate."""
        if not self.context.protocol.g_lr_effective:
            return self.config.lr
        return self.config.g_lr or paper_g_lr(self.target_names, self.multi_task)

    def param_groups(self):
        """The target prompts at `lr`; G at `g_lr`, its LayerNorm exempt from weight decay."""
        config, groups = self.config, []
        decay = self.context.protocol.attempt_weight_decay
        decay = config.weight_decay if decay is None else decay  # the official code trained ATTEMPT with 0
        if self.target is not None:
            groups += decay_groups("prompt", [self.target.weight], [], config.lr, decay, self.context.protocol)
        if self.g is not None:
            norm = [p for p in self.g.norm.parameters() if p.requires_grad]
            groups += decay_groups("attention", [self.g.down.weight, self.g.up.weight], norm, self.g_lr, decay,
                                   self.context.protocol)
        return groups

    def param_counts(self):
        per_target = self.target.per_task_numel() if self.target is not None else 0
        g = sum(p.numel() for p in self.g.parameters() if p.requires_grad) if self.g is not None else 0
        frozen = numel(self.sources) + sum(p.numel() for p in self.parameters() if not p.requires_grad)
        backbone = self.context.backbone_params
        if self.multi_task:
            n = len(self.target_names)
            return ParamCounts(per_target * n + g, per_target, g, frozen, backbone, num_tasks=n)
        return ParamCounts(per_target + g, per_target + g, 0, frozen, backbone)

    @classmethod
    def search_space(cls, trial):
        return {"g_lr": trial.suggest_float("g_lr", 1e-2, 1.0, log=True),
                "lr": trial.suggest_float("lr", 1e-2, 1.0, log=True)}


class AttemptMulti(Attempt):
    """ATTEMPT-m: one shared G, one target prompt per task of the run (a TaskTable row),
    each example mixed with its own task's target in training and evaluation."""

    name = "attempt-m"
    multi_task = True

    @property
    def evaluates_as_first_task(self) -> bool:
        return not self.context.protocol.multitask_own_prompt_eval
