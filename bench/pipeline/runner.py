"""One run = (method, task set, seed, few-shot draw): train, select on dev, test, write results;
and the grid of runs a config asks for.

The data path reads top to bottom: tasks -> examples -> encoded batches ->
method prompts -> backbone loss / generation -> predictions -> metrics ->
results file. The training loop's parts are in bench/pipeline/training.py, library
stages in bench/pipeline/stages.py, and what makes two runs the same in bench/core/identity.py.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import save as save_tensors
from torch import nn

from bench.backbones.catalog import backbone_name, resolve_pair_encoding
from bench.backbones.model import FrozenModel, load_backbone
from bench.core import memory, precision
from bench.core.config import RunConfig, TrainConfig
from bench.core.identity import result_path, run_identity
from bench.core.progress import Progress
from bench.core.registry import UsageError
from bench.core.results import (SCHEMA_VERSION, atomic_write, git_commit, package_versions, read_json, results_problem,
                                write_json)
from bench.pipeline.checkpoint import checkpoint_path, load_checkpoint, remove_stale_writes, save_checkpoint
from bench.pipeline.data import Collator, Encoded, batches, by_length, encode, training_plan
from bench.pipeline.evaluation import Score, floor_baseline, majority_baseline, score
from bench.pipeline.grid import Unit, units_of
from bench.pipeline.locks import unit_lock
from bench.pipeline.stages import StageRequest, run_stage
from bench.pipeline.trackers import RunLog, accelerator_options, hyperparameters
from bench.pipeline.training import (Meter, make_optimizer, make_scheduler, optimizer_record, optimizer_steps,
                                     seed_everything, seed_process_epoch, shard, train_epoch)
from methods.base import Method, MethodContext, Mixing, pairs_of
from methods.registry import METHODS
from tasks.base import Example, Task
from tasks.loading import SPLITS, DataSource, fingerprint, load_examples
from tasks.registry import TASKS

EVAL_SPLITS = ("validation", "test")


@lru_cache(maxsize=32)
def cached_examples(task: str, split: str, source: DataSource, protocol, data_seed: int, k_shot: int = 0,
                    shot_seed: int = 0) -> tuple[Example, ...]:
    """A split's examples, loaded once per process: library stages and runs share them."""
    return tuple(load_examples(TASKS.get(task), split, source, protocol, data_seed, k_shot, shot_seed))


@lru_cache(maxsize=32)
def cached_fingerprint(*split) -> str:
    return fingerprint(cached_examples(*split))


@dataclass
class TaskData:
    """One task of a run: its examples (after few-shot draw and caps), their fingerprints,
    and the identity of its data (source and the content of the full splits)."""

    task: Task
    task_id: int
    examples: dict[str, list[Example]]
    fingerprints: dict[str, str]
    source: dict
    identity: dict

    def describe(self) -> dict:
        return {
            "source": self.source,
            "sizes": {split: len(examples) for split, examples in self.examples.items()},
            "fingerprints": self.fingerprints,
        }


def load_task(name: str, task_id: int, config: RunConfig, source: DataSource, draw: int) -> TaskData:
    """The examples a run uses: train (few-shot draw `draw` when k-shot), dev and test, with the caps."""
    protocol, train = config.protocol, config.train
    base = {split: (name, split, source, protocol, config.data_seed) for split in SPLITS}
    fewshot_dev = bool(config.k_shot) and protocol.fewshot_dev_from_train
    drawn = ("train", "validation") if fewshot_dev else ("train",)  # the splits each few-shot draw draws anew
    # the identity holds the full splits (with the few-shot dev, draw 0's dev and the whole test split)
    full = {split: (*key, config.k_shot, config.data_seed) if fewshot_dev and split in EVAL_SPLITS else key
            for split, key in base.items()}
    examples = {split: list(cached_examples(*key)) for split, key in full.items()}
    for split in drawn if config.k_shot else ():
        examples[split] = list(cached_examples(*base[split], config.k_shot, config.data_seed + draw))
    if train.max_train_examples:
        examples["train"] = examples["train"][: train.max_train_examples]
    if train.max_eval_examples:
        for split in EVAL_SPLITS:
            examples[split] = examples[split][: train.max_eval_examples]
    if train.max_dev_examples:
        examples["validation"] = examples["validation"][: train.max_dev_examples]
    described = source.describe(TASKS.get(name))
    identity = {"source": {k: v for k, v in described.items() if k != "path" or source.kind == "hub"},
                "fingerprints": {split: cached_fingerprint(*key) for split, key in full.items()}}
    prints = {split: fingerprint(ex) for split, ex in examples.items()}
    return TaskData(TASKS.get(name), task_id, examples, prints, described, identity)


@dataclass
class PreparedRun:
    """A run before training: its data, identity and results path (enough to skip it on --resume)."""

    config: RunConfig
    tasks: list[TaskData]
    identity: dict
    draw: int

    def path(self, seed: int) -> Path:
        return result_path(Path(self.config.output), self.identity, seed, self.draw)

    def label(self, seed: int) -> str:
        """The run as the log names it: `pt · rte · seed 0`, with the draw where few-shot."""
        config = self.config
        return (f"{config.method} · {'+'.join(self.identity['tasks'])} · seed {seed}"
                + (f" · k={config.k_shot} draw {self.draw}" if config.k_shot else ""))


def prepare_run(config: RunConfig, task_names: list[str], draw: int = 0) -> PreparedRun:
    """The run's data and identity. Its identity holds the pair encoding resolved for its own tasks
    (`resolve_pair_encoding`; the config keeps what was asked, e.g. `auto`, so that the library
    stages it asks for resolve it for theirs)."""
    source = DataSource.resolve(config.data_dir, config.fixtures)
    tasks = [load_task(name, i, config, source, draw) for i, name in enumerate(task_names)]
    method_config = asdict(METHODS.get(config.method).make_config(config.method_options))
    identity = run_identity(config, task_names, method_config, backbone_name(config.model),
                            {t.task.name: t.identity for t in tasks})
    identity["train"]["pair_encoding"] = resolve_pair_encoding(config.model, config.train.pair_encoding, task_names)
    return PreparedRun(config, tasks, identity, draw)


class PromptedModel(nn.Module):
    """Method + frozen backbone (with the run's heads, for encoders): what the optimiser and
    accelerate see."""

    def __init__(self, backbone, method: Method):
        super().__init__()
        self.backbone = backbone
        self.method = method

    def prompt(self, batch):
        embeds = self.backbone.embedding(batch["input_ids"])
        return self.method.prompts(embeds, batch["attention_mask"], batch["task_ids"])

    def forward(self, batch):
        return self.method.training_loss(self.backbone, batch, self.prompt(batch))

    @torch.no_grad()
    def predict(self, batch, max_new_tokens: int) -> list[str]:
        return self.backbone.predict(batch["input_ids"], batch["attention_mask"], batch["task_ids"], self.prompt(batch),
                                     max_new_tokens, **pairs_of(batch))

    @torch.no_grad()
    def rank(self, batch, labels: tuple[str, ...]) -> list[str]:
        return self.backbone.rank(batch["input_ids"], batch["attention_mask"], self.prompt(batch), labels)

    def param_groups(self, train: TrainConfig) -> list:
        """The method's groups and the backbone's (an encoder's heads)."""
        return self.method.param_groups() + self.backbone.param_groups(train)

    def trained_state(self) -> dict[str, torch.Tensor]:
        """Everything this run trains: the method's tensors and the heads (`head.*`), never the backbone's."""
        return {**self.method.state_dict(), **self.backbone.head_state()}

    def load_trained_state(self, state: dict[str, torch.Tensor]) -> None:
        heads = {k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")}
        self.method.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")})
        if heads:
            self.backbone.heads.load_state_dict(heads)

    def param_counts(self) -> dict:
        """The method's accounting plus the heads, which each task adds (`head`: per task, on average
        where tasks have different label counts)."""
        counts = self.method.param_counts()
        return counts.with_head(self.backbone.head_numel() // counts.num_tasks).as_dict()


_BACKBONES: dict[str, FrozenModel] = {}


def cached_backbone(name: str) -> FrozenModel:
    """Backbones are frozen, so one copy serves every run of a process."""
    if name not in _BACKBONES:
        _BACKBONES[name] = load_backbone(name)
    return _BACKBONES[name]


def source_length(task: Task, config: RunConfig, multi_task: bool, backbone=None, prompt_length: int = 0) -> int:
    """Tokens of source kept: the config's, else the task's single- or multi-task default, within
    what the backbone's positions leave next to the prompt (encoders)."""
    length = config.train.max_source_length or (task.multitask_max_source_length if multi_task else task.max_source_length)
    return backbone.max_source_length(length, prompt_length) if backbone is not None else length


@dataclass
class EncodedTask:
    """A task's splits as token ids, and the greedy-decoding budget of each evaluation split."""

    items: dict[str, list[Encoded]]
    max_new_tokens: dict[str, int]


def encode_task(data: TaskData, config: RunConfig, backbone, max_source: int,
                evaluated: tuple[str, ...] = EVAL_SPLITS, two_tower: bool = False) -> EncodedTask:
    """Train and the `evaluated` splits: a split not evaluated is not tokenised either (its
    targets would otherwise size the generation budget). `two_tower`: a pair task's texts apart."""
    tokenizer = backbone.tokenizer
    max_target = config.train.max_target_length or data.task.default_max_target_length(tokenizer)
    items = {split: encode(examples, tokenizer, max_source, max_target, data.task_id, data.fingerprints[split],
                           backbone.label_of(data.task_id), two_tower)
             for split, examples in data.examples.items() if split == "train" or split in evaluated}
    budget = {split: max_new_tokens(data.examples[split], tokenizer, config) for split in evaluated} if backbone.generates else {}
    return EncodedTask(items, budget)


def max_new_tokens(examples: list[Example], tokenizer, config: RunConfig) -> int:
    """The longest tokenised gold target plus a margin, or the preset's fixed cap."""
    if config.protocol.generation_max_new_tokens:
        return config.protocol.generation_max_new_tokens
    golds = {gold for e in examples for gold in (e.extra.get("answers") or e.extra.get("references") or [e.target])}
    longest = max((len(ids) for ids in tokenizer(sorted(golds)).input_ids), default=1)
    return longest + config.train.generation_margin


def predict(model: PromptedModel, items: list[Encoded], max_new: int, config: RunConfig, collator: Collator,
            task_id: int, progress: Progress, labels: tuple[str, ...] | None = None) -> list[str]:
    """Predictions in the split's order, computed longest input first (padding differs, not the
    result: every position a batch pads is masked). Generated, or with `--eval-mode rank` and a
    label set on a generating backbone, ranked (`Backbone.rank`)."""
    ranked = config.train.eval_mode == "rank" and labels and model.backbone.generates
    order, predicted = by_length(items), []
    for batch in batches([items[i] for i in order], config.train.eval_batch_size, collator):
        batch = {k: v.to(model.backbone.model.device) for k, v in batch.items()}
        batch["task_ids"] = torch.full_like(batch["task_ids"], task_id)
        with precision.autocast(config.train.precision, model.backbone.model.device):
            predicted += model.rank(batch, labels) if ranked else model.predict(batch, max_new)
        progress.advance_evaluation()
    predictions = [None] * len(items)
    for index, prediction in zip(order, predicted):
        predictions[index] = prediction
    return predictions


def evaluate(model: PromptedModel, tasks: list[TaskData], encoded: list[EncodedTask], split: str, config: RunConfig,
             collator: Collator, progress: Progress) -> dict[str, Score]:
    """Each task with its own prompt and metrics; or, where the method reproduces the official
    ATTEMPT-m evaluation, every task with the first task's prompt and metrics."""
    model.eval()
    model.method.on_evaluation(split)
    first = model.method.evaluates_as_first_task
    size = config.train.eval_batch_size
    progress.start_evaluation(split, sum(-(-len(e.items[split]) // size) for e in encoded))
    scores = {}
    for data, task in zip(tasks, encoded):
        predictions = predict(model, task.items[split], task.max_new_tokens.get(split, 0), config, collator,
                              0 if first else data.task_id, progress, data.task.labels)
        scores[data.task.name] = score(data.task, data.examples[split], predictions, config.protocol,
                                       metric_names=tasks[0].task.metrics if first else None)
    progress.finish_evaluation()
    return scores


def mean_over_tasks(scores: dict[str, Score]) -> float:
    return float(np.mean([s.mean for s in scores.values()]))


def test_line(scores: dict[str, Score]) -> str:
    """A finished run's test scores as the board shows them, each metric named (a board cell is
    one metric; `test_mean`, the mean of every task's metrics, is named as such where it differs)."""
    line = "test " + "; ".join(f"{name} " + ", ".join(f"{metric} {value:.2f}" for metric, value in s.metrics.items())
                               for name, s in scores.items())
    single = len(scores) == 1 and len(next(iter(scores.values())).metrics) == 1
    return line if single else f"{line} (mean {mean_over_tasks(scores):.2f})"


def stage_tensors(config: RunConfig, request: StageRequest, draw: int, progress: Progress,
                  resume: bool = False, used: list | None = None) -> dict[str, torch.Tensor]:
    """A library stage for a run of `config` (few-shot draw `draw`): fetched, or trained here
    (with `resume`, from the stage's own epoch checkpoint where a killed run left one); `used`
    receives where it came from (bench/pipeline/stages.py `run_stage`)."""
    def data_of(stage: RunConfig, stage_draw: int) -> dict:
        """The examples the stage trains and selects on (its few-shot draw and caps applied)."""
        prepared = prepare_run(stage, stage.tasks, stage_draw)
        return {t.task.name: {"source": t.identity["source"], "fingerprints": t.fingerprints} for t in prepared.tasks}

    def train(*args, **kwargs):
        return train_one(*args, **kwargs, resume=resume)

    return run_stage(config, request, draw, backbone_name(config.model), data_of, train, progress, used)


def build_method(config: RunConfig, backbone: FrozenModel, task_names: list[str], seed: int, draw: int,
                 progress: Progress, resume: bool = False, used: list | None = None) -> Method:
    spec = METHODS.get(config.method)
    context = MethodContext(
        d_model=backbone.d_model, embedding=backbone.embedding, tokenizer=backbone.tokenizer,
        task_names=task_names, protocol=config.protocol, seed=seed, backbone_params=backbone.count_parameters(),
        stage=lambda method, tasks, options, **request: stage_tensors(
            config, StageRequest(method, tuple(tasks), dict(options), **request), draw, progress, resume, used),
    )
    return spec.build(spec.make_config(config.method_options), context)


def default_epochs(rule: str, task: Task, num_train: int) -> int:
    """Epochs where the config says 0: the task's default, or ATTEMPT's schedule for SPoT-t's task
    embedding (methods.md: 5 epochs over 10k training examples, 20 under)."""
    if rule == "task-embedding":
        return 20 if num_train < 10_000 else 5
    return task.default_epochs(num_train)


def resolve_schedule(train: TrainConfig, task: Task, num_train: int) -> dict:
    """The config's epochs and batch, or where it says 0 the (first) task's defaults."""
    return {
        "epochs": train.epochs or default_epochs(train.epoch_rule, task, num_train),
        "batch_size": train.batch_size or task.batch_size,
        "grad_accum": train.grad_accum or task.grad_accum,
    }


def capped(mixing: Mixing, epoch_cap: int) -> Mixing:
    """The method's mixing with the run's `epoch_cap` where that is tighter (0: no cap)."""
    caps = [cap for cap in (mixing.cap, epoch_cap) if cap]
    return replace(mixing, cap=min(caps)) if caps else mixing


def train_one(config: RunConfig, task_names: list[str], seed: int, progress: Progress, keep_state: dict | None = None,
              draw: int = 0, resume: bool = False) -> Path:
    """Train one (method, task set, seed, draw), select on dev, test, and write its results file.

    `keep_state`, when given, receives the best checkpoint's tensors under "tensors"."""
    return train_prepared(prepare_run(config, task_names, draw), seed, progress, keep_state, resume=resume)


def train_prepared(prepared: PreparedRun, seed: int, progress: Progress, keep_state: dict | None = None,
                   on_epoch: Callable[[int, float], None] | None = None, resume: bool = False,
                   log_with: str | None = None, evaluate_test: bool = True) -> Path:
    """`on_epoch(epoch, dev_mean)` after each dev evaluation: a sweep reports to its study there,
    and may stop the run by raising (optuna's TrialPruned). With `resume`, a run that was
    killed goes on from its last epoch checkpoint (bench/pipeline/checkpoint.py), as do its stages.
    `log_with`: the experiment tracker the run (not its stages) logs to (bench/pipeline/trackers.py).
    Without `evaluate_test` (a sweep's trials) the test split is neither tokenised nor scored,
    and the results file says so: `test_evaluated` false, `test` and `predictions` empty,
    `test_mean` null, no baselines (they are scored on test)."""
    from accelerate import Accelerator

    config, tasks, task_names, draw = prepared.config, prepared.tasks, prepared.identity["tasks"], prepared.draw
    started = time.perf_counter()
    path = prepared.path(seed)
    checkpoint = checkpoint_path(path)
    if resume:
        remove_stale_writes(path)
    precision.use(config.train.precision)
    seed_everything(seed)
    frozen = cached_backbone(config.model)
    two_tower = prepared.identity["train"]["pair_encoding"] == "two_tower"
    backbone = frozen.for_tasks([t.task for t in tasks], seed, config.train.head_pooling,  # with heads, for encoders
                                [[e.target for e in t.examples["train"]] for t in tasks], two_tower)
    multi_task = len(tasks) > 1
    prompt_length = prepared.identity["method_config"].get("prompt_length", 0)
    lengths = [source_length(t.task, config, multi_task, backbone, prompt_length) for t in tasks]
    evaluated = EVAL_SPLITS if evaluate_test else ("validation",)
    encoded = [encode_task(data, config, backbone, length, evaluated, two_tower) for data, length in zip(tasks, lengths)]
    stages: list[dict] = []
    method = build_method(config, frozen, task_names, seed, draw, progress, resume, stages)
    seed_everything(seed)  # building may have trained library stages: start training from the seed

    per_task = [e.items["train"] for e in encoded]
    schedule = resolve_schedule(config.train, tasks[0].task, sum(len(items) for items in per_task))
    epochs, accumulation = schedule["epochs"], schedule["grad_accum"]
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), **accelerator_options(log_with, config.output))
    shuffle = torch.Generator().manual_seed(seed)
    mixing = capped(method.mixing, config.train.epoch_cap)
    plans = [shard(training_plan(per_task, schedule["batch_size"], shuffle, mixing, config.train.group_by_length),
                   accelerator.num_processes, accelerator.process_index) for _ in range(epochs)]
    prompted = PromptedModel(backbone, method)
    groups = prompted.param_groups(config.train)
    if not groups:
        raise UsageError(f"method {config.method!r} trains nothing on {frozen.name}: it trains an encoder's task "
                         f"heads only (T5 generates its targets); use an encoder, e.g. --model minilm")
    optimizer = make_optimizer(groups, config.train)
    meter = Meter()
    meter.watch(optimizer)
    scheduled_steps = optimizer_steps(plans, accumulation)
    scheduler = make_scheduler(optimizer, config.train.warmup_steps, scheduled_steps)
    model, optimizer = accelerator.prepare(prompted, optimizer)
    unwrapped: PromptedModel = accelerator.unwrap_model(model)
    collator = Collator(backbone.tokenizer.pad_token_id, max(lengths) if config.protocol.pad_to_max_length else None,
                        scalar_labels=not backbone.generates)
    frozen_before = _frozen_checksum(backbone)

    meter.peak_scope = memory.reset_peaks(accelerator.device)
    history, best, best_state, done, elapsed = [], None, None, 0, 0.0
    saved = load_checkpoint(checkpoint) if resume else None  # restores the random generators too
    if saved is not None:
        unwrapped.load_trained_state(saved["state"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        meter.restore(saved["meter"])
        unwrapped.method.restore_training_record(saved["method_record"])
        history, best_state, done, elapsed = saved["history"], saved["best_state"], saved["epoch"], saved["elapsed"]
        best = history[saved["best_epoch"] - 1]
    patience = config.train.early_stopping_patience
    label = prepared.label(seed)
    log = RunLog.start(accelerator, meter, path.relative_to(config.output), hyperparameters(
        {"seed": seed, "draw": draw, "configuration": path.parent.name}, config.as_dict())) if log_with else None
    progress.start_run(label, sum(len(plan) for plan in plans), done=sum(len(plan) for plan in plans[:done]))
    if done:
        progress.note(f"{label}: resumed after epoch {done}")
    for epoch, plan in enumerate(plans[done:], done + 1):
        epoch_start, first_step = time.perf_counter(), len(meter.grad_norms)
        seed_process_epoch(seed, epoch, accelerator.process_index)
        losses = train_epoch(model, plan, collator, accelerator, optimizer, scheduler, config.train, accumulation,
                             meter, progress, f"epoch {epoch}/{epochs}", first=epoch == 1,
                             on_step=log.optimizer_step if log else None)
        train_seconds = time.perf_counter() - epoch_start
        dev = evaluate(unwrapped, tasks, encoded, "validation", config, collator, progress)
        history.append({
            "epoch": epoch, "train_loss": float(np.mean(losses)), "train_seconds": train_seconds,
            **meter.epoch_record(first_step),
            "dev": {name: s.as_dict() for name, s in dev.items()}, "dev_mean": mean_over_tasks(dev),
        })
        if log:
            log.epoch(history[-1])
        if best is None or history[-1]["dev_mean"] > best["dev_mean"]:
            best, best_state = history[-1], copy.deepcopy(unwrapped.trained_state())
        progress.note(f"epoch {epoch}: dev {history[-1]['dev_mean']:.2f} (best {best['dev_mean']:.2f} @ {best['epoch']})")
        if on_epoch is not None:
            on_epoch(epoch, history[-1]["dev_mean"])
        if patience and epoch - best["epoch"] >= patience:
            progress.note(f"early stop: no better dev score for {patience} epochs")
            break
        if accelerator.is_main_process:
            save_checkpoint(checkpoint, {
                "epoch": epoch, "history": history, "best_epoch": best["epoch"], "best_state": best_state,
                "state": unwrapped.trained_state(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "meter": meter.state(),
                "method_record": unwrapped.method.training_record(), "elapsed": elapsed + time.perf_counter() - started,
            })

    unwrapped.load_trained_state(best_state)
    if keep_state is not None:
        keep_state["tensors"] = {k: v.detach().clone() for k, v in best_state.items()}
    test = evaluate(unwrapped, tasks, encoded, "test", config, collator, progress) if evaluate_test else {}
    if _frozen_checksum(backbone) != frozen_before:
        raise RuntimeError("the frozen backbone changed during training")
    if accelerator.is_main_process:
        result = {
            "schema_version": SCHEMA_VERSION,
            "run": {"method": config.method, "tasks": task_names, "suite": config.suite, "seed": seed,
                    "preset": config.preset, "profile": config.profile, "backbone": backbone.name,
                    "k_shot": config.k_shot, "draw": draw, "configuration": path.parent.name},
            "identity": prepared.identity,
            "config": config.as_dict(),
            "schedule": {**schedule, "epochs_run": len(history), "early_stopping_patience": patience},
            "method_config": asdict(unwrapped.method.config),
            "data": {d.task.name: {**d.describe(), "max_source_tokens": length, **({"max_new_tokens": e.max_new_tokens} if e.max_new_tokens else {})}
                     for d, e, length in zip(tasks, encoded, lengths)},
            "epochs": history,
            "best_epoch": best["epoch"],
            "dev": best["dev"],
            "test_evaluated": evaluate_test,
            "test": {name: s.as_dict() for name, s in test.items()},
            "test_mean": mean_over_tasks(test) if evaluate_test else None,
            "predictions": {name: list(s.predictions) for name, s in test.items()},
            "baselines": {"majority": {d.task.name: baseline.as_dict() for d in tasks if (baseline := majority_baseline(
                d.task, d.examples["train"], d.examples["test"], config.protocol))},
                          "floor": {d.task.name: floor for d in tasks
                                    if (floor := floor_baseline(d.task, d.examples["test"], config.protocol))}}
            if evaluate_test else {},
            "params": unwrapped.param_counts(),
            "optimizer": optimizer_record(optimizer, scheduler, meter, config.train.warmup_steps, scheduled_steps),
            "method_report": unwrapped.method.report(),
            "stages": stages,
            "memory": meter.memory(accelerator.device),
            "timing": meter.timing(history, elapsed + time.perf_counter() - started),
            **write_checkpoints(unwrapped, path),
            "environment": {"packages": package_versions(), "git_commit": git_commit(),
                            "torch_threads": torch.get_num_threads(), "processes": accelerator.num_processes},
        }
        write_json(path, result)
        checkpoint.unlink(missing_ok=True)
        progress.finish_run(f"{label}: {test_line(test)}" if evaluate_test
                            else f"{label}: best dev {best['dev_mean']:.2f} (test not evaluated)")
    if log:
        if evaluate_test:
            log.test({name: s.as_dict() for name, s in test.items()}, mean_over_tasks(test))
        log.end()
    accelerator.wait_for_everyone()
    return path


def write_checkpoints(model: PromptedModel, path: Path) -> dict:
    """What the run trained (method tensors and heads), and the method's inference exports,
    beside the results file."""
    save = lambda file, tensors: atomic_write(file, save_tensors({k: v.detach().contiguous().cpu() for k, v in tensors.items()}))
    save(path.with_suffix(".safetensors"), model.trained_state())
    exported = model.method.export()
    if exported:
        save(path.with_suffix(".export.safetensors"), exported)
    return {"checkpoint": path.with_suffix(".safetensors").name,
            "export": path.with_suffix(".export.safetensors").name if exported else None}


def _frozen_checksum(backbone: FrozenModel) -> float:
    return float(sum(p.detach().double().sum() for p in backbone.model.parameters()))


def grid(config: RunConfig) -> list[Unit]:
    """Every seed of every task set of the config, for each few-shot draw."""
    return units_of(config, METHODS.get(config.method).multi_task)


def run(config: RunConfig, progress: Progress, resume: bool = False, units: list[Unit] | None = None,
        expected_data: dict | None = None, on_epoch: Callable[[int, float], None] | None = None,
        evaluate_test: bool = True) -> list[Path]:
    """Train the config's grid (or `units`); see `run_grid`.

    `expected_data`: the data identity a rerun must find (from the results file it reruns)."""
    return run_grid([(config, unit) for unit in units or grid(config)], progress, resume, expected_data, on_epoch,
                    evaluate_test=evaluate_test)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in a grid, saying how far it got: `finished` of its `total` runs have their results."""

    def __init__(self, finished: int, total: int):
        super().__init__(f"{finished} of {total} runs finished")
        self.finished, self.total = finished, total


def run_grid(plan: list[tuple[RunConfig, Unit]], progress: Progress, resume: bool = False,
             expected_data: dict | None = None, on_epoch: Callable[[int, float], None] | None = None,
             log_with: str | None = None, evaluate_test: bool = True, overwrite: bool = False) -> list[Path]:
    """Train every (config, unit) of the plan in order; the paths of the results it ends with.

    Results the folder holds when it starts are refused before any run trains (`UsageError`),
    unless `resume` (they are skipped, and a run that was killed goes on from its last epoch
    checkpoint, so a grid killed at any moment and run again with `--resume` ends with the results
    an uninterrupted grid gives) or `overwrite` (they are trained again). Each run trains under its
    lock (bench/pipeline/locks.py): one that another process is training is skipped and said
    (its path is not returned), and one whose results another process wrote since the start is
    skipped as done. Ctrl-C raises `Interrupted`.
    `log_with`: the experiment tracker each run logs to (bench/pipeline/trackers.py);
    `evaluate_test`: false for a sweep's trials (see `train_prepared`)."""
    runs = [(prepare_run(config, list(unit.tasks), unit.draw), unit.seed) for config, unit in plan]
    if expected_data is not None:
        for prepared, _ in runs:
            check_same_data(prepared.identity["data"], expected_data)
    paths = [prepared.path(seed) for prepared, seed in runs]
    finished = [path for path in paths if path.is_file()]
    if not (resume or overwrite):
        refuse_finished(plan[0][0].output, finished, [path for path in paths if checkpoint_path(path).is_file()])
    done = []
    progress.start_grid(len(plan))
    try:
        for (prepared, seed), path in zip(runs, paths):
            with unit_lock(path) as holder:
                if holder:
                    progress.note(f"{prepared.label(seed)} is being trained by another process ({holder}); skipped")
                elif (path.is_file() and (resume or path not in finished)
                      and not set_aside_unreadable(path, progress)):
                    checkpoint_path(path).unlink(missing_ok=True)  # left by a run killed between its results and that
                    progress.note(f"{path}: already done, skipped")
                    done.append(path)
                else:
                    done.append(train_prepared(prepared, seed, progress, on_epoch=on_epoch, resume=resume,
                                               log_with=log_with, evaluate_test=evaluate_test))
            progress.advance_grid()
    except KeyboardInterrupt:
        raise Interrupted(sum(path.is_file() for path in paths), len(plan)) from None
    return done


def refuse_finished(output: str, finished: list[Path], cut: list[Path]) -> None:
    """A grid rerun over its results or its runs cut short (their epoch checkpoints), neither kept
    (`--resume`) nor trained again (`--overwrite`): nothing already written is replaced unasked."""
    if finished:
        raise UsageError(f"{output} already holds {len(finished)} finished results of this grid (e.g. {finished[0]}); "
                         "pass --resume to keep them and run the rest, --overwrite to retrain them, or another --output")
    if cut:
        raise UsageError(f"{output} holds {len(cut)} run{'s' * (len(cut) > 1)} of this grid cut short (epoch checkpoint "
                         f"{checkpoint_path(cut[0])}); pass --resume to go on from {'them' if len(cut) > 1 else 'it'}, "
                         "--overwrite to start over, or another --output")


def set_aside_unreadable(path: Path, progress: Progress) -> bool:
    """On --resume, a results file that cannot be read as one (cut short by a copy, emptied) is not
    a finished run: it is kept beside as `<name>.unreadable`, said, and the run trained again."""
    data, error = read_json(path)
    problem = error or results_problem(data)
    if problem is None:
        return False
    kept = path.with_name(path.name + ".unreadable")
    path.replace(kept)
    progress.note(f"{path}: unreadable ({problem}); kept as {kept.name}, run again")
    return True


def check_same_data(found: dict, expected: dict) -> None:
    """A rerun must see the data its results file recorded, or say where they differ."""
    for task, recorded in expected.items():
        now = found.get(task, {}).get("fingerprints", {})
        for split, value in recorded["fingerprints"].items():
            if now.get(split) != value:
                raise UsageError(f"the {task} {split} data differ from the results file's (fingerprint "
                                 f"{now.get(split)} now, {value} recorded): not the data it was run on")
