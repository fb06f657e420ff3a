"""SPoT (soft prompt transfer, Vu et al., 2022): PT started from source-task prompts."""
from methods.spot.config import SpotGConfig, SpotTConfig

__all__ = ["SpotG", "SpotGConfig", "SpotT", "SpotTConfig", "register", "select_sources"]
"""`SpotG`, `SpotT` and `select_sources` (methods/spot/model.py, which imports torch) load on first access."""


def register(registry) -> None:
    from methods.registry import MethodSpec

    registry.register("spot-g", MethodSpec("methods.spot.model:SpotG", SpotGConfig,
                                           summary="SPoT-g: PT from a prompt trained on the mixture of the source tasks"),
                      aliases=("spot",))
    registry.register("spot-t", MethodSpec("methods.spot.model:SpotT", SpotTConfig,
                                           summary="SPoT-t: PT from the source prompt most similar to a short PT run "
                                                   "on the target"))


def __getattr__(name: str):
    from methods.registry import model_export

    return model_export(__name__, name)
