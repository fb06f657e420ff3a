"""ATTEMPT's math: the attention module G, the scores of the prompts, and the mixture.

Kept free of state so that tests can check each step against hand-written loops.
Shapes: `t` source prompts `[t, m, d]`, per-example target prompts `[B, m, d]`
(or None without a target), `h` `[B, d]`; weights are always `[B, m, k]` with
`k = t + 1` (target last) or `t`, prompt-level weights being the same for every row.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.pooling import max_pool

INIT_STD = 0.01
"""G's linear weights start from N(0, 0.01) (the official code)."""


class AttentionModule(nn.Module):
    """G: `h = LayerNorm(W_up · SiLU(W_down · x))`, no biases, affine LayerNorm."""

    def __init__(self, d_model: int, bottleneck: int, generator: torch.Generator):
        super().__init__()
        self.down = nn.Linear(d_model, bottleneck, bias=False)
        self.up = nn.Linear(bottleneck, d_model, bias=False)
        self.norm = nn.LayerNorm(d_model)
        with torch.no_grad():
            for linear in (self.down, self.up):
                linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator) * INIT_STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.up(F.silu(self.down(x))))


def prompt_scores(sources: torch.Tensor, target: torch.Tensor | None, h: torch.Tensor, temperature: float) -> torch.Tensor:
    """`s_j = maxpool_rows(P_j) · h / T` -> `[B, k]` (the target, when present, last)."""
    scores = h @ max_pool(sources).T
    if target is not None:
        scores = torch.cat([scores, (max_pool(target) * h).sum(-1, keepdim=True)], dim=-1)
    return scores / temperature


def token_scores(sources: torch.Tensor, target: torch.Tensor | None, h: torch.Tensor, temperature: float) -> torch.Tensor:
    """`s_{l,j} = P_j[l] · h / T` -> `[B, m, k]`: one score per prompt row (appendix A.5)."""
    scores = torch.einsum("tmd,bd->bmt", sources, h)
    if target is not None:
        scores = torch.cat([scores, torch.einsum("bmd,bd->bm", target, h).unsqueeze(-1)], dim=-1)
    return scores / temperature


def mix(sources: torch.Tensor, target: torch.Tensor | None, weights: torch.Tensor) -> torch.Tensor:
    """`P_instance[l] = P_target[l] + Σ_j a_{l,j} P_j[l]` (the sum includes the target), `[B, m, d]`."""
    t = sources.shape[0]
    mixed = torch.einsum("bmt,tmd->bmd", weights[..., :t], sources)
    if target is None:
        return mixed
    return target + mixed + weights[..., t:] * target
