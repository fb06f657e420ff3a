"""SPoT (soft prompt transfer, Vu et al., 2022): PT started from source-task prompts."""
from methods.spot.config import SpotGConfig, SpotTConfig
from methods.spot.model import SpotG, SpotT, select_sources

__all__ = ["SpotG", "SpotGConfig", "SpotT", "SpotTConfig", "register", "select_sources"]


def register(registry) -> None:
    from methods.registry import MethodSpec

    registry.register("spot-g", MethodSpec(SpotG, SpotGConfig, summary="SPoT-g: PT from a prompt trained on the "
                                           "mixture of the source tasks"), aliases=("spot",))
    registry.register("spot-t", MethodSpec(SpotT, SpotTConfig, summary="SPoT-t: PT from the source prompt most "
                                           "similar to a short PT run on the target"))
