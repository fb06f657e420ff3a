"""The plugin's method entry point: `register(registry)` adds entries to bench's method registry.

Only the config (no torch) is imported here: bench lists methods and checks options without
loading the model, which it imports from "module:Class" on first use.
"""
from __future__ import annotations

from dataclasses import dataclass

from methods.pt import PTConfig


@dataclass
class ScaledPTConfig(PTConfig):
    """Prompt tuning with one learned scale on the prompt."""

    scale_init: float = 1.0
    """The scale's starting value (the prompt enters the model as scale x prompt)."""


def register(registry) -> None:
    from methods.registry import MethodSpec

    registry.register("pt-scaled", MethodSpec("bench_example.model:ScaledPromptTuning", ScaledPTConfig,
                                              summary="prompt tuning with a learned scale (example plugin)"))
