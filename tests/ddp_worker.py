"""Run by tests/test_ddp.py, as one process or under torchrun: PT on tiny-t5, one step of
`bench.pipeline.training.train_epoch` on a hand-made batch of 5 examples with targets of 1 to 5 tokens,
then dropout masks of one process's part of a batch. Writes `OUT/process<index>.pt`.

`python tests/ddp_worker.py OUT`:
- `gradient`, `loss`: the prompt's gradient the optimiser received and the batch's loss (dropout
  off, as the test compares them with one process's).
- `mask`: the first dropout mask of this process's part of a batch of 4 copies of one example,
  after `seed_process_epoch` (the same input on every process: only the stream can differ).
- `mask_shared`: the same without it, every process on the run's stream (the control).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn

from bench.core.config import TrainConfig
from bench.core.presets import Protocol
from bench.core.progress import Progress
from bench.pipeline.data import Collator, Encoded
from bench.pipeline.runner import PromptedModel, cached_backbone
from bench.pipeline.training import (Meter, make_optimizer, make_scheduler, seed_everything, seed_process_epoch, shard,
                                     train_epoch)
from methods.base import MethodContext
from methods.registry import METHODS

SEED = 0
BATCH = [Encoded([37, 178, 19, 1], [3, 1], 0), Encoded([8, 1], [3, 9, 1], 0), Encoded([100, 200, 300, 1], [1], 0),
         Encoded([5, 6, 7, 8, 9, 1], [4, 5, 6, 7, 1], 0), Encoded([42, 1], [11, 12, 13, 1], 0)]
"""Ids within tiny-t5's 384-row vocabulary, EOS (1) last; split over two processes as examples
0, 2, 4 (target tokens 2 + 1 + 4 = 7) and 1, 3 (3 + 5 = 8)."""
COLLATOR = Collator(pad_id=0)
"""tiny-t5's pad id, as the runner's collator has it."""


def gradient_step(accelerator: Accelerator) -> tuple[PromptedModel, dict]:
    """One optimiser step on this process's part of BATCH, built as the runner builds a run."""
    backbone = cached_backbone("tiny-t5")
    context = MethodContext(d_model=backbone.d_model, embedding=backbone.embedding, tokenizer=backbone.tokenizer,
                            task_names=["cb"], protocol=Protocol(), seed=SEED)
    spec = METHODS.get("pt")
    prompted = PromptedModel(backbone, spec.build(spec.make_config({"prompt_length": "4"}), context))
    train = TrainConfig(backbone_dropout=False, max_grad_norm=1e9)
    optimizer = make_optimizer(prompted.param_groups(train), train)
    seen = {}
    optimizer.register_step_pre_hook(lambda *_: seen.update(gradient=prompted.method.prompt.grad.detach().clone()))
    scheduler = make_scheduler(optimizer, 0, 1)
    model, optimizer = accelerator.prepare(prompted, optimizer)
    plan = shard([BATCH], accelerator.num_processes, accelerator.process_index)
    [loss] = train_epoch(model, plan, COLLATOR, accelerator, optimizer, scheduler, train, 1, Meter(), Progress(),
                         "epoch 1/1", first=False)
    return prompted, {"gradient": seen["gradient"], "loss": loss}


def dropout_mask(prompted: PromptedModel, accelerator: Accelerator) -> torch.Tensor:
    """The first dropout mask drawn for this process's part of a batch of 4 copies of one example."""
    masks = []
    dropout = next(m for m in prompted.backbone.model.modules() if isinstance(m, nn.Dropout))
    handle = dropout.register_forward_hook(lambda module, args, out: None if masks else masks.append(out == 0))
    [items] = shard([[BATCH[3]] * 4], accelerator.num_processes, accelerator.process_index)
    prompted.train()
    with torch.no_grad():
        prompted(COLLATOR(items))
    handle.remove()
    return masks[0]


def main(out: Path) -> None:
    seed_everything(SEED)
    accelerator = Accelerator(cpu=True)
    prompted, record = gradient_step(accelerator)
    seed_everything(SEED)
    seed_process_epoch(SEED, 1, accelerator.process_index)
    record["mask"] = dropout_mask(prompted, accelerator)
    seed_everything(SEED)
    record["mask_shared"] = dropout_mask(prompted, accelerator)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(record, out / f"process{accelerator.process_index}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
