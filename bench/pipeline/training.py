"""The training loop's parts: optimiser, schedule, accumulation windows, clipping and the meter.

The runner builds each part once and the meter records what they did at every optimiser
step (each group's learning rate and the gradient norm the optimiser received), so the
results show, and tests check, the optimiser and schedule the runner really built.
"""
from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from bench.core import memory, precision
from bench.core.config import TrainConfig
from bench.core.progress import Progress
from bench.pipeline.data import Collator, Encoded
from methods.base import ParamGroup, derived_seed


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(groups: list[ParamGroup], train: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with one named parameter group (own lr and weight decay) per group declared."""
    return torch.optim.AdamW(
        [{"params": g.params, "lr": g.lr, "weight_decay": g.weight_decay, "name": g.name} for g in groups],
        betas=tuple(train.adam_betas), eps=train.adam_eps,
    )


def make_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up from 0, then linear decay to 0 after exactly `total_steps` optimiser steps."""
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)


def shard(plan: list, num_processes: int, process_index: int) -> list:
    """This process's part of each batch of an epoch (every process builds the same seeded plan).

    Every batch is split across the processes (examples i, i + N, ...), so the global batch,
    the number of optimiser steps and the schedule are those of one process running the plan,
    and so is each step's gradient, the parts being weighted by their loss terms
    (`process_share`): `accelerate launch` changes speed, not the experiment. A batch with
    fewer examples than processes is run whole by each (their averaged gradient is that
    batch's), so no process ever waits on another for a step it does not take.
    """
    if num_processes == 1:
        return plan
    return [batch[process_index::num_processes] if len(batch) >= num_processes else batch for batch in plan]


def loss_terms(batch: dict, collator: Collator) -> torch.Tensor:
    """How many terms the batch's loss averages: its target tokens (T5's token cross-entropy,
    padding excluded), or its examples (an encoder head's one label each)."""
    labels = batch["labels"]
    return torch.tensor(float(len(labels))) if collator.scalar_labels else (labels != collator.pad_id).sum().float()


def process_share(terms: torch.Tensor, accelerator) -> torch.Tensor:
    """This process's share of the whole batch's loss terms (1 alone; one all-reduce with several).

    The loss is a mean over terms, so the whole batch's loss is the sum over the processes of
    each one's loss times its share, and DDP, which averages the processes' gradients, gets
    the whole batch's gradient from each loss times share × N. That holds exactly for every
    method's loss but MPT's distillation terms that average over other counts (the prompt's
    entries for `prompt`, the encoder's states for `full`): those are weighted as if they
    averaged over the targets."""
    terms = terms.to(accelerator.device)
    return terms / accelerator.reduce(terms, "sum")


def seed_process_epoch(seed: int, epoch: int, process_index: int) -> None:
    """A random stream of its own for each process but the first, in each epoch: dropout masks
    drawn for one process's part of a batch are not repeated on another's.

    The first process (and a run of one) keeps the run's stream, so one process trains exactly
    as before. Another's comes from the run's seed, its index and the epoch, set at the epoch's
    start, so that a resumed run, whose checkpoint holds the first process's generators, draws
    the same masks on every process as an uninterrupted one."""
    if process_index:
        torch.manual_seed(derived_seed(seed, f"dropout/process{process_index}/epoch{epoch}"))


def windows(batches: list, accumulation: int) -> list[list]:
    """Accumulation windows of `accumulation` batches; the epoch's last window may be shorter,
    and it is stepped like the others, so no gradient is left pending at evaluation."""
    return [batches[start : start + accumulation] for start in range(0, len(batches), accumulation)]


def optimizer_steps(plans: list[list], accumulation: int) -> int:
    """Optimiser steps over the given epochs' (sharded) plans: what the schedule must span."""
    return sum(math.ceil(len(plan) / accumulation) for plan in plans)


@dataclass
class Meter:
    """Time, throughput and memory of training, and what the optimiser did at each step."""

    step_seconds: list[float] = field(default_factory=list)
    examples: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    saved_bytes: list[int] = field(default_factory=lambda: [0])
    peak_scope: str = "process"
    lrs: list[dict[str, float]] = field(default_factory=list)
    """Each optimiser step's learning rate per group, as the optimiser applied it."""
    grad_norms: list[float] = field(default_factory=list)
    """Each optimiser step's gradient norm as the optimiser received it (after clipping)."""

    def watch(self, optimizer: torch.optim.Optimizer) -> None:
        """Record every step of `optimizer` (a hook on the optimiser itself, not on the loop)."""
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: self._optimizer_step(opt))

    def _optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.lrs.append({group["name"]: group["lr"] for group in optimizer.param_groups})
        squares = [p.grad.detach().float().pow(2).sum() for g in optimizer.param_groups for p in g["params"]
                   if p.grad is not None]
        self.grad_norms.append(float(torch.stack(squares).sum().sqrt()) if squares else 0.0)

    def state(self) -> dict:
        """What a checkpoint keeps of the meter (bench/pipeline/checkpoint.py)."""
        return asdict(self)

    def restore(self, state: dict) -> None:
        """In place: the optimiser's hook keeps recording into this meter."""
        for name, value in state.items():
            setattr(self, name, value)

    def batch(self, batch: dict) -> None:
        self.examples += len(batch["labels"])
        self.tokens += int(batch["attention_mask"].sum())
        self.padded_tokens += batch["attention_mask"].numel()

    def epoch_record(self, first_step: int) -> dict:
        """The optimiser's record since step `first_step`: steps, last learning rate per group,
        and the gradient norms it received."""
        norms = self.grad_norms[first_step:]
        return {
            "optimizer_steps": len(norms),
            "lr": self.lrs[-1] if len(self.lrs) > first_step else {},
            "grad_norm": {"mean": float(np.mean(norms)), "max": float(np.max(norms))} if norms else None,
        }

    def timing(self, history: list[dict], wall: float) -> dict:
        busy = max(sum(self.step_seconds), 1e-9)
        return {
            "wall_seconds": wall,
            "train_seconds": sum(h["train_seconds"] for h in history),
            "seconds_per_step": float(np.mean(self.step_seconds)) if self.step_seconds else None,
            "seconds_per_epoch": float(np.mean([h["train_seconds"] for h in history])),
            "examples_per_second": self.examples / busy,
            "tokens_per_second": self.tokens / busy,
            "padded_tokens_per_second": self.padded_tokens / busy,
            "real_token_fraction": self.tokens / max(self.padded_tokens, 1),
            "steps": len(self.step_seconds),
        }

    def memory(self, device: torch.device) -> dict:
        return {
            "peak_rss_bytes": memory.peak_rss_bytes(),
            "peak_rss_scope": self.peak_scope,
            "peak_device_bytes": memory.peak_device_bytes(device),
            "autograd_saved_bytes_first_step": self.saved_bytes[0],
            "device": str(device),
        }


def optimizer_record(optimizer: torch.optim.Optimizer, scheduler, meter: Meter, warmup_steps: int,
                     scheduled_steps: int) -> dict:
    """The optimiser the run trained with: its groups as built, and the schedule as it ran."""
    return {
        "groups": [{"name": g["name"], "lr": g["initial_lr"], "weight_decay": g["weight_decay"],
                    "params": sum(p.numel() for p in g["params"])} for g in optimizer.param_groups],
        "warmup_steps": warmup_steps,
        "scheduled_steps": scheduled_steps,
        "steps": len(meter.grad_norms),
        "final_lr": {g["name"]: g["lr"] for g in optimizer.param_groups},
    }


def train_epoch(model, plan: list[list[Encoded]], collator: Collator, accelerator, optimizer, scheduler,
                train: TrainConfig, accumulation: int, meter: Meter, progress: Progress, status: str,
                first: bool, on_step: Callable[[float], None] | None = None) -> list[float]:
    """One pass over this process's batches: per accumulation window, forward and backward each
    batch (its loss scaled by the window's size and this process's share of the batch), then
    clip, step and schedule once. The losses returned are the whole batches'; `on_step` gets
    each step's (the mean of its window's) once the step is taken (an experiment tracker)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    losses = []
    model.train()
    if not train.backbone_dropout:
        accelerator.unwrap_model(model).backbone.eval()
    for number, window in enumerate(windows(plan, accumulation)):
        started = time.perf_counter()
        for position, items in enumerate(window):
            batch = {k: v.to(accelerator.device) for k, v in collator(items).items()}
            share = process_share(loss_terms(batch, collator), accelerator)
            last = position == len(window) - 1
            with nullcontext() if last else accelerator.no_sync(model):
                counting = first and number == 0 and position == 0
                with memory.saved_tensor_bytes(meter.saved_bytes) if counting else nullcontext(), \
                        precision.autocast(train.precision, accelerator.device):
                    loss = model(batch)
                accelerator.backward(loss * share * accelerator.num_processes / len(window))  # DDP averages
            meter.batch(batch)
            losses.append(accelerator.reduce(loss.detach() * share, "sum").item())
            progress.advance(f"{status} loss {np.mean(losses):.3f}")
        accelerator.clip_grad_norm_(params, train.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        meter.step_seconds.append(time.perf_counter() - started)
        if on_step:
            on_step(float(np.mean(losses[-len(window):])))
    return losses
