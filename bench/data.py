"""Examples -> token ids -> padded batches with task ids.

Padding is dynamic (to the longest example of the batch) unless the protocol
asks for padding to the maximum length, as the official code did.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

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


def batches(items: list[Encoded], batch_size: int, collator: Collator, generator: torch.Generator | None = None):
    """Mini-batches in a seeded shuffled order (or in order without a generator).

    Shuffling the concatenation of several tasks mixes them within batches.
    """
    order = torch.randperm(len(items), generator=generator).tolist() if generator is not None else range(len(items))
    order = list(order)
    for start in range(0, len(order), batch_size):
        yield collator([items[i] for i in order[start : start + batch_size]])


def num_batches(n: int, batch_size: int) -> int:
    return -(-n // batch_size)
