"""How many CPU threads torch computes with.

torch defaults to one thread per core. On a machine that other work also loads, its threads
wait on each other at every parallel region: on a 2-core machine running two other busy
processes, one MiniLM prompt-tuning step (batch 32 x 84 positions, interleaved repetitions) took
a median 2.4-2.8 s with 1 thread and 4.4 s with torch's default 2 (the issue that asked for this
measured 0.15 s against 3.2 s for a tiny step on a loaded machine). So a run uses half the
cores it may run on (at least one) unless told otherwise: `--threads N`, or OMP_NUM_THREADS,
which torch reads itself and we leave alone. The count is recorded in each
results file (`environment.torch_threads`); it changes speed, and at most the last bits of a
sum's rounding, never the configuration.
"""
from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which SLURM and containers set)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    return max(1, usable_cores() // 2)


def use_threads(requested: int | None) -> int | None:
    """Set torch's thread count: `requested`, else the default unless OMP_NUM_THREADS is set
    (then torch's own reading of it stands). Returns the count set, or None where left alone."""
    if requested is None and os.environ.get("OMP_NUM_THREADS"):
        return None
    import torch

    count = requested or default_threads()
    torch.set_num_threads(count)
    return count
