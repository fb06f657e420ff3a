"""SPoT (Vu et al., 2022): PT whose prompt starts from prompts trained on source tasks.

Training is plain PT: the classes inherit PromptTuning's parameter groups, counts
and search space and change only where the prompt starts. The prompts they start
from come from library stages (trained once, reused by every run and seed) and are
discarded after initialisation, so nothing frozen is added (frozen_extra = 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.core.registry import UsageError
from methods.base import Method, MethodContext
from methods.pt import PromptTuning
from methods.spot.config import SpotConfig, SpotGConfig, SpotTConfig


def mean_similarity(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine of the mean-pooled prompts (the default)."""
    return float(F.cosine_similarity(a.double().mean(0), b.double().mean(0), dim=0))


def token_similarity(a: torch.Tensor, b: torch.Tensor) -> float:
    """The mean of the cosines over all token pairs (row i of `a`, row j of `b`)."""
    return float((F.normalize(a.double(), dim=1) @ F.normalize(b.double(), dim=1).T).mean())


SIMILARITY = {"mean": mean_similarity, "tokens": token_similarity}


@dataclass
class Selection:
    """Which source prompts start the target, and why (the results' `method_report`)."""

    similarities: dict[str, dict[str, float]]
    """Definition -> source task -> similarity to the task embedding."""
    weights: dict[str, float]
    """The chosen sources, best first, with their weights in the initial prompt."""
    prompt: torch.Tensor

    def as_dict(self) -> dict:
        return {"similarities": self.similarities, "chosen": list(self.weights), "weights": self.weights}


def select_sources(embedding: torch.Tensor, sources: dict[str, torch.Tensor], similarity: str = "mean",
                   top_k: int = 1, weighting: str = "softmax") -> Selection:
    """Rank the sources by `similarity` to the task embedding; the initial prompt is the best
    source itself (top_k = 1) or the weighted average of the best `top_k`. Ties keep source order."""
    scores = {name: {task: fn(prompt, embedding) for task, prompt in sources.items()} for name, fn in SIMILARITY.items()}
    ranking = sorted(sources, key=lambda task: -scores[similarity][task])[:top_k]
    best = torch.tensor([scores[similarity][task] for task in ranking], dtype=torch.float64)
    if weighting == "softmax":
        weights = best.softmax(0)
    else:
        positive = best.clamp(min=0)
        weights = positive / positive.sum() if positive.sum() > 0 else torch.full_like(best, 1 / len(best))
    prompt = sum(float(w) * sources[task] for w, task in zip(weights, ranking))
    return Selection(scores, {task: float(w) for w, task in zip(weights, ranking)}, prompt.float())


class TransferredPrompt(PromptTuning):
    """PT with a transferred initial prompt; PromptTuning's own initialisation is skipped."""

    def __init__(self, config: SpotConfig, context: MethodContext):
        Method.__init__(self, config, context)
        if context.stage is None:  # only counting parameters: the shape is all that matters
            initial = torch.zeros(config.prompt_length, context.d_model)
        else:
            initial = self.initial_prompt()
        self.prompt = nn.Parameter(initial)

    def initial_prompt(self) -> torch.Tensor:
        raise NotImplementedError

    def pt_stage(self, tasks: list[str], **request) -> torch.Tensor:
        """A PT prompt of this run's length on `tasks` (their mixture when several), with PT's
        defaults otherwise, like the library's source prompts (`request`: the stage's data and schedule)."""
        return self.context.stage("pt", tasks, {"prompt_length": self.config.prompt_length}, **request)["prompt"]


class SpotG(TransferredPrompt):
    """SPoT-g: every target starts from one PT prompt trained on the mixture of the source tasks
    (PT ignores task ids, so a PT stage on several tasks trains on their mixture)."""

    name = "spot-g"
    config: SpotGConfig

    def initial_prompt(self) -> torch.Tensor:
        return self.pt_stage(self.config.source_tasks).clone()

    def report(self) -> dict:
        return {"mixture": self.config.source_tasks}


class SpotT(TransferredPrompt):
    """SPoT-t: a short PT run on the target gives its task embedding; the most similar source
    prompt (or a weighted average of the top k) starts the target. A target that is itself a
    source finds its own prompt most similar (it is the embedding itself when embedding_epochs = 0);
    leave it out of `sources` to transfer from others."""

    name = "spot-t"
    accepts_imported_sources = True
    config: SpotTConfig
    selection: Selection | None = None
    """Set when the prompt is initialised (not when only counting parameters)."""

    def initial_prompt(self) -> torch.Tensor:
        config, context = self.config, self.context
        embedding = self.pt_stage(context.task_names, epochs=config.embedding_epochs or None,
                                  epoch_rule="task-embedding", on_target=True)
        sources = {task: context.source_prompt(task, config.prompt_length) for task in config.source_tasks}
        for task, prompt in sources.items():
            if prompt.shape != embedding.shape:
                raise UsageError(f"source prompt of {task!r} has shape {tuple(prompt.shape)}, the target's "
                                 f"{tuple(embedding.shape)}; set prompt_length={prompt.shape[0]} (option)")
        self.selection = select_sources(embedding, sources, config.similarity, config.top_k, config.weighting)
        return self.selection.prompt

    def report(self) -> dict:
        if self.selection is None:
            return {}
        return {"ranked_by": self.config.similarity, "embedding_epochs": self.config.embedding_epochs,
                **self.selection.as_dict()}
