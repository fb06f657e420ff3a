"""MPT: distil the source tasks' PT prompts into one shared prompt, then adapt it.

`mpt-source` trains P* and one (u, v) per source task against the library's PT
prompts (the teachers); `mpt` / `mpt-m` start from its P* and from the average
source task vectors, and train them on the target task(s).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

from methods.base import Method, MethodContext, Mixing, ParamCounts, ParamGroup, numel, pairs_of
from methods.mpt.config import MPTConfig, source_task_names
from methods.mpt.decomposition import decompose
from methods.mpt.distillation import eval_mode, hidden_mse, logits_kl
from methods.tables import TaskTable


class _MPTPrompts(Method):
    """P* `[l, d]` and, with decomposition, `u [N, l]`, `v [N, d]` for the run's N tasks.

    Parameters outside `param_groups` are frozen, so the counts and the optimiser
    agree on what trains.
    """

    accepts_imported_sources = True

    def __init__(self, config: MPTConfig, context: MethodContext, shared: torch.Tensor,
                 u: torch.Tensor | None, v: torch.Tensor | None):
        super().__init__(config, context)
        n = len(context.task_names)
        self.shared = nn.Parameter(shared.detach().float().clone())
        self.u = TaskTable(u.detach().float().repeat(n, 1)) if config.decomposition else None
        self.v = TaskTable(v.detach().float().repeat(n, 1)) if config.decomposition else None
        trained = {id(p) for group in self.param_groups() for p in group.params}
        for parameter in self.parameters():
            parameter.requires_grad_(id(parameter) in trained)

    def prompts(self, inputs_embeds, attention_mask, task_ids):
        if self.u is None:
            return self.shared.expand(len(task_ids), -1, -1)
        return decompose(self.shared, self.u(task_ids), self.v(task_ids))

    def _groups(self, shared_lr: float, task_lr: float, update: str = "both") -> list[ParamGroup]:
        decay, groups = self.config.weight_decay, []
        if update in ("both", "shared"):
            groups.append(ParamGroup("shared", [self.shared], shared_lr, decay))
        if self.u is not None and update in ("both", "vectors"):
            groups.append(ParamGroup("task_vectors", [self.u.weight, self.v.weight], task_lr, decay))
        return groups

    def param_counts(self):
        """P* is `shared`, (u, v) `per_task`; what does not train (teachers, a frozen P* or
        frozen vectors) is `frozen_extra`."""
        shared = self.shared.numel() if self.shared.requires_grad else 0
        per_task = 0
        if self.u is not None and self.u.weight.requires_grad:
            per_task = self.u.per_task_numel() + self.v.per_task_numel()
        n = len(self.context.task_names)
        trainable = shared + per_task * n
        total = numel(*self.parameters(), *self.buffers())
        return ParamCounts(trainable, per_task, shared, total - trainable, self.context.backbone_params, n)

    @classmethod
    def search_space(cls, trial):
        return {"lr_shared": trial.suggest_float("lr_shared", 1e-2, 1.0, log=True),
                "lr_task": trial.suggest_float("lr_task", 1e-2, 1.0, log=True)}


class MPTSource(_MPTPrompts):
    """Source training: students `P* ∘ (u_k ⊗ v_k)` distilled from the frozen PT teachers.

    Initialisation (the paper does not say): P* is the mean of the teacher prompts and
    u, v are ones, so every student starts at the teachers' average prompt.
    """

    name = "mpt-source"
    multi_task = True

    def __init__(self, config: MPTConfig, context: MethodContext):
        length, d = config.prompt_length, context.d_model
        teachers = torch.stack([context.source_prompt(task, length) for task in context.task_names]).float()
        super().__init__(config, context, teachers.mean(dim=0), torch.ones(length), torch.ones(d))
        # not persistent: only the loss needs them, and they stay in the library
        self.register_buffer("teachers", teachers, persistent=False)
        kappa = (config.max_tasks_per_batch or len(context.task_names)) if config.task_sampling else 0
        self.mixing = Mixing(cap=config.mixing_cap, max_tasks_per_batch=kappa)
        self.loss_sums: dict[str, float] = {}
        self.loss_steps = 0

    def param_groups(self):
        return self._groups(self.config.source_lr, self.config.source_lr)

    def training_loss(self, backbone, batch, prompt):
        """`L = L_PLM + λ (L_logits + L_hidden)`, or the ablations' variants of the λ term.

        With logits or full distillation the student pass runs without dropout, as the teacher
        pass does (unless `student_dropout`): the terms then compare two deterministic functions,
        so a student equal to its teacher scores zero and L_hidden pulls the student's states to
        the teacher's, not to (1 − p) times them. That one pass also gives L_PLM, so distilling
        costs a single extra (teacher) forward pass.
        """
        config = self.config
        inputs = (batch["input_ids"], batch["attention_mask"], batch["labels"])
        with_hidden = config.distillation == "full"
        distilled = config.distillation in ("full", "logits")
        with eval_mode(backbone) if distilled and not config.student_dropout else nullcontext():
            student = backbone(*inputs, prompt, task_ids=batch["task_ids"], output_hidden_states=with_hidden,
                               **pairs_of(batch))
        teacher_prompt = self.teachers[batch["task_ids"]]
        terms = {"plm": student.loss}
        if config.distillation == "prompt":
            terms["prompt"] = (prompt - teacher_prompt).pow(2).mean()
        elif distilled:
            with torch.no_grad(), eval_mode(backbone):
                teacher = backbone(*inputs, teacher_prompt, task_ids=batch["task_ids"], output_hidden_states=with_hidden,
                                   **pairs_of(batch))
            terms["logits"] = logits_kl(teacher.logits, student.logits, student.logit_mask, config.temperature)
            if with_hidden:  # every stream of states: T5's encoder and decoder, an encoder's one
                layer = config.hidden_layer
                terms["hidden"] = sum(hidden_mse(theirs[layer], ours[layer], mask)
                                      for (theirs, _), (ours, mask) in zip(teacher.hidden, student.hidden))
        self._record(terms)
        return terms["plm"] + config.distill_weight * sum(v for k, v in terms.items() if k != "plm")

    def _record(self, terms: dict[str, torch.Tensor]) -> None:
        for name, value in terms.items():
            self.loss_sums[name] = self.loss_sums.get(name, 0.0) + float(value.detach())
        self.loss_steps += 1

    def training_record(self):
        return {"loss_sums": dict(self.loss_sums), "loss_steps": self.loss_steps}

    def restore_training_record(self, record):
        self.loss_sums, self.loss_steps = dict(record["loss_sums"]), record["loss_steps"]

    def report(self):
        """Mean of each loss term over all training steps (is the distillation doing anything?)."""
        return {"mean_loss_terms": {k: v / self.loss_steps for k, v in self.loss_sums.items()}} if self.loss_steps else {}


class MPT(_MPTPrompts):
    """Target adaptation: P* from source training, u_t and v_t from the average source vectors."""

    name = "mpt"

    def __init__(self, config: MPTConfig, context: MethodContext):
        length, d = config.prompt_length, context.d_model
        source_tasks = source_task_names(config.source_tasks)
        if context.stage is None:  # only counting parameters: shapes suffice
            shared, u, v = torch.zeros(length, d), torch.ones(length), torch.ones(d)
        else:
            source = context.stage("mpt-source", source_tasks, config.source_options())
            shared = source["shared"]
            u, v = (source["u.weight"].mean(dim=0), source["v.weight"].mean(dim=0)) if config.decomposition else (None, None)
        super().__init__(config, context, shared, u, v)
        self.source_tasks = source_tasks
        self.mixing = Mixing(cap=config.mixing_cap)

    def param_groups(self):
        return self._groups(self.config.lr_shared, self.config.lr_task, self.config.update)

    def report(self):
        return {"source_tasks": self.source_tasks}


class MPTMulti(MPT):
    """Multi-target adaptation: one P* shared by the target tasks, one (u, v) per task."""

    name = "mpt-m"
    multi_task = True
