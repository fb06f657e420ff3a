"""AMP (attention mechanism of multiple prompts): `amp` (DAM) and `amp-maxpool`."""
from methods.amp.config import AMPConfig

__all__ = ["AMP", "AMPConfig", "register"]
"""`AMP` (methods/amp/model.py, which imports torch) loads on first access."""


def register(registry) -> None:
    from methods.registry import MethodSpec

    registry.register("amp", MethodSpec("methods.amp.model:AMP", AMPConfig, multi_task=True,
                                        summary="AMP: DAM attention over the task set's PT prompts"))
    registry.register("amp-maxpool", MethodSpec("methods.amp.model:AMP", AMPConfig, {"pooling": "max"},
                                                summary="AMP with max-pooled queries and keys (the paper's comparison)",
                                                multi_task=True))


def __getattr__(name: str):
    from methods.registry import model_export

    return model_export(__name__, name)
