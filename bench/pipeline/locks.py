"""One process at a time trains a results file.

Shards of one grid share its results folder, and the same command may be started twice on one
folder by mistake: each run of a grid trains under the lock of its results file, `seed<k>.lock`
beside it, and a process that finds the lock held skips the run and says who holds it (written
to `seed<k>.owner` while the lock is held). The lock is the operating system's (`flock`, through
`filelock`): it goes with the process that holds it, however that ends, so a killed run never
blocks the next one.
"""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import torch
from filelock import FileLock, Timeout

from bench.core.results import atomic_write


@contextmanager
def unit_lock(results: Path) -> Iterator[str | None]:
    """Inside, None while this process holds the lock of the run writing `results`; or, where
    another process holds it, who does ("pid 412 on node7"), and nothing is held. The processes
    of one distributed run train each run together: the first takes the lock for all, and all
    get its answer."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    main = PartialState(cpu=not torch.cuda.is_available()).is_main_process
    with held(results) if main else nullcontext() as holder:
        yield broadcast_object_list([holder])[0]


@contextmanager
def held(results: Path) -> Iterator[str | None]:
    """`unit_lock` for one process: the lock taken without waiting, and its owner file written."""
    results.parent.mkdir(parents=True, exist_ok=True)
    lock, owner = FileLock(results.with_suffix(".lock")), results.with_suffix(".owner")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield holder_of(owner)
        return
    try:
        atomic_write(owner, f"pid {os.getpid()} on {socket.gethostname()}")
        yield None
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def holder_of(owner: Path) -> str:
    """What the owner file says, or that it says nothing yet (read between lock and write)."""
    try:
        return owner.read_text().strip() or "pid unknown"
    except OSError:
        return "pid unknown"
