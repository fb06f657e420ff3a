"""ATTEMPT (Asai et al., 2022): its single-task, multi-task and ablation entries.

Every variant is the same class with config overrides, so each one is also
reachable from `attempt` with `--option` (e.g. `--option attention=token`).
"""
from methods.attempt.config import AttemptConfig

__all__ = ["Attempt", "AttemptConfig", "AttemptMulti", "register"]
"""`Attempt` and `AttemptMulti` (methods/attempt/model.py, which imports torch) load on first access."""

VARIANTS = {
    "attempt": ("Attempt", {}, "ATTEMPT: attention mixture of frozen source prompts and a target prompt (Asai et al., 2022)"),
    "attempt-token": ("Attempt", {"attention": "token"}, "ATTEMPT with token-level attention (a softmax per prompt row)"),
    "attempt-no-target": ("Attempt", {"target": False}, "ATTEMPT ablation: no target prompt, only G trains"),
    "attempt-const": ("Attempt", {"attention": "constant"},
                      "ATTEMPT ablation: constant weights 1/(t+1), only the target trains"),
    "attempt-single": ("Attempt", {"sources": "auto"}, "ATTEMPT ablation: one source prompt (MNLI; SQuAD for QA targets)"),
    "attempt-m": ("AttemptMulti", {"pretrain_g": True},
                  "ATTEMPT-m: one shared G (pre-trained on source tasks), a target prompt per task, tasks trained jointly"),
}


def register(registry) -> None:
    from methods.registry import MethodSpec

    for name, (class_name, overrides, summary) in VARIANTS.items():
        registry.register(name, MethodSpec(f"methods.attempt.model:{class_name}", AttemptConfig, overrides, summary,
                                           multi_task=class_name == "AttemptMulti"))


def __getattr__(name: str):
    from methods.registry import model_export

    return model_export(__name__, name)
