"""ψ, AMP's attention over prompts: one score per (target task i, source task j).

DAM's score is `S_ij = (1/l²) Σ_a Σ_b Q_i[a] · K_j[b]`. Because a mean of dot
products over all row pairs is the dot product of the means, and the projections
are linear, `S_ij = (mean_a P_i[a]) W_Q · (mean_b P_j[b]) W_K`: the fast form
pools the prompts first and projects n vectors instead of n·l rows. The paper's
literal block-sum form is kept (`block_sum_scores`) as the oracle the fast form
is tested against.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.core.registry import UsageError

POOLINGS = ("mean", "max")
VALUE_INITS = ("identity", "random")


def block_sum_scores(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """The paper's literal DAM: `Q' K'^T` over all `n·l` rows, each `l × l` block summed by a
    stride-`l` convolution, over `l²`. `[n, l, k]` twice -> `[n, n]`. Test oracle only."""
    n, length, width = queries.shape
    full = queries.reshape(n * length, width) @ keys.reshape(n * length, width).T
    block = full.new_ones(1, 1, length, length)
    return F.conv2d(full[None, None], block, stride=length)[0, 0] / length**2


def score_scale(scale: str, key_dim: int) -> float:
    """`none` -> 1, `sqrt` -> 1/sqrt(k), else the number given."""
    if scale == "none":
        return 1.0
    if scale == "sqrt":
        return 1.0 / math.sqrt(key_dim)
    try:
        return float(scale)
    except ValueError:
        raise UsageError(f"AMP option scale takes none, sqrt or a number, not {scale!r}") from None


class PromptAttention(nn.Module):
    """W_Q, W_K: d -> k and W_V: d -> d, no biases; prompts `[n, l, d]` -> attention `[n, n]`
    and target prompts `P'_i = Σ_j A_ij V_j`, `[n, l, d]`."""

    def __init__(self, d_model: int, key_dim: int, pooling: str, scale: float, value_init: str,
                 generator: torch.Generator):
        super().__init__()
        if pooling not in POOLINGS:
            raise UsageError(f"unknown AMP pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        if value_init not in VALUE_INITS:
            raise UsageError(f"unknown AMP value_init {value_init!r}; valid: {', '.join(VALUE_INITS)}")
        self.pooling, self.scale = pooling, scale
        self.query = nn.Linear(d_model, key_dim, bias=False)
        self.key = nn.Linear(d_model, key_dim, bias=False)
        self.value = nn.Linear(d_model, d_model, bias=False)
        with torch.no_grad():  # nn.Linear's default U(±1/sqrt(fan_in)), drawn from the run's seed
            for layer in (self.query, self.key, self.value):
                bound = 1.0 / math.sqrt(d_model)
                layer.weight.uniform_(-bound, bound, generator=generator)
            if value_init == "identity":
                self.value.weight.copy_(torch.eye(d_model))

    def scores(self, prompts: torch.Tensor) -> torch.Tensor:
        if self.pooling == "mean":
            pooled = prompts.mean(dim=1)
            queries, keys = self.query(pooled), self.key(pooled)
        else:  # max does not commute with the projection: project every row, then pool
            queries, keys = self.query(prompts).amax(dim=1), self.key(prompts).amax(dim=1)
        return queries @ keys.T * self.scale

    def attention(self, prompts: torch.Tensor) -> torch.Tensor:
        """`A = softmax_j(S)`: row i holds target task i's weights over the source prompts j."""
        return self.scores(prompts).softmax(dim=-1)

    def forward(self, prompts: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,jld->ild", self.attention(prompts), self.value(prompts))
