"""The backbone adapters: the only code that knows model internals at run time.

Two families behind one interface:
- T5 (encoder-decoder): soft prompts go in front of the *encoder* input embeddings
  only, with the attention mask extended by ones; the decoder sees no virtual tokens;
  the target is generated.
- BERT-family encoders: the prompt rows enter after the first token ([CLS] / <s>), the
  model adds position embeddings to every position as PEFT's prompt tuning does (so the
  usable input shrinks by the prompt length), and a linear head per task reads the first
  token's final state: classification over the task's labels, or regression (STS-B).

Training loss and prediction both go through `with_prompt`, so they cannot drift apart.
Every forward returns a `PromptedOutput`, so methods that compare two passes (MPT's
distillation) need not know which family they run on. This module needs torch; naming,
configs and tokenizers (bench/backbones/catalog.py) do not.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.backbones.catalog import (ENCODER_TYPES, TINY_SEED, backbone_name, cannot_load, check_tasks_for, load_tokenizer,
                                     location, offline_config, tiny_t5_config)
from bench.core.hub import quiet_hub_retries
from bench.core.registry import UsageError
from tasks.base import Task

HEAD_INIT_STD = 0.02
"""Heads start like BERT's own classifier weights: N(0, 0.02), zero bias."""
ABSENT_CLASS = -1e4
"""Logit of a class a task does not have, where tasks with fewer labels share a batch."""


@dataclass
class PromptedOutput:
    """One prompted forward pass, in the same terms for every backbone family."""

    loss: torch.Tensor
    logits: torch.Tensor
    """`[B, S, V]`: the output distributions (T5: one per target token; encoders: one, S = 1)."""
    logit_mask: torch.Tensor
    """`[B, S]`: 1 where a distribution belongs to a real target."""
    hidden: list[tuple[tuple[torch.Tensor, ...], torch.Tensor]]
    """Per stream (T5: encoder, decoder; encoders: one), every layer's states `[B, S, d]` and
    the mask of the positions that carry tokens; empty unless hidden states were asked for."""


class FrozenModel(nn.Module):
    """What both families share: a frozen pretrained model, its tokenizer and name."""

    generates = False
    """True when predictions are decoded text (T5), False when a head picks them (encoders)."""

    def __init__(self, model: nn.Module, tokenizer, name: str):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @property
    def embedding(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


class Backbone(FrozenModel):
    """A frozen encoder-decoder LM (T5) that accepts soft prompt rows."""

    generates = True

    @property
    def d_model(self) -> int:
        return self.model.config.d_model

    def for_tasks(self, tasks: list[Task], seed: int, pooling: str = "first",
                  train_targets: list[list[str]] | None = None, two_tower: bool = False) -> "Backbone":
        """T5 needs nothing per run: it generates every task's target from one text."""
        return self

    def max_source_length(self, task_default: int, prompt_length: int) -> int:
        """T5's relative positions put no limit on prompt plus input."""
        return task_default

    def label_of(self, task_id: int):
        """None: targets are tokenised and generated."""
        return None

    def param_groups(self, train) -> list:
        return []

    def head_state(self) -> dict[str, torch.Tensor]:
        return {}

    def head_numel(self) -> int:
        return 0

    def with_prompt(self, prompt: torch.Tensor | None, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """`[P; X]` and `[1..1; mask]`: the one place prompts enter the model."""
        embeds = self.embedding(input_ids)
        if prompt is None:
            return embeds, attention_mask
        ones = attention_mask.new_ones(prompt.shape[:2])
        return torch.cat([prompt.to(embeds.dtype), embeds], dim=1), torch.cat([ones, attention_mask], dim=1)

    def forward(self, input_ids, attention_mask, labels, prompt=None, task_ids=None,
                output_hidden_states: bool = False) -> PromptedOutput:
        embeds, mask = self.with_prompt(prompt, input_ids, attention_mask)
        targets = labels != self.tokenizer.pad_token_id
        output = self.model(inputs_embeds=embeds, attention_mask=mask, labels=labels.masked_fill(~targets, -100),
                            output_hidden_states=output_hidden_states)
        hidden = [(output.encoder_hidden_states, mask), (output.decoder_hidden_states, targets)] if output_hidden_states else []
        return PromptedOutput(output.loss, output.logits, targets, hidden)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, prompt=None, max_new_tokens: int = 20) -> torch.Tensor:
        embeds, mask = self.with_prompt(prompt, input_ids, attention_mask)
        return self.model.generate(
            inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
            do_sample=False, num_beams=1,
        )

    def predict(self, input_ids, attention_mask, task_ids, prompt, max_new_tokens: int) -> list[str]:
        """Greedy decoding, as the papers evaluate."""
        return self.tokenizer.batch_decode(self.generate(input_ids, attention_mask, prompt, max_new_tokens),
                                           skip_special_tokens=True)

    @torch.no_grad()
    def rank(self, input_ids, attention_mask, prompt, labels: tuple[str, ...]) -> list[str]:
        """The label that greedy decoding restricted to `labels` emits, in one pass per label.

        Each label is scored teacher-forced, after one encoder pass; then, position by position,
        among the labels that share the prefix chosen so far, the one whose next token the model
        scores highest stays. Whenever unrestricted greedy decoding emits a label, this picks that
        label (its token was the best of all at each step, so also among the labels'); where
        greedy decoding strays outside the label set, this still answers a label."""
        candidates = self._label_ids(labels).to(input_ids.device)  # [C, T], EOS-ended, pad-filled
        embeds, mask = self.with_prompt(prompt, input_ids, attention_mask)
        encoded = self.model.get_encoder()(inputs_embeds=embeds, attention_mask=mask)
        batch, (count, length) = input_ids.shape[0], candidates.shape
        start = candidates.new_full((count, 1), self.model.config.decoder_start_token_id)
        decoder_inputs = torch.cat([start, candidates[:, :-1]], dim=1)  # teacher forcing: each label shifted right
        scores = torch.stack([  # [B, C, T]: the logit of each label's own token at each position
            self.model(encoder_outputs=encoded, attention_mask=mask, decoder_input_ids=inputs.expand(batch, length)).logits
            .gather(-1, row.expand(batch, length)[..., None]).squeeze(-1) for inputs, row in zip(decoder_inputs, candidates)], dim=1)
        real = candidates != self.tokenizer.pad_token_id
        alive = torch.ones(batch, count, dtype=torch.bool, device=input_ids.device)
        for position in range(length):
            live = alive & real[:, position]
            deciding = live.any(dim=1)  # rows whose chosen label has ended (EOS) are decided already
            if not deciding.any():
                break
            best = scores[:, :, position].masked_fill(~live, float("-inf")).argmax(dim=1)
            same = candidates[:, position][None, :] == candidates[best, position][:, None]
            alive &= same | ~deciding[:, None]
        return [labels[index] for index in alive.int().argmax(dim=1).tolist()]

    def _label_ids(self, labels: tuple[str, ...]) -> torch.Tensor:
        ids = self.tokenizer(list(labels)).input_ids
        if len({tuple(row) for row in ids}) < len(ids):
            raise ValueError(f"labels {labels} tokenise alike: rank evaluation cannot tell them apart")
        width = max(map(len, ids))
        return torch.tensor([row + [self.tokenizer.pad_token_id] * (width - len(row)) for row in ids])


class EncoderBackbone(FrozenModel):
    """A frozen BERT-family encoder (BERT, RoBERTa, DeBERTa-v3, MiniLM) that takes soft prompt
    rows after its first token; `for_tasks` adds the per-task heads a run trains."""

    @property
    def d_model(self) -> int:
        return self.model.config.hidden_size

    @property
    def max_positions(self) -> int:
        """Positions the model can embed: its position table (RoBERTa keeps 2 for padding), at
        most what its tokenizer declares."""
        config = self.model.config
        table = config.max_position_embeddings - (2 if config.model_type in ("roberta", "xlm-roberta") else 0)
        declared = getattr(self.tokenizer, "model_max_length", table)
        return min(table, declared) if declared and declared < 1e6 else table

    def for_tasks(self, tasks: list[Task], seed: int, pooling: str = "first",
                  train_targets: list[list[str]] | None = None, two_tower: bool = False) -> "EncoderClassifier":
        return EncoderClassifier(self, tasks, seed, pooling, train_targets, two_tower)

    def max_source_length(self, task_default: int, prompt_length: int) -> int:
        """Input tokens kept: the task's default, within the positions the prompt leaves free."""
        return min(task_default, self.max_positions - prompt_length)

    def with_prompt(self, prompt: torch.Tensor | None, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """`[x_0; P; x_1..]` and its mask: the prompt after the first token ([CLS] / <s>)."""
        embeds = self.embedding(input_ids)
        if prompt is None:
            return embeds, attention_mask
        ones = attention_mask.new_ones(prompt.shape[:2])
        return (torch.cat([embeds[:, :1], prompt.to(embeds.dtype), embeds[:, 1:]], dim=1),
                torch.cat([attention_mask[:, :1], ones, attention_mask[:, 1:]], dim=1))

    def encode(self, prompt, input_ids, attention_mask, output_hidden_states: bool = False):
        """The final states (and every layer's, when asked) over `[x_0; P; x_1..]`, and its mask;
        position and token-type embeddings are the model's own, added to every position."""
        embeds, mask = self.with_prompt(prompt, input_ids, attention_mask)
        output = self.model(inputs_embeds=embeds, attention_mask=mask, output_hidden_states=output_hidden_states)
        return output, mask


class PairHead(nn.Module):
    """Two towers, a classification pair task: a linear map over (u, v, |u − v|, u · v) of the
    two texts' pooled states, the features sentence encoders are trained with (SBERT's)."""

    def __init__(self, d_model: int, labels: int, generator: torch.Generator):
        super().__init__()
        self.linear = nn.Linear(4 * d_model, labels)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(self.linear.weight.shape, generator=generator) * HEAD_INIT_STD)
            self.linear.bias.zero_()

    out_features = property(lambda self: self.linear.out_features)

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.cat([u, v, (u - v).abs(), u * v], dim=-1))


class CosineHead(nn.Module):
    """Two towers, a regression pair task (STS-B): a scaled cosine of the two texts' pooled
    states, `weight · cos(u, v) + bias`, in the standardised target space of every regression
    head. It starts at `top · cos` on the raw scale (`top`: the largest training target, 5 on
    STS-B), i.e. from the model's own similarity, which is what a sentence encoder was trained to
    score: the prompt and the two numbers then fit the task's scale."""

    out_features = 1

    def __init__(self, mean: float, std: float, top: float):
        super().__init__()
        self.register_buffer("target_mean", torch.tensor(mean))
        self.register_buffer("target_std", torch.tensor(std))
        self.weight = nn.Parameter(torch.tensor([top / std]))
        self.bias = nn.Parameter(torch.tensor([-mean / std]))

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (self.weight * F.cosine_similarity(u, v, dim=-1) + self.bias).unsqueeze(-1)


class EncoderClassifier(nn.Module):
    """An encoder with the run's heads: one linear map per task from the first token's final
    state to the task's label logits (or one score for regression). The heads train with
    their own learning rate and are saved with the method's tensors; the encoder stays frozen.
    With `two_tower`, a pair task's two texts come as two rows (the batch's `pairs`), each
    encoded and pooled alone, and its head reads both (`PairHead`, `CosineHead`).

    A regression head predicts the *standardised* score, `(y - mean) / std` with the mean and std
    of the run's training targets (buffers `target_mean`, `target_std`, saved with the head), and
    its prediction is mapped back. Raw 0-5 targets defeat a head that starts at 0 with a small
    rate: Adam moves its bias about one rate per step, so after a CPU schedule's ~100 steps it
    has not reached STS-B's mean of ~2.7, and the head ends predicting near the mean. Standardised,
    the head starts at the mean, its loss is 1 for predicting it, and the classification rate fits."""

    generates = False

    def __init__(self, encoder: EncoderBackbone, tasks: list[Task], seed: int, pooling: str = "first",
                 train_targets: list[list[str]] | None = None, two_tower: bool = False):
        super().__init__()
        from methods.base import derived_seed

        check_tasks_for(encoder.name, [task.name for task in tasks], family="encoder")
        self.encoder = encoder
        self.tasks = list(tasks)
        self.pooling = pooling
        self.heads = nn.ModuleList()
        for task in tasks:
            targets = train_targets[len(self.heads)] if train_targets else []
            generator = torch.Generator().manual_seed(derived_seed(seed, f"head/{task.name}"))
            self.heads.append(make_head(task, encoder.d_model, generator, targets, two_tower and bool(task.pair_fields)))

    # -- what the runner and the methods read, as from any backbone ------------------
    name = property(lambda self: self.encoder.name)
    tokenizer = property(lambda self: self.encoder.tokenizer)
    model = property(lambda self: self.encoder.model)
    d_model = property(lambda self: self.encoder.d_model)
    embedding = property(lambda self: self.encoder.embedding)

    def count_parameters(self) -> int:
        return self.encoder.count_parameters()

    def with_prompt(self, prompt, input_ids, attention_mask):
        return self.encoder.with_prompt(prompt, input_ids, attention_mask)

    def max_source_length(self, task_default: int, prompt_length: int) -> int:
        return self.encoder.max_source_length(task_default, prompt_length)

    def label_of(self, task_id: int):
        """What a head trains towards: the label's index, or the score."""
        task = self.tasks[task_id]
        if task.head_form == "classification":
            return lambda example: task.labels.index(example.target)
        return lambda example: float(example.target)

    def param_groups(self, train) -> list:
        from methods.base import ParamGroup

        return [ParamGroup("head", list(self.heads.parameters()), train.head_lr, train.head_weight_decay)]

    def head_state(self) -> dict[str, torch.Tensor]:
        return {f"head.{k}": v for k, v in self.heads.state_dict().items()}

    def head_numel(self) -> int:
        return sum(p.numel() for p in self.heads.parameters())

    # -- passes ---------------------------------------------------------------------------
    def pooled(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """What the heads read: the first token's final state, or the mean of the input tokens'
        final states (the prompt rows left out), the sentence embedding that sentence-transformers
        models such as MiniLM were trained to give: a head starts from what the model knows."""
        if self.pooling == "first":
            return states[:, 0]
        rows = states.shape[1] - attention_mask.shape[1]  # the prompt's, after the first token
        keep = torch.cat([attention_mask[:, :1], attention_mask.new_zeros(len(states), rows), attention_mask[:, 1:]], dim=1)
        weights = keep.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(1) / weights.sum(1)

    def target_scale(self, task_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row, its task's training-target mean and std (0 and 1 for classification rows)."""
        raw = task_ids.new_tensor([0.0, 1.0], dtype=torch.float)
        stats = torch.stack([torch.stack([head.target_mean, head.target_std]) if hasattr(head, "target_mean") else raw
                             for head in self.heads])[task_ids]
        return stats[:, 0], stats[:, 1]

    def logits(self, pooled: torch.Tensor, task_ids: torch.Tensor, pairs: torch.Tensor | None = None):
        """(`[B, V]` head outputs per example, V the largest label count, a task's absent classes at
        ABSENT_CLASS; the examples' task ids). `pooled` holds one state per encoder row; `pairs`
        (two towers) gives each example's rows, its second -1 where it has one text."""
        first = pooled if pairs is None else pooled[pairs[:, 0]]
        second = None if pairs is None else pooled[pairs[:, 1].clamp(min=0)]
        task_ids = task_ids if pairs is None else task_ids[pairs[:, 0]]
        width = max(head.out_features for head in self.heads)
        logits = first.new_full((len(first), width), ABSENT_CLASS)
        for task_id in task_ids.unique().tolist():
            rows = task_ids == task_id
            head = self.heads[task_id]
            reads_pair = isinstance(head, (PairHead, CosineHead))
            logits[rows, : head.out_features] = head(first[rows], second[rows]) if reads_pair else head(first[rows])
        return logits, task_ids

    def forward(self, input_ids, attention_mask, labels, prompt=None, task_ids=None,
                output_hidden_states: bool = False, pairs: torch.Tensor | None = None) -> PromptedOutput:
        output, mask = self.encoder.encode(prompt, input_ids, attention_mask, output_hidden_states)
        logits, task_ids = self.logits(self.pooled(output.last_hidden_state, attention_mask), task_ids, pairs)
        regression = torch.tensor([self.tasks[t].head_form == "regression" for t in task_ids.tolist()],
                                  device=logits.device)
        mean, std = self.target_scale(task_ids)
        losses = torch.where(
            regression,
            F.mse_loss(logits[:, 0], (labels.float() - mean) / std, reduction="none"),
            F.cross_entropy(logits, labels.long().masked_fill(regression, 0), reduction="none"),
        )
        hidden = [(output.hidden_states, mask)] if output_hidden_states else []
        return PromptedOutput(losses.mean(), logits.unsqueeze(1), (~regression).unsqueeze(1), hidden)

    @torch.no_grad()
    def predict(self, input_ids, attention_mask, task_ids, prompt, max_new_tokens: int = 0,
                pairs: torch.Tensor | None = None) -> list[str]:
        """The argmax label, or the score (no generation: `max_new_tokens` is unused)."""
        output, _ = self.encoder.encode(prompt, input_ids, attention_mask)
        logits, task_ids = self.logits(self.pooled(output.last_hidden_state, attention_mask), task_ids, pairs)
        means, stds = self.target_scale(task_ids)
        predictions = []
        for row, task_id, mean, std in zip(logits, task_ids.tolist(), means.tolist(), stds.tolist()):
            task = self.tasks[task_id]
            if task.head_form == "classification":
                predictions.append(task.labels[int(row[: len(task.labels)].argmax())])
            else:
                predictions.append(f"{float(row[0]) * std + mean:.3f}")
        return predictions


def make_head(task: Task, d_model: int, generator: torch.Generator, train_targets: list[str], pair: bool) -> nn.Module:
    """A task's head: linear over one pooled state (labels, or one standardised score), or, for a
    pair task read by two towers, `PairHead` (labels) or `CosineHead` (a score)."""
    regression = task.head_form == "regression"
    if pair and regression:
        mean, std = target_statistics(train_targets)
        return CosineHead(mean, std, max((float(t) for t in train_targets), default=1.0))
    if pair:
        return PairHead(d_model, len(task.labels), generator)
    head = nn.Linear(d_model, 1 if regression else len(task.labels))
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * HEAD_INIT_STD)
        head.bias.zero_()
    if regression:
        mean, std = target_statistics(train_targets)
        head.register_buffer("target_mean", torch.tensor(mean))
        head.register_buffer("target_std", torch.tensor(std))
    return head


def target_statistics(targets: list[str]) -> tuple[float, float]:
    """Mean and (population) std of a regression task's training targets; with no spread (one
    example, one value) std 1, so a head is never scaled by 0. No targets: 0 and 1 (raw scores)."""
    values = torch.tensor([float(target) for target in targets], dtype=torch.float64)
    if len(values) == 0:
        return 0.0, 1.0
    std = float(values.std(unbiased=False))
    return float(values.mean()), std if std > 0 else 1.0


def load_backbone(name: str):
    """The frozen model with its tokenizer, as a T5 `Backbone` or an `EncoderBackbone` (torch and
    transformers are imported here, not by the catalog of names)."""
    tokenizer = load_tokenizer(name)
    if backbone_name(name) == "tiny-t5":
        from transformers import T5ForConditionalGeneration

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            model = T5ForConditionalGeneration(tiny_t5_config())
        return Backbone(model, tokenizer, "tiny-t5")
    from transformers import AutoModel, AutoModelForSeq2SeqLM
    from transformers.utils import logging

    logging.disable_progress_bar()  # a bar per load, in the middle of the run's own display
    config = offline_config(name)
    encoder = config.model_type in ENCODER_TYPES and not config.is_encoder_decoder
    try:
        with quiet_hub_retries():
            model = (AutoModel if encoder else AutoModelForSeq2SeqLM).from_pretrained(location(name))
    except Exception as error:
        raise UsageError(cannot_load(backbone_name(name), error)) from None
    return (EncoderBackbone if encoder else Backbone)(model, tokenizer, backbone_name(name))
