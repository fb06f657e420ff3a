"""Memory the papers compare: peak device memory and the bytes autograd saves."""
from __future__ import annotations

import resource
from contextlib import contextmanager

import torch


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@contextmanager
def saved_tensor_bytes(counter: list[int]):
    """Add up the bytes autograd keeps for backward: deterministic, unlike RSS."""
    seen: set[tuple[int, int]] = set()

    def pack(tensor: torch.Tensor):
        key = (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            counter[0] += key[1]
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield


def peak_device_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return None
