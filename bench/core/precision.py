"""The arithmetic a run computes in: `--train precision=fp32|tf32|bf16`.

The papers trained in fp32, so fp32 is the default and the only setting whose numbers are
comparable with theirs. On a GPU the frozen model's matmuls are nearly all of a step, and two
cheaper formats are safe for them:
- `tf32`: CUDA matmuls on tensor cores with a 10-bit mantissa (Ampere or newer); everything
  else stays fp32. A CUDA-only format: on a CPU it would silently mean fp32, so it is refused.
- `bf16`: autocast the forward passes (training and evaluation) to bfloat16, fp32's range with
  an 8-bit mantissa. The trained tensors, their gradients and the optimiser stay fp32 (autocast
  casts copies). T5 was pre-trained in bf16. fp16 is not offered: T5's activations overflow
  its range (the known T5 fp16 NaNs). On a CPU bf16 runs too, faster only where the CPU has
  bf16 instructions (`bench perf`: a step in 0.48x the time on this project's AVX-512 BF16 CPU).
Both change results in the last bits, so neither is on by default, and the setting is part of a
run's configuration (left out of keys at fp32: bench/core/identity.py `ADDED_NEUTRAL`).
"""
from __future__ import annotations

from contextlib import nullcontext

from bench.core.registry import UsageError


def check(precision: str) -> None:
    """Refuse, in one line, a known precision this machine cannot compute in (bench/core/config.py
    `set_train` calls it with the other training settings, before a run writes anything;
    torch is imported only to check the other formats: a command that fails later imports no torch)."""
    if precision == "fp32":
        return
    import torch

    if precision == "tf32" and not torch.cuda.is_available():
        raise UsageError("precision 'tf32' is a CUDA tensor-core format and this machine has no CUDA GPU; "
                         "valid here: fp32, bf16")
    if precision == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise UsageError("precision 'bf16' is not supported by this GPU; valid here: fp32, tf32")


def use(precision: str) -> None:
    """Set the process-wide matmul format for a run (every run sets it, so a tf32 run of a grid
    does not leak into the next one)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"


def autocast(precision: str, device):
    """The context forward passes run in: bf16 autocast, or nothing."""
    if precision != "bf16":
        return nullcontext()
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16)
