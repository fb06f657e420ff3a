"""Examples -> token ids -> padded batches with task ids.

Padding is dynamic (to the longest example of the batch) unless the protocol
asks for padding to the maximum length, as the official code did.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.base import Mixing
from tasks.base import Example


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    task_id: int


def encode(examples: list[Example], tokenizer, max_source: int, max_target: int, task_id: int) -> list[Encoded]:
    """Tokenise sources and targets (truncated, each ending in EOS)."""
    sources = tokenizer([e.source for e in examples], max_length=max_source, truncation=True).input_ids
    targets = tokenizer([e.target for e in examples], max_length=max_target, truncation=True).input_ids
    return [Encoded(s, t, task_id) for s, t in zip(sources, targets)]


def pad(sequences: list[list[int]], pad_id: int, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    width = length or max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return ids, mask


class Collator:
    def __init__(self, pad_id: int, pad_to: int | None = None):
        self.pad_id = pad_id
        self.pad_to = pad_to
        """Fixed source width (pad-to-max-length preset), or None for dynamic padding."""

    def __call__(self, batch: list[Encoded]) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = pad([b.input_ids for b in batch], self.pad_id, self.pad_to)
        labels, _ = pad([b.labels for b in batch], self.pad_id)
        task_ids = torch.tensor([b.task_id for b in batch], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels, "task_ids": task_ids}


def batches(items: list[Encoded], batch_size: int, collator: Collator):
    """Evaluation batches, in order."""
    for start in range(0, len(items), batch_size):
        yield collator(items[start : start + batch_size])


def training_plan(per_task: list[list[Encoded]], batch_size: int, generator: torch.Generator, mixing: Mixing) -> list[list[Encoded]]:
    """One epoch of training batches for one or several tasks.

    Each task's examples are shuffled and capped (examples-proportional mixing
    with a cap). By default the pooled examples are shuffled together, so
    batches mix tasks in proportion to their sizes. With stochastic task
    sampling (MPT) each batch first draws K ~ U[2, κ] of the tasks that still
    have examples and is filled from them in turn.
    """
    pools = []
    for items in per_task:
        order = torch.randperm(len(items), generator=generator).tolist()
        pools.append([items[i] for i in order[: mixing.cap or None]])
    if not mixing.max_tasks_per_batch or len(pools) < 2:
        pooled = [item for pool in pools for item in pool]
        order = torch.randperm(len(pooled), generator=generator).tolist()
        return [[pooled[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]
    plan = []
    while any(pools):
        alive = [i for i, pool in enumerate(pools) if pool]
        high = min(mixing.max_tasks_per_batch, len(alive))
        k = int(torch.randint(min(2, high), high + 1, (1,), generator=generator))
        chosen = [alive[i] for i in torch.randperm(len(alive), generator=generator)[:k].tolist()]
        batch = []
        while len(batch) < batch_size and any(pools[c] for c in chosen):
            for c in chosen:
                if pools[c] and len(batch) < batch_size:
                    batch.append(pools[c].pop())
        plan.append(batch)
    return plan
