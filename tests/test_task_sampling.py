"""MPT's stochastic task sampling (`training_plan` with `Mixing.max_tasks_per_batch` = κ):
K ~ U[2, κ] tasks per batch, capped by the tasks left, every example once, and each task
spread over the whole epoch; plus the unchanged pooled shuffle without sampling."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from bench.pipeline.data import Encoded, training_plan
from methods.base import Mixing

SIZES, BATCH, KAPPA = [400, 100, 50, 50], 8, 4
SEEDS = range(10)


def examples(sizes: list[int]) -> list[list[Encoded]]:
    """Task t's i-th example carries (t, i) as its input ids, so a plan can be read back."""
    return [[Encoded([t, i], [1], t) for i in range(n)] for t, n in enumerate(sizes)]


def plan_of(seed: int, sizes=SIZES, batch=BATCH, kappa=KAPPA, cap=0) -> list[list[tuple[int, int]]]:
    plan = training_plan(examples(sizes), batch, torch.Generator().manual_seed(seed), Mixing(cap=cap, max_tasks_per_batch=kappa))
    return [[tuple(item.input_ids) for item in b] for b in plan]


def with_alive(plan, sizes):
    """(batch, number of tasks that had examples left before it) for each batch."""
    left = list(sizes)
    for batch in plan:
        yield batch, sum(n > 0 for n in left)
        for task, _ in batch:
            left[task] -= 1


@pytest.mark.parametrize("cap", [0, 60])
def test_every_example_exactly_once_in_full_batches(cap):
    """A batch is short only when the tasks it holds have nothing left after it."""
    for seed in SEEDS:
        plan = plan_of(seed, cap=cap)
        used = [pair for batch in plan for pair in batch]
        assert len(used) == len(set(used))  # no example twice
        per_task = Counter(task for task, _ in used)
        assert [per_task[t] for t in range(4)] == ([400, 100, 50, 50] if not cap else [60, 60, 50, 50])
        if not cap:
            assert sorted(used) == [(t, i) for t, n in enumerate(SIZES) for i in range(n)]
        left = dict(per_task)
        for batch in plan:
            tasks = {task for task, _ in batch}
            for task, _ in batch:
                left[task] -= 1
            assert len(batch) == BATCH or (len(batch) < BATCH and not any(left[t] for t in tasks))


def test_two_to_kappa_tasks_per_batch_while_two_tasks_remain():
    for seed in SEEDS:
        for batch, alive in with_alive(plan_of(seed), SIZES):
            tasks = len({task for task, _ in batch})
            if alive >= 2:
                assert 2 <= tasks <= min(KAPPA, alive)
            else:
                assert tasks == 1


def test_k_is_uniform_over_two_to_kappa_while_all_tasks_remain():
    """Each of K = 2, 3, 4 holds about a third of the batches drawn while all four tasks have
    examples (a K always equal to κ, or drawn from a shifted range, would not)."""
    counts = Counter()
    for seed in range(20):
        counts.update(len({t for t, _ in batch}) for batch, alive in with_alive(plan_of(seed), SIZES) if alive == 4)
    total = sum(counts.values())
    assert set(counts) == {2, 3, 4} and total > 1000
    assert all(abs(counts[k] / total - 1 / 3) < 0.06 for k in (2, 3, 4)), counts


def test_k_is_capped_by_the_tasks_left():
    """Three equal tasks and κ = 5: K ~ U[2, 3] (half the batches hold 2 tasks), not
    min(U[2, 5], 3) (a quarter); two tasks left: always both."""
    two = three = 0
    for seed in range(20):
        for batch, alive in with_alive(plan_of(seed, sizes=[100, 100, 100], kappa=5), [100, 100, 100]):
            tasks = len({t for t, _ in batch})
            if alive == 3:
                two, three = two + (tasks == 2), three + (tasks == 3)
            elif alive == 2:
                assert tasks == 2
    assert two + three > 500 and abs(two / (two + three) - 0.5) < 0.06


def test_k_is_capped_by_the_batch_size():
    """A batch of 2 can hold only 2 tasks, one example each, whatever κ says."""
    for seed in SEEDS:
        for batch, alive in with_alive(plan_of(seed, batch=2), SIZES):
            assert len(batch) <= 2
            if alive >= 2:
                assert len(batch) == 2 and batch[0][0] != batch[1][0]


def test_each_quarter_of_the_epoch_holds_every_task_in_proportion():
    """Split the epoch's 600 examples into quarters of 150: each holds between 0.5 and 1.5
    times a quarter of each task (100, 25, 12.5, 12.5), the last quarter included. Filling
    batches round-robin from K random tasks spends the 50-example tasks before the last quarter."""
    for seed in SEEDS:
        order = [task for batch in plan_of(seed) for task, _ in batch]
        for quarter in range(4):
            counts = Counter(order[quarter * 150 : (quarter + 1) * 150])
            for task, n in enumerate(SIZES):
                assert 0.5 <= counts[task] / (n / 4) <= 1.5, (seed, quarter, task, counts)


def test_the_generator_alone_determines_the_plan():
    torch.manual_seed(1)
    first = plan_of(3)
    torch.manual_seed(2)  # the global RNG plays no part
    assert plan_of(3) == first
    assert plan_of(4) != first


def test_without_sampling_the_pooled_shuffle_is_unchanged():
    """The plans the pooled shuffle gave before stochastic sampling was rewritten (three tasks
    of 4, 3 and 2 examples, batch 3, seed 0), without and with a cap of 3, and for a single
    task even when κ is set."""
    uncapped = [[(2, 1), (2, 0), (1, 1)], [(0, 3), (1, 2), (0, 0)], [(0, 2), (0, 1), (1, 0)]]
    capped = [[(1, 0), (1, 2), (0, 0)], [(2, 1), (1, 1), (2, 0)], [(0, 3), (0, 1)]]
    assert plan_of(0, sizes=[4, 3, 2], batch=3, kappa=0) == uncapped
    assert plan_of(0, sizes=[4, 3, 2], batch=3, kappa=0, cap=3) == capped
    assert plan_of(0, sizes=[5], batch=2, kappa=4) == plan_of(0, sizes=[5], batch=2, kappa=0)
