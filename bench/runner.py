"""One run = (method, task set, seed): train, select on dev, test, write results.

The data path reads top to bottom: tasks -> examples -> encoded batches ->
method prompts -> backbone loss / generation -> predictions -> metrics ->
results file.
"""
from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as save_tensors
from torch import nn

from bench import memory
from bench.backbone import Backbone, load_backbone
from bench.config import RunConfig, TrainConfig
from bench.data import Collator, Encoded, batches, encode, training_plan
from bench.evaluation import Score, score
from bench.progress import Progress
from bench.registry import UsageError
from bench.results import SCHEMA_VERSION, atomic_write, git_commit, package_versions, run_path, write_json
from methods.base import Method, MethodContext
from methods.library import DEFAULT_ROOT, PromptLibrary, imported_spec
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
    fingerprints: dict[str, str]
    max_new_tokens: dict[str, int]

    def describe(self) -> dict:
        return {
            "source": self.source,
            "sizes": {split: len(examples) for split, examples in self.examples.items()},
            "fingerprints": self.fingerprints,
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
        return self.method.training_loss(self.backbone, batch, self.prompt(batch))

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


def source_length(task: Task, config: RunConfig, multi_task: bool) -> int:
    """Tokens of source kept: the config's, else the task's single- or multi-task default."""
    return config.train.max_source_length or (task.multitask_max_source_length if multi_task else task.max_source_length)


def prepare_task(task: Task, task_id: int, config: RunConfig, source: DataSource, tokenizer, draw: int,
                 multi_task: bool) -> TaskData:
    protocol, train = config.protocol, config.train
    examples = {
        split: load_examples(task, split, source, protocol, config.data_seed, config.k_shot, config.data_seed + draw)
        for split in ("train", *EVAL_SPLITS)
    }
    if train.max_train_examples:
        examples["train"] = examples["train"][: train.max_train_examples]
    if train.max_eval_examples:
        for split in EVAL_SPLITS:
            examples[split] = examples[split][: train.max_eval_examples]
    max_source = source_length(task, config, multi_task)
    max_target = train.max_target_length or task.default_max_target_length(tokenizer)
    prints = {split: fingerprint(ex) for split, ex in examples.items()}
    encoded = {split: encode(ex, tokenizer, max_source, max_target, task_id, prints[split]) for split, ex in examples.items()}
    max_new = {split: max_new_tokens(ex, tokenizer, config) for split, ex in examples.items() if split in EVAL_SPLITS}
    return TaskData(task, task_id, examples, encoded, source.describe(task), prints, max_new)


def max_new_tokens(examples: list[Example], tokenizer, config: RunConfig) -> int:
    """The longest tokenised gold target plus a margin, or the preset's fixed cap."""
    if config.protocol.generation_max_new_tokens:
        return config.protocol.generation_max_new_tokens
    golds = {gold for e in examples for gold in (e.extra.get("answers") or e.extra.get("references") or [e.target])}
    longest = max((len(ids) for ids in tokenizer(sorted(golds)).input_ids), default=1)
    return longest + config.train.generation_margin


def predict(model: PromptedModel, data: TaskData, split: str, config: RunConfig, collator: Collator,
            task_id: int) -> list[str]:
    tokenizer = model.backbone.tokenizer
    predictions = []
    for batch in batches(data.encoded[split], config.train.eval_batch_size, collator):
        batch = {k: v.to(model.backbone.model.device) for k, v in batch.items()}
        batch["task_ids"] = torch.full_like(batch["task_ids"], task_id)
        output = model.generate(batch, data.max_new_tokens[split])
        predictions += tokenizer.batch_decode(output, skip_special_tokens=True)
    return predictions


def evaluate(model: PromptedModel, tasks: list[TaskData], split: str, config: RunConfig, collator: Collator) -> dict[str, Score]:
    """Each task with its own prompt and metrics; or, reproducing the official
    multi-task code, every task with task 0's prompt and task 0's metrics."""
    model.eval()
    model.method.on_evaluation(split)
    own = config.protocol.multitask_own_prompt_eval or len(tasks) == 1
    scores = {}
    for data in tasks:
        predictions = predict(model, data, split, config, collator, data.task_id if own else 0)
        scores[data.task.name] = score(data.task, data.examples[split], predictions,
                                       metric_names=None if own else tasks[0].task.metrics)
    return scores


def mean_over_tasks(scores: dict[str, Score]) -> float:
    return float(np.mean([s.mean for s in scores.values()]))


def build_method(config: RunConfig, backbone: Backbone, task_names: list[str], seed: int, progress: Progress) -> Method:
    spec = METHODS.get(config.method)
    method_config = spec.make_config(config.method_options)
    context = MethodContext(
        d_model=backbone.d_model, embedding=backbone.embedding, tokenizer=backbone.tokenizer,
        task_names=task_names, protocol=config.protocol, seed=seed, backbone_params=backbone.count_parameters(),
        stage=lambda method, tasks, options, epochs=None, source=False: run_stage(config, method, tasks, options, epochs, progress, source),
        backbone=backbone,
    )
    return spec.build(method_config, context)


STAGE_SEED = 0
"""Library entries (source prompts, pre-trained modules) are trained once, with this seed,
whatever the seed of the run that asks for them."""


def stage_config(config: RunConfig, method: str, tasks: list[str], options: dict, epochs: int | None) -> RunConfig:
    stage = copy.deepcopy(config)
    stage.method, stage.tasks, stage.suite, stage.seeds = method, list(tasks), None, [STAGE_SEED]
    stage.method_options = dict(options)
    stage.train.epochs = config.train.source_epochs if epochs is None else epochs
    return stage


def stage_spec(stage: RunConfig, backbone: str) -> dict:
    """Everything that determines a stage's tensors: the library key."""
    source = DataSource.resolve(stage.data_dir, stage.fixtures)
    return {
        "backbone": backbone, "method": stage.method, "tasks": stage.tasks,
        "method_config": asdict(METHODS.get(stage.method).make_config(stage.method_options)),
        "protocol": stage.protocol.as_dict(), "train": asdict(stage.train),
        "data": {"kind": source.kind, "path": source.path}, "data_seed": stage.data_seed, "seed": STAGE_SEED,
        "schema_version": SCHEMA_VERSION,
    }


def run_stage(config: RunConfig, method: str, tasks: list[str], options: dict, epochs: int | None,
              progress: Progress, source: bool = False) -> dict[str, torch.Tensor]:
    """Another method's trained tensors (a source prompt, a pre-trained G, MPT's P*),
    from the library when already trained under the same settings, else trained now.
    `source`: a source prompt, taken from the imported release under `--sources imported`."""
    library = PromptLibrary(config.library or DEFAULT_ROOT)
    backbone = cached_backbone(config.model).name
    if source and config.sources == "imported":
        tensors = library.get(imported_spec(backbone, tasks[0], "attempt-release"))
        if tensors is None:
            raise UsageError(f"no imported source prompt for {tasks[0]!r} on {backbone}; "
                             f"run `bench sources import FILE --task {tasks[0]} --model {backbone}` or use --sources library")
        return tensors
    stage = stage_config(config, method, tasks, options, epochs)
    spec = stage_spec(stage, backbone)
    tensors = library.get(spec)
    if tensors is None:
        stage.output = str(library.folder(spec))
        state = {}
        path = train_one(stage, list(tasks), STAGE_SEED, progress, keep_state=state)
        result = json.loads(path.read_text())
        library.put(spec, state["tensors"], {"results": str(path), "test": result["test"], "dev": result["dev"]})
        tensors = library.get(spec)  # as every later hit gets them: on the CPU, from the stored file
    return tensors


def task_sets(config: RunConfig) -> list[list[str]]:
    if METHODS.get(config.method).cls.multi_task:
        return [list(config.tasks)]
    return [[name] for name in config.tasks]


@dataclass
class Meter:
    """Time, throughput and memory of the training steps."""

    step_seconds: list[float] = field(default_factory=list)
    examples: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    saved_bytes: list[int] = field(default_factory=lambda: [0])
    peak_scope: str = "process"

    def step(self, batch: dict, seconds: float) -> None:
        self.step_seconds.append(seconds)
        self.examples += len(batch["input_ids"])
        self.tokens += int(batch["attention_mask"].sum())
        self.padded_tokens += batch["attention_mask"].numel()

    def timing(self, history: list[dict], wall: float) -> dict:
        busy = max(sum(self.step_seconds), 1e-9)
        return {
            "wall_seconds": wall,
            "train_seconds": sum(h["train_seconds"] for h in history),
            "seconds_per_step": float(np.mean(self.step_seconds)) if self.step_seconds else None,
            "seconds_per_epoch": float(np.mean([h["train_seconds"] for h in history])),
            "examples_per_second": self.examples / busy,
            "tokens_per_second": self.tokens / busy,
            "padded_tokens_per_second": self.padded_tokens / busy,
            "steps": len(self.step_seconds),
        }

    def memory(self, device: torch.device) -> dict:
        return {
            "peak_rss_bytes": memory.peak_rss_bytes(),
            "peak_rss_scope": self.peak_scope,
            "peak_device_bytes": memory.peak_device_bytes(device),
            "autograd_saved_bytes_first_step": self.saved_bytes[0],
            "device": str(device),
        }


def resolve_schedule(train: TrainConfig, task: Task, num_train: int) -> dict:
    """The config's epochs and batch, or where it says 0 the (first) task's defaults."""
    return {
        "epochs": train.epochs or task.default_epochs(num_train),
        "batch_size": train.batch_size or task.batch_size,
        "grad_accum": train.grad_accum or task.grad_accum,
    }


def make_optimizer(method: Method, train: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with one parameter group (own lr and weight decay) per group the method declares."""
    return torch.optim.AdamW(
        [{"params": g.params, "lr": g.lr, "weight_decay": g.weight_decay, "name": g.name} for g in method.param_groups()],
        betas=tuple(train.adam_betas), eps=train.adam_eps,
    )


def shard(plan: list, accelerator) -> list:
    """This process's share of an epoch's batches (every process builds the same seeded plan).

    Processes must take equal counts or they wait on each other forever: the
    remainder is dropped, and a plan shorter than the process count is run by all.
    """
    processes = accelerator.num_processes
    if len(plan) < processes:
        return plan
    return plan[accelerator.process_index : len(plan) - len(plan) % processes : processes]


def train_epoch(model, batches_of_items, collator: Collator, accelerator, optimizer, scheduler, train: TrainConfig,
                meter: Meter, progress: Progress, status: str, first: bool) -> list[float]:
    """One pass over the epoch's batches: forward, backward, clip, step; returns the losses."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    losses = []
    model.train()
    for step, items in enumerate(batches_of_items):
        batch = {k: v.to(accelerator.device) for k, v in collator(items).items()}
        started = time.perf_counter()
        with accelerator.accumulate(model):
            if first and step == 0:
                with memory.saved_tensor_bytes(meter.saved_bytes):
                    loss = model(batch)
            else:
                loss = model(batch)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(params, train.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        meter.step(batch, time.perf_counter() - started)
        losses.append(loss.item())
        progress.advance(f"{status} loss {np.mean(losses):.3f}")
    return losses


def train_one(config: RunConfig, task_names: list[str], seed: int, progress: Progress, keep_state: dict | None = None,
              draw: int = 0) -> Path:
    """Train one (method, task set, seed), select on dev, test, and write its results file.

    `keep_state`, when given, receives the best checkpoint's tensors under "tensors".
    """
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup

    started = time.perf_counter()
    seed_everything(seed)
    backbone = cached_backbone(config.model)
    tokenizer = backbone.tokenizer
    source = DataSource.resolve(config.data_dir, config.fixtures)
    multi_task = len(task_names) > 1
    tasks = [prepare_task(TASKS.get(name), i, config, source, tokenizer, draw, multi_task) for i, name in enumerate(task_names)]
    method = build_method(config, backbone, task_names, seed, progress)
    seed_everything(seed)  # building may have trained library stages: start training from the seed

    per_task = [data.encoded["train"] for data in tasks]
    schedule = resolve_schedule(config.train, tasks[0].task, sum(len(items) for items in per_task))
    epochs, batch_size = schedule["epochs"], schedule["batch_size"]
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), gradient_accumulation_steps=schedule["grad_accum"])
    shuffle = torch.Generator().manual_seed(seed)
    plan = training_plan(per_task, batch_size, shuffle, method.mixing)
    optimizer = make_optimizer(method, config.train)
    total_steps = -(-len(plan) // schedule["grad_accum"]) * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, config.train.warmup_steps, total_steps)
    model, optimizer, scheduler = accelerator.prepare(PromptedModel(backbone, method), optimizer, scheduler)
    unwrapped: PromptedModel = accelerator.unwrap_model(model)
    max_source = max(source_length(t.task, config, multi_task) for t in tasks)
    collator = Collator(tokenizer.pad_token_id, max_source if config.protocol.pad_to_max_length else None)
    frozen_before = _frozen_checksum(backbone)

    meter, history, best, best_state = Meter(peak_scope=memory.reset_peaks(accelerator.device)), [], None, None
    label = f"{config.method} · {'+'.join(task_names)} · seed {seed}" + (f" · k={config.k_shot} draw {draw}" if config.k_shot else "")
    progress.start_run(label, epochs * len(shard(plan, accelerator)))
    for epoch in range(1, epochs + 1):
        if epoch > 1:
            plan = training_plan(per_task, batch_size, shuffle, method.mixing)
        epoch_start = time.perf_counter()
        losses = train_epoch(model, shard(plan, accelerator), collator, accelerator, optimizer, scheduler, config.train,
                             meter, progress, f"epoch {epoch}/{epochs}", first=epoch == 1)
        train_seconds = time.perf_counter() - epoch_start
        dev = evaluate(unwrapped, tasks, "validation", config, collator)
        history.append({
            "epoch": epoch, "train_loss": float(np.mean(losses)), "train_seconds": train_seconds,
            "dev": {name: s.as_dict() for name, s in dev.items()}, "dev_mean": mean_over_tasks(dev),
        })
        if best is None or history[-1]["dev_mean"] > best["dev_mean"]:
            best, best_state = history[-1], copy.deepcopy(unwrapped.method.state_dict())
        progress.note(f"epoch {epoch}: dev {history[-1]['dev_mean']:.2f} (best {best['dev_mean']:.2f} @ {best['epoch']})")

    unwrapped.method.load_state_dict(best_state)
    if keep_state is not None:
        keep_state["tensors"] = {k: v.detach().clone() for k, v in best_state.items()}
    test = evaluate(unwrapped, tasks, "test", config, collator)
    if _frozen_checksum(backbone) != frozen_before:
        raise RuntimeError("the frozen backbone changed during training")
    path = run_path(Path(config.output), config.method, task_names, seed, config.k_shot, draw)
    if accelerator.is_main_process:
        result = {
            "schema_version": SCHEMA_VERSION,
            "run": {"method": config.method, "tasks": task_names, "suite": config.suite, "seed": seed,
                    "preset": config.preset, "profile": config.profile, "backbone": backbone.name,
                    "k_shot": config.k_shot, "draw": draw},
            "config": config.as_dict(),
            "schedule": schedule,
            "method_config": asdict(unwrapped.method.config),
            "data": {d.task.name: d.describe() for d in tasks},
            "epochs": history,
            "best_epoch": best["epoch"],
            "dev": best["dev"],
            "test": {name: s.as_dict() for name, s in test.items()},
            "test_mean": mean_over_tasks(test),
            "params": unwrapped.method.param_counts().as_dict(),
            "method_report": unwrapped.method.report(),
            "memory": meter.memory(accelerator.device),
            "timing": meter.timing(history, time.perf_counter() - started),
            **write_checkpoints(unwrapped.method, path),
            "environment": {"packages": package_versions(), "git_commit": git_commit(),
                            "torch_threads": torch.get_num_threads(), "processes": accelerator.num_processes},
        }
        write_json(path, result)
        progress.finish_run(f"{label}: test {result['test_mean']:.2f}")
    accelerator.wait_for_everyone()
    return path


def write_checkpoints(method: Method, path: Path) -> dict:
    """The method's own tensors (and its inference exports) beside the results file."""
    method.save(path.with_suffix(".safetensors"))
    exported = method.export()
    if exported:
        tensors = {k: v.detach().contiguous().cpu() for k, v in exported.items()}
        atomic_write(path.with_suffix(".export.safetensors"), save_tensors(tensors))
    return {"checkpoint": path.with_suffix(".safetensors").name,
            "export": path.with_suffix(".export.safetensors").name if exported else None}


def _frozen_checksum(backbone: Backbone) -> float:
    return float(sum(p.detach().double().sum() for p in backbone.model.parameters()))


def run(config: RunConfig, progress: Progress, resume: bool = False) -> list[Path]:
    """Every seed of every task set of the config (with `resume`, skipping finished ones)."""
    paths = []
    for draw in range(config.k_shot_draws if config.k_shot else 1):
        for seed in config.seeds:
            for names in task_sets(config):
                path = run_path(Path(config.output), config.method, names, seed, config.k_shot, draw)
                if resume and finished(path, config):
                    progress.note(f"{path}: already done, skipped")
                else:
                    path = train_one(config, names, seed, progress, draw=draw)
                paths.append(path)
    return paths


def finished(path: Path, config: RunConfig) -> bool:
    """A results file that records exactly this config (written atomically, so never partial)."""
    if not path.is_file():
        return False
    recorded = json.loads(path.read_text()).get("config")
    return recorded == json.loads(json.dumps(config.as_dict()))
