"""Examples -> token ids -> padded batches with task ids.

Padding is dynamic (to the longest example of the batch) unless the protocol
asks for padding to the maximum length, as the official code did.
"""
from __future__ import annotations

import hashlib
import heapq
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.core.results import atomic_write
from methods.base import Mixing
from tasks.base import Example
from tasks.loading import fingerprint


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[float]
    """The target's token ids (T5), or one number: a label index or a score (an encoder's head)."""
    task_id: int
    pair_ids: list[int] | None = None
    """Two towers: the pair's second text (`input_ids` then holds the first), each encoded alone."""

    @property
    def length(self) -> int:
        """Input tokens the example costs (both texts of a pair): what length grouping sorts by."""
        return len(self.input_ids) + len(self.pair_ids or ())


def cache_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "bench")) / "tokens"


def encode(examples: list[Example], tokenizer, max_source: int, max_target: int, task_id: int,
           digest: str | None = None, label_of=None, two_tower: bool = False) -> list[Encoded]:
    """Tokenise sources and targets (truncated, each ending in EOS), cached on disk; with
    `label_of` (encoder heads), each target is the one number it gives instead of token ids.
    With `two_tower`, a pair task's two texts (`Example.pair`) are tokenised each alone, each
    within `max_source`, in place of the joined source.

    The cache key is the examples' fingerprint plus the tokenizer, lengths and form, so a
    change in data, format or tokenizer never reuses stale ids. `digest` is the
    examples' fingerprint when the caller already has it.
    """
    towers = two_tower and all(e.pair is not None for e in examples) and bool(examples)
    key = hashlib.sha256(json.dumps([
        digest or fingerprint(examples), len(examples), type(tokenizer).__name__, tokenizer.name_or_path, len(tokenizer),
        max_source, None if label_of else max_target, *(["two_tower"] if towers else []),
    ]).encode()).hexdigest()[:24]
    path = cache_root() / f"{key}.npz"
    if path.is_file():
        columns = load_ragged(path)
    else:
        texts = [[e.pair[0] for e in examples], [e.pair[1] for e in examples]] if towers else [[e.source for e in examples]]
        columns = [tokenizer(column, max_length=max_source, truncation=True).input_ids for column in texts]
        if label_of is None:
            columns.append(tokenizer([e.target for e in examples], max_length=max_target, truncation=True).input_ids)
        save_ragged(path, *columns)
    targets = columns[-1] if label_of is None else [[label_of(e)] for e in examples]
    pairs = columns[1] if towers else [None] * len(examples)
    return [Encoded(s, t, task_id, pair) for s, t, pair in zip(columns[0], targets, pairs)]


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
    def __init__(self, pad_id: int, pad_to: int | None = None, scalar_labels: bool = False):
        self.pad_id = pad_id
        self.pad_to = pad_to
        """Fixed source width (pad-to-max-length preset), or None for dynamic padding."""
        self.scalar_labels = scalar_labels
        """Labels are one number each (a head's class index or score): a float vector, not padded ids."""

    def __call__(self, batch: list[Encoded]) -> dict[str, torch.Tensor]:
        """`input_ids`, `attention_mask` and `task_ids` are per encoder row, `labels` per example.
        Two towers (any example with `pair_ids`): a pair's second text is a row of its own, after
        the first texts, and `pairs` `[B, 2]` gives each example's rows (-1: no second text), so
        that a method sees one row per text and computes its prompt for each."""
        seconds = [b for b in batch if b.pair_ids is not None]
        rows = [b.input_ids for b in batch] + [b.pair_ids for b in seconds]
        input_ids, attention_mask = pad(rows, self.pad_id, self.pad_to)
        if self.scalar_labels:
            labels = torch.tensor([b.labels[0] for b in batch], dtype=torch.float)
        else:
            labels, _ = pad([b.labels for b in batch], self.pad_id)
        task_ids = torch.tensor([b.task_id for b in batch] + [b.task_id for b in seconds], dtype=torch.long)
        collated = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels, "task_ids": task_ids}
        if seconds:
            second = iter(range(len(batch), len(rows)))
            collated["pairs"] = torch.tensor([[i, next(second) if b.pair_ids is not None else -1]
                                              for i, b in enumerate(batch)], dtype=torch.long)
        return collated


def by_length(items: list[Encoded]) -> list[int]:
    """Evaluation order: longest input first (stable), so a batch pads to a length near its
    own examples'; predictions are put back in the split's order by the caller."""
    return sorted(range(len(items)), key=lambda i: -items[i].length)


def batches(items: list[Encoded], batch_size: int, collator: Collator):
    """Evaluation batches, in the order given."""
    for start in range(0, len(items), batch_size):
        yield collator(items[start : start + batch_size])


GROUP_SPAN = 50
"""Length grouping sorts windows of this many batches (HF's LengthGroupedSampler uses 50 too)."""


def training_plan(per_task: list[list[Encoded]], batch_size: int, generator: torch.Generator, mixing: Mixing,
                  group_by_length: bool = False) -> list[list[Encoded]]:
    """One epoch of training batches for one or several tasks.

    Each task's examples are shuffled and capped (examples-proportional mixing
    with a cap). By default the pooled examples are shuffled together, so
    batches mix tasks in proportion to their sizes. With stochastic task
    sampling (MPT, `mixing.max_tasks_per_batch` = κ > 0) every batch holds
    K ~ U[2, κ] tasks and each task stays spread over the whole epoch: see
    `_sampled_plan`. Either way every (capped) example is used exactly once per
    epoch, and the plan depends only on the inputs and the generator's state.

    `group_by_length` (pooled shuffle only) batches examples of similar length
    together, so that dynamic padding pads little: see `length_grouped`.
    """
    pools = []
    for items in per_task:
        order = torch.randperm(len(items), generator=generator).tolist()
        pools.append([items[i] for i in order[: mixing.cap or None]])
    if not mixing.max_tasks_per_batch or len(pools) < 2:
        pooled = [item for pool in pools for item in pool]
        order = torch.randperm(len(pooled), generator=generator).tolist()
        if group_by_length:
            return length_grouped([pooled[i] for i in order], batch_size, generator)
        return [[pooled[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]
    return _sampled_plan(pools, batch_size, mixing.max_tasks_per_batch, generator)


def length_grouped(shuffled: list[Encoded], batch_size: int, generator: torch.Generator) -> list[list[Encoded]]:
    """Batches of similar lengths from a shuffled epoch: each window of `GROUP_SPAN` batches is
    sorted by input length (longest first, ties in shuffled order) and cut into batches, and the
    batches are then shuffled, so an epoch still visits examples in a seeded random order while a
    batch pads to a length near its own examples' (real SuperGLUE/GLUE lengths: about 2x fewer
    padded positions). Every example is used once; only which examples share a batch changes."""
    span = GROUP_SPAN * batch_size
    plan = []
    for start in range(0, len(shuffled), span):
        window = sorted(shuffled[start : start + span], key=lambda item: -item.length)
        plan += [window[i : i + batch_size] for i in range(0, len(window), batch_size)]
    return [plan[i] for i in torch.randperm(len(plan), generator=generator).tolist()]


def _sampled_plan(pools: list[list[Encoded]], batch_size: int, kappa: int, generator: torch.Generator) -> list[list[Encoded]]:
    """Stochastic task sampling over the tasks' shuffled `pools`, examples-proportional
    across the whole epoch.

    Every example gets a due time in [0, 1): the j-th of a task's n examples is due
    at (j + U)/n, U ~ U[0, 1), so each task's examples are spread evenly over the
    epoch, as in a pooled shuffle but without its clumps. Then, batch by batch:

    1. K ~ U[2, κ], with κ capped by the number of tasks that still have examples
       and by the batch size, so K is 1 only when a single task is left;
    2. the K tasks whose next example is due first are chosen (a task's next
       example is due about 1/n after its last, so a big task is chosen about in
       proportion to what it has left, and a task that sat out is chosen soon);
    3. each chosen task gives its next example, and the other slots take the
       earliest-due examples left among the chosen tasks, whichever task they
       belong to (so the slots split about in proportion to what is due).

    A batch is short only when its K tasks have fewer examples left than it has
    slots. Drawing the K tasks independently of due times (say in proportion to
    the remaining counts) and splitting the slots by those counts does not keep
    the proportions: the one slot each chosen task must get lets small tasks run
    ahead, and with sizes 400/100/50/50, batch 8 and κ = 4 the 100-example task
    then gets only about half its share of the epoch's last quarter. Due times make a
    task that ran ahead wait until the others catch up. When a task's share of a
    batch is far below one example (a few examples beside thousands), K ≥ 2
    still spends it early: no order can avoid that.
    """
    queues = []  # per task: (due time, example), the next due last
    for pool in pools:
        n = len(pool)
        due = (torch.arange(n, dtype=torch.float64) + torch.rand(n, generator=generator, dtype=torch.float64)) / max(n, 1)
        queues.append(list(zip(due.tolist(), pool))[::-1])
    plan = []
    while any(queues):
        alive = [task for task, queue in enumerate(queues) if queue]
        high = min(kappa, len(alive), batch_size)
        k = int(torch.randint(min(2, high), high + 1, (1,), generator=generator))
        chosen = sorted(alive, key=lambda task: queues[task][-1][0])[:k]
        batch = [queues[task].pop()[1] for task in chosen]
        heads = [(queues[task][-1][0], task) for task in chosen if queues[task]]
        heapq.heapify(heads)
        while heads and len(batch) < batch_size:
            _, task = heapq.heappop(heads)
            batch.append(queues[task].pop()[1])
            if queues[task]:
                heapq.heappush(heads, (queues[task][-1][0], task))
        plan.append(batch)
    return plan
