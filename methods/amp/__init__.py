"""AMP (attention mechanism of multiple prompts): `amp` (DAM) and `amp-maxpool`."""
from methods.amp.config import AMPConfig
from methods.amp.model import AMP

__all__ = ["AMP", "AMPConfig", "register"]


def register(registry) -> None:
    from methods.registry import MethodSpec

    registry.register("amp", MethodSpec(AMP, AMPConfig, summary="AMP: DAM attention over the task set's PT prompts"))
    registry.register("amp-maxpool", MethodSpec(AMP, AMPConfig, {"pooling": "max"},
                                                summary="AMP with max-pooled queries and keys (the paper's comparison)"))
