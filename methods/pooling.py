"""Pooling over the rows of a sequence, shared by the methods that summarise a prompt or an input.

ATTEMPT max-pools the input embeddings (padding excluded unless the protocol
reproduces the official code) and each prompt's rows; AMP's max-pool variant
pools its projected queries and keys. One implementation keeps the masking
rule identical everywhere.
"""
from __future__ import annotations

import torch


def max_pool(rows: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Element-wise max over the rows of `[..., n, d]` -> `[..., d]`.

    `mask` (`[..., n]`, 1 = real token) excludes the positions where it is 0, so
    a padding embedding can never win the max. With no mask every row counts,
    which is what the official ATTEMPT code did with inputs padded to the
    maximum length.
    """
    if mask is not None:
        rows = rows.masked_fill(~mask.bool().unsqueeze(-1), float("-inf"))
    return rows.amax(dim=-2)
