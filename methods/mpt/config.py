from __future__ import annotations

from dataclasses import dataclass, fields

from bench.core.registry import UsageError

DISTILLATIONS = ("full", "logits", "prompt", "none")
UPDATES = ("both", "shared", "vectors")
SOURCE_FIELDS = ("prompt_length", "decomposition", "distillation", "distill_weight", "temperature", "hidden_layer",
                 "student_dropout", "task_sampling", "max_tasks_per_batch", "mixing_cap", "source_lr", "weight_decay")
"""The fields that determine source training: a target run hands exactly these to its
`mpt-source` stage, so the library keys the shared prompt by them and nothing else."""


@dataclass
class MPTConfig:
    """Multitask prompt tuning (Wang et al., 2023) with the paper's defaults.

    One config serves source training (`mpt-source`) and target adaptation
    (`mpt`, `mpt-m` and the ablations): a target run trains its source stage
    with the source-training fields of its own config.
    """

    prompt_length: int = 100
    """l: rows of the shared prompt P* (100)."""
    decomposition: bool = True
    """P̂_k = P* ∘ (u_k ⊗ v_k); False (ablation): one shared prompt P*, no task vectors."""
    # -- source training --
    source_tasks: str = "source"
    """Source tasks of a target run's source stage: a suite name or comma-separated task names
    (paper: MNLI, QNLI, QQP, SST-2, SQuAD, ReCoRD)."""
    distillation: str = "full"
    """full: L_logits + L_hidden (paper); logits: L_logits only; prompt: MSE between student
    and teacher prompts instead; none: L_PLM only."""
    distill_weight: float = 0.9
    """λ in L = L_PLM + λ (L_logits + L_hidden) (paper: 0.9)."""
    temperature: float = 2.0
    """T softening teacher and student token distributions in L_logits. The paper does not state
    its value; 2 is the usual choice. The KL term is multiplied by T² (Hinton et al., 2015) so that
    its gradient scale, and so λ's meaning, does not change with T."""
    hidden_layer: int = -1
    """Hidden state matched by L_hidden in both encoder and decoder, an index into the model's
    hidden-state tuple (0: embeddings; -1: the last layer, after its final LayerNorm)."""
    student_dropout: bool = False
    """True keeps train-mode dropout in the student pass (standard KD; then an identical student
    has nonzero distillation loss and the hidden MSE's minimum shifts to (1−p)·t, t the teacher's
    state, because HF T5 applies dropout to the last hidden state). False (default): with logits
    or full distillation the student pass, which also gives L_PLM, runs without dropout like the
    teacher's, so the terms compare two deterministic functions."""
    task_sampling: bool = True
    """Stochastic task sampling: each batch draws K ~ U[2, κ] source tasks (False: ablation, batches mix freely)."""
    max_tasks_per_batch: int = 0
    """κ; 0 means all the run's tasks (six source tasks in the paper)."""
    mixing_cap: int = 0
    """Examples-proportional mixing cap per task and epoch (0: none; the paper states none)."""
    source_lr: float = 0.3
    """Source training's learning rate for P* and the task vectors (paper: 0.3)."""
    # -- target adaptation --
    lr_shared: float = 0.3
    """Target adaptation's learning rate for P* (paper: 0.3)."""
    lr_task: float = 0.4
    """Target adaptation's learning rate for u_t and v_t (paper: 0.4)."""
    update: str = "both"
    """What target adaptation trains: both (paper), shared (only P*) or vectors (only u_t, v_t); ablations."""
    weight_decay: float = 1e-5
    """Paper: 1e-5."""

    def __post_init__(self):
        if self.distillation not in DISTILLATIONS:
            raise UsageError(f"unknown MPT distillation {self.distillation!r}; valid: {', '.join(DISTILLATIONS)}")
        if self.update not in UPDATES:
            raise UsageError(f"unknown MPT update {self.update!r}; valid: {', '.join(UPDATES)}")
        if self.update == "vectors" and not self.decomposition:
            raise UsageError("MPT update=vectors needs decomposition=true: without it there are no task vectors")

    def option_tasks(self, targets: list[str]) -> dict[str, list[str]]:
        """Option -> the tasks it makes the run train source prompts of (checked against the
        backbone before any work: bench/backbones/catalog.py `check_option_tasks`)."""
        return {"source_tasks": source_task_names(self.source_tasks)}

    def source_options(self) -> dict:
        """This config's source-training fields, as options of the `mpt-source` stage."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in SOURCE_FIELDS}


def source_task_names(spec: str) -> list[str]:
    """A suite name or comma-separated task names -> task names."""
    from tasks.registry import SUITES, resolve_tasks

    return resolve_tasks(spec, None) if spec in SUITES else resolve_tasks(None, spec)
