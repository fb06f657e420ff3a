"""SPoT's two variants share PT's training fields; they differ in where the prompt starts."""
from __future__ import annotations

from dataclasses import dataclass

from bench.core.registry import UsageError

GLUE_SOURCES = "mnli,qnli,qqp,sst2"
"""The GLUE tasks of the `source` suite (ATTEMPT's SPoT-g mixes its GLUE source tasks)."""
ALL_SOURCES = GLUE_SOURCES + ",squad,record"
"""The six source tasks of the `source` suite (tasks.md), ATTEMPT's source prompts."""
SIMILARITIES = ("mean", "tokens")
WEIGHTINGS = ("softmax", "normalised")


@dataclass
class SpotConfig:
    """The fields SPoT shares with PT; the target prompt is always trained by plain PT."""

    prompt_length: int = 100
    """m: rows of the soft prompt (100 in every paper); also the length of the source prompts."""
    lr: float = 0.3
    """Prompt learning rate (the papers: 0.3)."""
    weight_decay: float = 1e-5
    """AdamW weight decay (the papers' PT setting: 1e-5)."""
    sources: str = ALL_SOURCES
    """Comma-separated source tasks whose PT prompts (the library's) the target starts from."""

    def __post_init__(self):
        if not self.source_tasks:
            raise UsageError("SPoT needs at least one source task (option sources=a,b,...)")

    @property
    def source_tasks(self) -> list[str]:
        from tasks.registry import TASKS

        return [TASKS.canonical(name.strip()) for name in self.sources.split(",") if name.strip()]

    def option_tasks(self, targets: list[str]) -> dict[str, list[str]]:
        """Option -> the tasks it makes the run train or read source prompts of (checked against
        the backbone before any work: bench/backbones/catalog.py `check_option_tasks`)."""
        return {"sources": self.source_tasks}


@dataclass
class SpotGConfig(SpotConfig):
    """SPoT-g (generic): one PT prompt trained on the mixture of the source tasks starts every target."""

    sources: str = GLUE_SOURCES
    """The mixture: Vu et al. mixed the 8 GLUE tasks; ATTEMPT's SPoT-g, the combination of its
    GLUE source tasks, i.e. the GLUE members of the `source` suite (SQuAD and ReCoRD are QA
    tasks ATTEMPT kept out of its GLUE mixture). The mixture prompt is a library stage trained on
    demand, also under `--sources imported` (the ATTEMPT release holds no mixture prompt)."""


@dataclass
class SpotTConfig(SpotConfig):
    """SPoT-t (targeted): the source prompt most similar to a short PT run on the target starts it."""

    similarity: str = "mean"
    """mean: cosine of the mean-pooled prompts (the default); tokens: the mean of the cosines over
    all m x m token pairs. Both are computed and reported; this one ranks the sources."""
    top_k: int = 1
    """Start from the best source (1, ATTEMPT's choice) or a weighted average of the best k."""
    weighting: str = "softmax"
    """Weights of a top-k average: softmax of the k similarities, or normalised similarities
    (negative ones clipped to 0; equal weights if none is positive). Irrelevant for top_k = 1."""
    embedding_epochs: int = 0
    """Epochs of the PT run on the target whose prompt is the task embedding. 0: ATTEMPT's schedule
    for it (20 epochs under 10k training examples, 5 above), or the run's --epochs where it sets
    them. The embedding trains on exactly the run's training data (few-shot draws included)."""

    def __post_init__(self):
        super().__post_init__()
        if self.similarity not in SIMILARITIES:
            raise UsageError(f"unknown similarity {self.similarity!r}; valid: {', '.join(SIMILARITIES)}")
        if self.weighting not in WEIGHTINGS:
            raise UsageError(f"unknown weighting {self.weighting!r}; valid: {', '.join(WEIGHTINGS)}")
        if not 1 <= self.top_k <= len(self.source_tasks):
            raise UsageError(f"top_k {self.top_k} must lie between 1 and the {len(self.source_tasks)} source tasks")
        if self.embedding_epochs < 0:
            raise UsageError(f"embedding_epochs {self.embedding_epochs} must be 0 (ATTEMPT's task-embedding schedule, or the run's --epochs) or more")
