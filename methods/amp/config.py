from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AMPConfig:
    """AMP: the attention component ψ over the task set's own source prompts.

    The paper's setup is RoBERTa-base (source prompts at lr 1e-4, ψ at lr 5e-5 for
    10 epochs, max length 384); here the source prompts come from the library's
    PT runs (T5 defaults, lr 0.3) and ψ's rate is scaled for T5 (see `lr`).
    """

    prompt_length: int = 100
    """l: rows of each source prompt, hence of each computed target prompt (paper: 100)."""
    prompt_epochs: int = 30
    """Stage 1's epochs: each task's own PT prompt trains for up to this many epochs (paper: 30)."""
    prompt_patience: int = 5
    """Stage 1 stops early after this many epochs without a better dev score (the paper stops
    early without saying when; 0: never)."""
    key_dim: int = 0
    """k: output width of W_Q and W_K; 0 means d (the paper's setting; it studied 64, 256, 512, 768)."""
    pooling: str = "mean"
    """mean: DAM, the block sums of Q K^T over l² (the paper's method);
    max: max-pool the projected rows of Q and K over l, then dot (the paper's comparison)."""
    scale: str = "none"
    """Multiplier of the scores before the softmax: none (the paper states no scaling),
    sqrt (1/sqrt(k), as in Transformer attention), or a number."""
    value_init: str = "identity"
    """Start of W_V: identity, so each target prompt starts as an attention-weighted mix of the
    source prompts rather than a random projection of them (exempt from weight decay, which would
    pull it away from the identity); or random (nn.Linear's U(±1/sqrt(d)), which W_Q and W_K
    always use; the paper does not say)."""
    lr: float = 5e-4
    """ψ's learning rate. Paper (RoBERTa): 5e-5. Under Adam a linear map's update is relative to
    its input, and T5 prompt tuning takes ~10x larger relative steps than the paper's RoBERTa
    prompts (lr 0.3 on T5's large embeddings versus 1e-4), so ψ's rate is scaled by 10."""
    weight_decay: float = 1e-5
    """Paper: 1e-5."""
    mixing_cap: int = 100_000
    """Examples-proportional mixing: at most this many training examples per task and epoch (paper: 100k)."""
