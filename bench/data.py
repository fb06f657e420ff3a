"""Examples -> token ids -> padded batches with task ids.

Padding is dynamic (to the longest example of the batch) unless the protocol
asks for padding to the maximum length, as the official code did.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.results import atomic_write
from methods.base import Mixing
from tasks.base import Example
from tasks.loading import fingerprint


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    task_id: int


def cache_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "bench")) / "tokens"


def encode(examples: list[Example], tokenizer, max_source: int, max_target: int, task_id: int,
           digest: str | None = None) -> list[Encoded]:
    """Tokenise sources and targets (truncated, each ending in EOS), cached on disk.

    The cache key is the examples' fingerprint plus the tokenizer and lengths, so a
    change in data, format or tokenizer never reuses stale ids. `digest` is the
    examples' fingerprint when the caller already has it.
    """
    key = hashlib.sha256(json.dumps([
        digest or fingerprint(examples), len(examples), type(tokenizer).__name__, tokenizer.name_or_path, len(tokenizer),
        max_source, max_target,
    ]).encode()).hexdigest()[:24]
    path = cache_root() / f"{key}.npz"
    if path.is_file():
        sources, targets = load_ragged(path)
    else:
        sources = tokenizer([e.source for e in examples], max_length=max_source, truncation=True).input_ids
        targets = tokenizer([e.target for e in examples], max_length=max_target, truncation=True).input_ids
        save_ragged(path, sources, targets)
    return [Encoded(s, t, task_id) for s, t in zip(sources, targets)]


def save_ragged(path: Path, *columns: list[list[int]]) -> None:
    """Lists of id lists as flat arrays plus offsets, written atomically."""
    arrays = {}
    for n, column in enumerate(columns):
        arrays[f"ids{n}"] = np.fromiter((i for ids in column for i in ids), dtype=np.int32)
        arrays[f"offsets{n}"] = np.cumsum([0] + [len(ids) for ids in column], dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write(path, buffer.getvalue())


def load_ragged(path: Path) -> list[list[list[int]]]:
    with np.load(path) as data:
        columns = []
        for n in range(len(data.files) // 2):
            ids, offsets = data[f"ids{n}"].tolist(), data[f"offsets{n}"].tolist()
            columns.append([ids[a:b] for a, b in zip(offsets[:-1], offsets[1:])])
    return columns


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
