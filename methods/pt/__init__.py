"""PT: prompt tuning (Lester et al., 2021), the baseline every other method builds on."""
from methods.pt.config import PTConfig

__all__ = ["PTConfig", "PromptTuning", "register"]
"""`PromptTuning` (methods/pt/model.py, which imports torch) loads on first access."""


def register(registry) -> None:
    from methods.registry import MethodSpec

    registry.register("pt", MethodSpec("methods.pt.model:PromptTuning", PTConfig,
                                       summary="prompt tuning (Lester et al., 2021)"), aliases=("prompt-tuning",))


def __getattr__(name: str):
    from methods.registry import model_export

    return model_export(__name__, name)
