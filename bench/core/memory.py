"""Memory the papers compare: peak device memory and the bytes autograd saves."""
from __future__ import annotations

import resource
from contextlib import contextmanager

import torch


def reset_peaks(device: torch.device) -> str:
    """Start a run's peak-memory window; returns the scope the CPU peak will cover.

    On Linux, writing 5 to /proc/self/clear_refs resets the process's peak
    resident size, so each run of a multi-run invocation reports its own peak
    ("run"); elsewhere the peak covers the whole process so far ("process").
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return "run"
    except OSError:
        return "process"


def peak_rss_bytes() -> int:
    """Peak resident memory of this process since the last reset (VmHWM), or since it started."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux and BSD report kilobytes


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
