from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PTConfig:
    """Prompt tuning (Lester et al., 2021) with the papers' defaults."""

    prompt_length: int = 100
    """m: rows of the soft prompt (100 in every paper)."""
    init: str = "vocab"
    """vocab | normal | uniform | text | checkpoint (methods/prompts.py)."""
    init_text: str = ""
    """The string whose embeddings start the prompt when init = text."""
    init_checkpoint: str = ""
    """A saved [m, d] prompt when init = checkpoint (safetensors or torch file)."""
    lr: float = 0.3
    """Prompt learning rate (the papers: 0.3)."""
    weight_decay: float = 1e-5
    """AdamW weight decay (the papers' PT setting: 1e-5)."""
