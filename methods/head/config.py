from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HeadOnlyConfig:
    """Nothing of its own to set: the heads' rate and pooling are the run's (`--train head_lr=...,
    head_pooling=...`), so a head-only row and a prompt row with the same `--train` share them."""
