"""Epoch checkpoints: what a killed run needs to go on exactly where its last finished epoch ended.

After every epoch a run writes, atomically, beside its results file: the trained tensors (and
the best ones so far), the optimiser's and scheduler's state, every random generator's state,
the meter's record and the epochs' history. `bench run --resume` starts a run that has such a
file from it: the plans of all epochs come from the run's seed, so the next epoch sees the same
batches and the same dropout as it would have, and the results equal an uninterrupted run's
(timings aside). The file is removed once the results are written; one left beside results by
a run killed in between is removed by `--resume`, and a pruned sweep trial's by the sweep.
"""
from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import torch

from bench.core.results import atomic_write


SUFFIX = ".resume.pt"


def checkpoint_path(results: Path) -> Path:
    return results.with_suffix(SUFFIX)


def remove_checkpoints(folder: Path) -> None:
    """Every epoch checkpoint under `folder`, whose runs will never go on (a pruned sweep trial's)."""
    for path in Path(folder).rglob(f"*{SUFFIX}"):
        path.unlink(missing_ok=True)


def save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save({**state, "rng": random_states()}, buffer)
    atomic_write(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict | None:
    """The checkpoint's state (its random generators already restored), or None where there is none.

    Written by this program beside its own results, so it is unpickled as a whole (optimiser
    and scheduler states hold more than tensors)."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    restore_random_states(state.pop("rng"))
    return state


def random_states() -> dict:
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]),
        "python": random.getstate(),
    }


def restore_random_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    random.setstate(states["python"])


def remove_stale_writes(results: Path) -> None:
    """Half-written temporary files of a killed write (`atomic_write` renames only complete ones)."""
    for stale in results.parent.glob(f".{results.stem}.*"):
        stale.unlink(missing_ok=True)
