"""Head only: no prompt at all, the encoder's task heads alone: what a prompt adds is measured
against it. Encoders only (T5 generates its targets: it has no head to train)."""
from methods.head.config import HeadOnlyConfig

__all__ = ["HeadOnlyConfig", "HeadOnly", "register"]
"""`HeadOnly` (methods/head/model.py, which imports torch) loads on first access."""


def register(registry) -> None:
    from methods.registry import MethodSpec

    registry.register("head-only", MethodSpec("methods.head.model:HeadOnly", HeadOnlyConfig,
                                              summary="no prompt: an encoder's task heads alone (baseline)"),
                      aliases=("head",))


def __getattr__(name: str):
    from methods.registry import model_export

    return model_export(__name__, name)
