"""MPT (multitask prompt tuning): source training, target adaptation and the paper's ablations."""
from methods.mpt.config import MPTConfig

__all__ = ["MPT", "MPTConfig", "MPTMulti", "MPTSource", "register"]
"""`MPT`, `MPTMulti` and `MPTSource` (methods/mpt/model.py, which imports torch) load on first access."""

ABLATIONS = {
    "mpt-no-decomp": ({"decomposition": False}, "MPT ablation: one shared prompt, no task vectors"),
    "mpt-no-distill": ({"distillation": "none"}, "MPT ablation: source training with L_PLM only"),
    "mpt-logits-only": ({"distillation": "logits"}, "MPT ablation: logits distillation, no hidden-state loss"),
    "mpt-prompt-mse": ({"distillation": "prompt"}, "MPT ablation: MSE to the teacher prompts instead of distillation"),
    "mpt-no-sampling": ({"task_sampling": False}, "MPT ablation: no stochastic task sampling in source training"),
    "mpt-only-shared": ({"update": "shared"}, "MPT ablation: target adaptation trains only P*"),
    "mpt-only-vectors": ({"update": "vectors"}, "MPT ablation: target adaptation trains only u and v"),
}
"""Registry name -> (config overrides, summary); each is a single-target run whose source
stage (when the override concerns source training) is trained and stored apart."""


def register(registry) -> None:
    from methods.registry import MethodSpec

    registry.register("mpt", MethodSpec("methods.mpt.model:MPT", MPTConfig,
                                        summary="MPT: shared prompt from distillation, adapted per task"))
    registry.register("mpt-m", MethodSpec("methods.mpt.model:MPTMulti", MPTConfig, multi_task=True,
                                          summary="MPT multi-target: one P* for the target tasks, (u, v) per task"))
    registry.register("mpt-source", MethodSpec("methods.mpt.model:MPTSource", MPTConfig, multi_task=True,
                                               summary="MPT source training: distil PT teachers into P* and task vectors"))
    for name, (overrides, summary) in ABLATIONS.items():
        registry.register(name, MethodSpec("methods.mpt.model:MPT", MPTConfig, overrides, summary))


def __getattr__(name: str):
    from methods.registry import model_export

    return model_export(__name__, name)
