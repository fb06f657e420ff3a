"""One run = (method, task set, seed): train, select on dev, test, write results.

The data path reads top to bottom: tasks -> examples -> encoded batches ->
method prompts -> backbone loss / generation -> predictions -> metrics ->
results file.
"""
from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench import memory
from bench.backbone import Backbone, load_backbone
from bench.config import RunConfig
from bench.data import Collator, Encoded, batches, encode, num_batches
from bench.evaluation import Score, score
from bench.progress import Progress
from bench.results import SCHEMA_VERSION, git_commit, package_versions, run_path, write_json
from methods.base import Method, MethodContext
from methods.registry import METHODS
from tasks.base import Example, Task
from tasks.loading import DataSource, fingerprint, load_examples
from tasks.registry import TASKS

EVAL_SPLITS = ("validation", "test")


@dataclass
class TaskData:
    """One task of a run, from examples to encoded ids."""

    task: Task
    task_id: int
    examples: dict[str, list[Example]]
    encoded: dict[str, list[Encoded]]
    source: dict
    max_new_tokens: dict[str, int]

    def describe(self) -> dict:
        return {
            "source": self.source,
            "sizes": {split: len(examples) for split, examples in self.examples.items()},
            "fingerprints": {split: fingerprint(examples) for split, examples in self.examples.items()},
            "max_new_tokens": self.max_new_tokens,
        }


class PromptedModel(nn.Module):
    """Method + frozen backbone: what the optimiser and accelerate see."""

    def __init__(self, backbone: Backbone, method: Method):
        super().__init__()
        self.backbone = backbone
        self.method = method

    def prompt(self, batch):
        embeds = self.backbone.embedding(batch["input_ids"])
        return self.method.prompts(embeds, batch["attention_mask"], batch["task_ids"])

    def forward(self, batch):
        out = self.backbone(batch["input_ids"], batch["attention_mask"], batch["labels"], self.prompt(batch))
        return out.loss

    @torch.no_grad()
    def generate(self, batch, max_new_tokens: int):
        return self.backbone.generate(batch["input_ids"], batch["attention_mask"], self.prompt(batch), max_new_tokens)


_BACKBONES: dict[str, Backbone] = {}


def cached_backbone(name: str) -> Backbone:
    """Backbones are frozen, so one copy serves every run of a process."""
    if name not in _BACKBONES:
        _BACKBONES[name] = load_backbone(name)
    return _BACKBONES[name]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_task(task: Task, task_id: int, config: RunConfig, source: DataSource, tokenizer) -> TaskData:
    protocol, train = config.protocol, config.train
    examples = {split: load_examples(task, split, source, protocol, config.data_seed) for split in ("train", *EVAL_SPLITS)}
    if train.max_train_examples:
        examples["train"] = examples["train"][: train.max_train_examples]
    if train.max_eval_examples:
        for split in EVAL_SPLITS:
            examples[split] = examples[split][: train.max_eval_examples]
    max_source = train.max_source_length or task.max_source_length
    max_target = train.max_target_length or task.default_max_target_length(tokenizer)
    encoded = {split: encode(ex, tokenizer, max_source, max_target, task_id) for split, ex in examples.items()}
    max_new = {split: max_new_tokens(ex, tokenizer, config) for split, ex in examples.items() if split in EVAL_SPLITS}
    return TaskData(task, task_id, examples, encoded, source.describe(task), max_new)


def max_new_tokens(examples: list[Example], tokenizer, config: RunConfig) -> int:
    """The longest tokenised gold target plus a margin, or the preset's fixed cap."""
    if config.protocol.generation_max_new_tokens:
        return config.protocol.generation_max_new_tokens
    golds = {answer for e in examples for answer in (e.extra.get("answers") or [e.target])}
    longest = max((len(ids) for ids in tokenizer(sorted(golds)).input_ids), default=1)
    return longest + config.train.generation_margin


def predict(model: PromptedModel, data: TaskData, split: str, config: RunConfig, collator: Collator) -> list[str]:
    tokenizer = model.backbone.tokenizer
    predictions = []
    for batch in batches(data.encoded[split], config.train.eval_batch_size, collator):
        batch = {k: v.to(model.backbone.model.device) for k, v in batch.items()}
        output = model.generate(batch, data.max_new_tokens[split])
        predictions += tokenizer.batch_decode(output, skip_special_tokens=True)
    return predictions


def evaluate(model: PromptedModel, tasks: list[TaskData], split: str, config: RunConfig, collator: Collator) -> dict[str, Score]:
    model.eval()
    return {d.task.name: score(d.task, d.examples[split], predict(model, d, split, config, collator)) for d in tasks}


def mean_over_tasks(scores: dict[str, Score]) -> float:
    return float(np.mean([s.mean for s in scores.values()]))


def build_method(config: RunConfig, backbone: Backbone, task_names: list[str], seed: int) -> Method:
    spec = METHODS.get(config.method)
    method_config = spec.make_config(config.method_options)
    context = MethodContext(
        d_model=backbone.d_model, embedding=backbone.embedding, tokenizer=backbone.tokenizer,
        task_names=task_names, protocol=config.protocol, seed=seed, backbone_params=backbone.count_parameters(),
    )
    return spec.build(method_config, context)


def task_sets(config: RunConfig) -> list[list[str]]:
    if METHODS.get(config.method).cls.multi_task:
        return [list(config.tasks)]
    return [[name] for name in config.tasks]


def train_one(config: RunConfig, task_names: list[str], seed: int, progress: Progress) -> Path:
    """Train one (method, task set, seed) and write its results file; returns its path."""
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup

    started = time.perf_counter()
    seed_everything(seed)
    backbone = cached_backbone(config.model)
    tokenizer = backbone.tokenizer
    source = DataSource.resolve(config.data_dir, config.fixtures)
    tasks = [prepare_task(TASKS.get(name), i, config, source, tokenizer) for i, name in enumerate(task_names)]
    method = build_method(config, backbone, task_names, seed)

    accelerator = Accelerator(cpu=not torch.cuda.is_available(), gradient_accumulation_steps=config.train.grad_accum)
    model = PromptedModel(backbone, method)
    groups = method.param_groups()
    weight_decay_override = config.protocol.attempt_weight_decay if method.name.startswith("attempt") else None
    optimizer = torch.optim.AdamW(
        [{"params": g.params, "lr": g.lr, "weight_decay": g.weight_decay if weight_decay_override is None else weight_decay_override,
          "name": g.name} for g in groups],
        betas=tuple(config.train.adam_betas), eps=config.train.adam_eps,
    )
    train_items = [item for data in tasks for item in data.encoded["train"]]
    epochs = config.train.epochs or tasks[0].task.default_epochs(len(train_items))
    steps_per_epoch = num_batches(len(train_items), config.train.batch_size * config.train.grad_accum)
    scheduler = get_linear_schedule_with_warmup(optimizer, config.train.warmup_steps, steps_per_epoch * epochs)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    unwrapped: PromptedModel = accelerator.unwrap_model(model)
    pad_to = max(t.task.max_source_length if not config.train.max_source_length else config.train.max_source_length for t in tasks)
    collator = Collator(tokenizer.pad_token_id, pad_to if config.protocol.pad_to_max_length else None)
    frozen_before = _frozen_checksum(backbone)

    shuffle = torch.Generator().manual_seed(seed)
    history, best, best_state = [], None, None
    saved_bytes, step_times, tokens, padded_tokens = [0], [], 0, 0
    label = f"{config.method} · {'+'.join(task_names)} · seed {seed}"
    progress.start_run(label, epochs * num_batches(len(train_items), config.train.batch_size))
    for epoch in range(1, epochs + 1):
        model.train()
        epoch_start, losses = time.perf_counter(), []
        for step, batch in enumerate(batches(train_items, config.train.batch_size, collator, shuffle)):
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            step_start = time.perf_counter()
            with accelerator.accumulate(model):
                if epoch == 1 and step == 0:
                    with memory.saved_tensor_bytes(saved_bytes):
                        loss = model(batch)
                else:
                    loss = model(batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_([p for g in groups for p in g.params], config.train.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            step_times.append(time.perf_counter() - step_start)
            losses.append(loss.item())
            tokens += int(batch["attention_mask"].sum())
            padded_tokens += batch["attention_mask"].numel()
            progress.advance(f"epoch {epoch}/{epochs} loss {np.mean(losses):.3f}")
        train_seconds = time.perf_counter() - epoch_start
        dev = evaluate(unwrapped, tasks, "validation", config, collator)
        dev_mean = mean_over_tasks(dev)
        history.append({
            "epoch": epoch, "train_loss": float(np.mean(losses)), "train_seconds": train_seconds,
            "dev": {name: s.as_dict() for name, s in dev.items()}, "dev_mean": dev_mean,
        })
        if best is None or dev_mean > best["dev_mean"]:
            best = history[-1]
            best_state = copy.deepcopy(unwrapped.method.state_dict())
        progress.note(f"epoch {epoch}: dev {dev_mean:.2f} (best {best['dev_mean']:.2f} @ {best['epoch']})")

    unwrapped.method.load_state_dict(best_state)
    test = evaluate(unwrapped, tasks, "test", config, collator)
    if _frozen_checksum(backbone) != frozen_before:
        raise RuntimeError("the frozen backbone changed during training")
    path = run_path(Path(config.output), config.method, task_names, seed)
    prompt_path = path.with_suffix(".safetensors")
    unwrapped.method.save(prompt_path)
    total_steps = len(step_times)
    wall = time.perf_counter() - started
    result = {
        "schema_version": SCHEMA_VERSION,
        "run": {"method": config.method, "tasks": task_names, "suite": config.suite, "seed": seed,
                "preset": config.preset, "profile": config.profile, "backbone": backbone.name},
        "config": config.as_dict(),
        "method_config": _plain(unwrapped.method.config),
        "data": {d.task.name: d.describe() for d in tasks},
        "epochs": history,
        "best_epoch": best["epoch"],
        "dev": best["dev"],
        "test": {name: s.as_dict() for name, s in test.items()},
        "test_mean": mean_over_tasks(test),
        "params": unwrapped.method.param_counts().as_dict(),
        "method_report": unwrapped.method.report(),
        "memory": {
            "peak_rss_bytes": memory.peak_rss_bytes(),
            "peak_device_bytes": memory.peak_device_bytes(accelerator.device),
            "autograd_saved_bytes_first_step": saved_bytes[0],
            "device": str(accelerator.device),
        },
        "timing": {
            "wall_seconds": wall,
            "train_seconds": sum(h["train_seconds"] for h in history),
            "seconds_per_step": float(np.mean(step_times)) if step_times else None,
            "seconds_per_epoch": float(np.mean([h["train_seconds"] for h in history])),
            "examples_per_second": len(train_items) * epochs / max(sum(step_times), 1e-9),
            "tokens_per_second": tokens / max(sum(step_times), 1e-9),
            "padded_tokens_per_second": padded_tokens / max(sum(step_times), 1e-9),
            "steps": total_steps,
        },
        "checkpoint": prompt_path.name,
        "environment": {"packages": package_versions(), "git_commit": git_commit(), "torch_threads": torch.get_num_threads()},
    }
    write_json(path, result)
    progress.finish_run(f"{label}: test {result['test_mean']:.2f}")
    return path


def _frozen_checksum(backbone: Backbone) -> float:
    return float(sum(p.detach().double().sum() for p in backbone.model.parameters()))


def _plain(config) -> dict:
    from dataclasses import asdict

    return asdict(config)


def run(config: RunConfig, progress: Progress) -> list[Path]:
    """Every seed of every task set of the config."""
    paths = []
    for seed in config.seeds:
        for names in task_sets(config):
            paths.append(train_one(config, names, seed, progress))
    return paths
