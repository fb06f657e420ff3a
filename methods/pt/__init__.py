"""PT: prompt tuning (Lester et al., 2021), the baseline every other method builds on."""
from methods.pt.config import PTConfig
from methods.pt.model import PromptTuning

__all__ = ["PTConfig", "PromptTuning", "register"]


def register(registry) -> None:
    from methods.registry import MethodSpec

    registry.register("pt", MethodSpec(PromptTuning, PTConfig, summary="prompt tuning (Lester et al., 2021)"),
                      aliases=("prompt-tuning",))
