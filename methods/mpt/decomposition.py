"""MPT's prompt decomposition: a shared prompt and a rank-one multiplicative mask per task."""
from __future__ import annotations

import torch


def decompose(shared: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """`P̂_k = P* ∘ (u_k ⊗ v_k)`: `[l, d]`, `[B, l]`, `[B, d]` -> `[B, l, d]`."""
    return shared * (u.unsqueeze(-1) * v.unsqueeze(-2))
