"""One run configuration, filled in order: config file, preset, profile, CLI flags.

The resolved config is written into every result and can be fed back with
`bench run --config results.json` to rerun exactly.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from bench.core.presets import PRESETS, Protocol
from bench.core.registry import Registry, UsageError, typed_value


@dataclass
class TrainConfig:
    """Training and evaluation schedule (defaults from the papers)."""

    epochs: int = 0
    """0: the task's default (20 under 10k training examples, 10 above, 5 for MRQA)."""
    batch_size: int = 0
    """0: the task's default (32; MRQA 16 with 2 accumulation steps)."""
    grad_accum: int = 0
    """0: the task's default (1; MRQA 2)."""
    eval_batch_size: int = 64
    warmup_steps: int = 500
    max_grad_norm: float = 1.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_source_length: int = 0
    """0: the task's default (256; MultiRC 348; QA 512)."""
    max_target_length: int = 0
    """0: the task's default (longest label; 128 for open-ended targets)."""
    generation_margin: int = 5
    """Tokens added to the longest gold target for greedy decoding."""
    max_train_examples: int = 0
    """0: all; else the first N training examples (quick experiments)."""
    max_eval_examples: int = 0
    """0: all; else the first N dev/test examples."""
    max_dev_examples: int = 0
    """0: all (or `max_eval_examples`); else the first N dev examples only: a cheaper checkpoint
    selection that leaves the test split whole."""
    source_epochs: int = 5
    """Epochs of the PT runs that make source prompts for the library."""
    head_pooling: str = "first"
    """What an encoder's heads read: `first`, the first token's final state (BERT's [CLS]), or
    `mean`, the mean of the final states (how sentence-transformers models such as MiniLM pool)."""
    head_lr: float = 1e-3
    """Learning rate of an encoder backbone's per-task heads (T5 has none)."""
    head_weight_decay: float = 0.0
    """AdamW weight decay of the heads."""
    eval_mode: str = "generate"
    """How a T5 run predicts a label-set task: `generate` (greedy decoding, as the papers) or
    `rank` (greedy decoding restricted to the labels, one teacher-forced pass per label: the same
    answer wherever generation emits a label, a label always). Encoders always take the argmax."""
    backbone_dropout: bool = True
    """The frozen model's dropout while training (on, as the papers train). Off, a step's gradient
    no longer depends on random masks: the check that two processes train what one does uses it."""
    precision: str = "fp32"
    """The arithmetic of forward passes: `fp32` (the papers), `tf32` (CUDA matmuls on tensor cores)
    or `bf16` (autocast; trained tensors and optimiser stay fp32). bench/core/precision.py says when each is safe."""
    group_by_length: bool = False
    """Batch training examples of similar length together (seeded; bench/pipeline/data.py `length_grouped`):
    about 2x fewer padded positions, but other batches than the papers' plain shuffle, so off
    by default and recorded in a run's identity."""
    epoch_rule: str = "task"
    """What `epochs` = 0 means: `task`, the task's default (above); `task-embedding`, the schedule
    ATTEMPT trained SPoT-t's task embeddings with (20 epochs under 10k training examples, 5 above).
    SPoT-t's embedding stage sets it; explicit epochs (`--epochs`, a profile's) win over both."""
    early_stopping_patience: int = 0
    """Stop after this many epochs without a better dev score (0: never; AMP's per-task prompts use it)."""
    epoch_cap: int = 0
    """An epoch sees at most this many training examples per task, a fresh sample each epoch
    (examples-proportional mixing with a cap; 0: all). With early stopping it makes dev checks
    come every N examples of a big source task instead of once a pass."""
    pair_encoding: str = "auto"
    """How an encoder reads a pair task's two texts (`Task.pair_fields`): `joint`, one segment
    (PEFT's SEQ_CLS form), or `two_tower`, each text encoded alone with the method's prompt and
    pooled, the two combined as sentence encoders are trained (a head over (u, v, |u - v|, u * v);
    regression, a scaled cosine of u and v). `auto`: two_tower for sentence-transformers
    checkpoints (MiniLM), joint for other encoders and T5. Each run (and library stage) resolves it
    for its own tasks, joint where none is a pair task, and its identity records the result.
    Results made before the setting existed ran joint."""


@dataclass
class RunConfig:
    method: str = "pt"
    method_options: dict = field(default_factory=dict)
    """Method config overrides, `name=value` (e.g. prompt_length=10, init=normal)."""
    suite: str | None = None
    tasks: list[str] = field(default_factory=list)
    model: str = "google-t5/t5-base"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    data_seed: int = 42
    k_shot: int = 0
    """Few-shot: train on k examples drawn from the train split (0: the full split)."""
    k_shot_draws: int = 1
    """Few-shot repetitions: draw r samples its k examples with seed data_seed + r
    (ATTEMPT used 3, MPT 10); each draw runs every seed."""
    data_dir: str | None = None
    fixtures: bool = False
    """Read the fixture datasets the project ships instead of the Hub."""
    preset: str = "paper"
    protocol_overrides: dict = field(default_factory=dict)
    profile: str = "paper"
    output: str = "runs"
    library: str = ""
    """Source-prompt library folder ("" = $BENCH_LIBRARY or ~/.cache/bench/library)."""
    sources: str = "library"
    """Where source prompts come from: `library` (trained on demand with this run's settings,
    then reused) or `imported` (prompts imported with `bench sources import`, e.g. ATTEMPT's release)."""
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def protocol(self) -> Protocol:
        return PRESETS.get(self.preset).with_overrides(self.protocol_overrides)

    def as_dict(self) -> dict:
        return {**asdict(self), "protocol": self.protocol.as_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        from_results = "config" in data
        data = dict(data.get("config", data))  # a results file holds its config under "config"
        data.pop("protocol", None)
        train_data = dict(data.pop("train", {}))  # a copy: the caller's results stay as they were
        if from_results:
            train_data.setdefault("pair_encoding", "joint")  # what a result made before the setting ran
        train = TrainConfig(**{k: v for k, v in train_data.items() if k in _names(TrainConfig)})
        unknown = set(data) - _names(cls)
        if unknown:
            raise UsageError(f"unknown config keys {sorted(unknown)}; valid: {', '.join(sorted(_names(cls)))}")
        if isinstance(train.adam_betas, list):
            train.adam_betas = tuple(train.adam_betas)
        return cls(**data, train=train)


def _names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


@dataclass(frozen=True)
class Profile:
    """A schedule and data scale; `smoke` runs offline in minutes on 2 CPU cores."""

    description: str
    model: str | None = None
    fixtures: bool = False
    seeds: list[int] | None = None
    train: dict = field(default_factory=dict)
    method_options: dict = field(default_factory=dict)
    """Method options for the methods whose config has them (e.g. AMP's `prompt_epochs`), for a
    run's method and its library stages alike."""
    per_method: dict = field(default_factory=dict)
    """Method name -> options for that method only, over `method_options` (AMP's `lr` is ψ's, not a prompt's)."""
    source_train: dict = field(default_factory=dict)
    """Training settings of the profile's source stages (source prompts, SPoT-g's mixture, MPT's
    source training) over the run's own: a source schedule unlike the targets' (all rows, a
    larger batch, early stopping) while both come from one profile."""


PROFILES: Registry[Profile] = Registry("profile")
PROFILES.register("paper", Profile("the papers' schedule on the chosen backbone and data"))
PROFILES.register(
    "smoke",
    Profile(
        "tiny-t5, shipped fixture data, 2 epochs, 10-token prompts: a couple of minutes on a laptop CPU",
        model="tiny-t5",
        fixtures=True,
        seeds=[0],
        train={"epochs": 2, "batch_size": 8, "eval_batch_size": 32, "warmup_steps": 2,
               "max_source_length": 128, "max_target_length": 16, "source_epochs": 1},
        method_options={"prompt_length": 10, "prompt_epochs": 2},
    ),
)
PROFILES.register(
    "cpu",
    Profile(
        "MiniLM on 2 CPU cores: the papers' splits, metrics and dev selection; 1,200 training examples "
        "per task, 3 epochs, 250 dev examples, 20-row prompts, rates for MiniLM, length-grouped batches "
        "(about 3 minutes a run)",
        model="minilm",
        train={"epochs": 3, "batch_size": 32, "warmup_steps": 10, "max_train_examples": 1200,
               "max_dev_examples": 250, "eval_batch_size": 128, "source_epochs": 3,
               "head_pooling": "mean", "head_lr": 1e-2, "group_by_length": True},
        # the papers' T5 rates x 0.1: MiniLM's embedding rows are ~20x shorter than T5's
        method_options={"prompt_length": 20, "lr": 0.03, "g_lr": 0.03, "lr_shared": 0.03, "lr_task": 0.04,
                        "source_lr": 0.03, "prompt_epochs": 3},
        per_method={"amp": {"lr": 1e-3}},
    ),
)
PROFILES.register(
    "cpu-sources",
    Profile(
        "MiniLM on 2 CPU cores, for transfer: source prompts that know their task (every training row, "
        "epochs of 1,000 rows per task, up to 12, stopped after 2 without a better dev score) and few-shot "
        "targets on top (batch 4, 8 epochs); the cpu profile's rates and heads",
        model="minilm",
        train={"epochs": 8, "batch_size": 4, "warmup_steps": 10, "max_dev_examples": 500, "eval_batch_size": 16,
               "head_pooling": "mean", "head_lr": 1e-2, "group_by_length": True},
        method_options={"prompt_length": 20, "lr": 0.03, "g_lr": 0.03, "lr_shared": 0.03, "lr_task": 0.04,
                        "source_lr": 0.03, "prompt_epochs": 3},
        per_method={"amp": {"lr": 1e-3}},
        source_train={"epochs": 12, "batch_size": 32, "epoch_cap": 1000, "early_stopping_patience": 2},
    ),
)


HEAD_POOLINGS = ("first", "mean")
EVAL_MODES = ("generate", "rank")
EPOCH_RULES = ("task", "task-embedding")
PAIR_ENCODINGS = ("auto", "joint", "two_tower")
PRECISIONS = ("fp32", "tf32", "bf16")


@dataclass(frozen=True)
class Range:
    """The legal values of a numeric setting: a value outside them is refused in one line before
    any work, not trained with (a negative epoch cap, a 0-row prompt)."""

    minimum: float
    exclusive: bool = False
    """True: `minimum` itself is refused too (learning rates: > 0)."""
    limit: int | None = None
    """Values from here up are refused too (seeds: numpy takes < 2**32)."""
    note: str = ""
    """What an edge value means, said in the refusal (e.g. `0: all`)."""

    def check(self, what: str, value, whole: bool) -> None:
        """Refuse `value`, named `what` in the message, unless it is a number (an integer where
        `whole`; never a bool) in the range."""
        number = isinstance(value, int if whole else (int, float)) and not isinstance(value, bool)
        above = number and (value > self.minimum if self.exclusive else value >= self.minimum)
        if above and (self.limit is None or value < self.limit):
            return
        bounds = f"{'>' if self.exclusive else '>='} {self.minimum:g}" + (f" and < {self.limit}" if self.limit else "")
        note = f" ({self.note})" if self.note else ""
        raise UsageError(f"{what} must be {'an integer' if whole else 'a number'} {bounds}{note}, not {value!r}")


TASK_DEFAULT = "0: the task's default"
TRAIN_RANGES = {
    "epochs": Range(0, note=TASK_DEFAULT), "batch_size": Range(0, note=TASK_DEFAULT),
    "grad_accum": Range(0, note=TASK_DEFAULT), "eval_batch_size": Range(1), "warmup_steps": Range(0),
    "max_grad_norm": Range(0, exclusive=True), "adam_eps": Range(0),
    "max_source_length": Range(0, note=TASK_DEFAULT), "max_target_length": Range(0, note=TASK_DEFAULT),
    "generation_margin": Range(0), "max_train_examples": Range(0, note="0: all"),
    "max_eval_examples": Range(0, note="0: all"), "max_dev_examples": Range(0, note="0: all"),
    "source_epochs": Range(0, note=TASK_DEFAULT), "head_lr": Range(0, exclusive=True),
    "head_weight_decay": Range(0), "early_stopping_patience": Range(0, note="0: never stop early"),
    "epoch_cap": Range(0, note="0: all"),
}
"""Every numeric `TrainConfig` field's legal values (`adam_betas`: `ADAM_BETA`, each of the two)."""
ADAM_BETA = Range(0, limit=1)
"""What torch's AdamW accepts for each of its betas: 0 <= beta < 1."""
SEED = Range(0, limit=2**32)
"""Training seeds: `np.random.seed` (bench/pipeline/training.py) takes 0 <= seed < 2**32; the data
seed (torch's generators, which take more) keeps to the same range."""


def set_train(train: TrainConfig, settings: dict[str, str]) -> None:
    """`--train name=value` settings, typed by the field (e.g. warmup_steps=100, grad_accum=2);
    `check_run` checks the result."""
    known = _names(TrainConfig)
    for name, raw in settings.items():
        if name not in known:
            raise UsageError(f"unknown training setting {name!r}; valid: {', '.join(sorted(known))}")
        setattr(train, name, typed_value(f"training setting {name}", raw, getattr(train, name)))


def check_run(config: RunConfig) -> None:
    """Refuse a run config with a value outside its range, wherever it came from (flags, a config
    file, a results file rerun), before any work: its seeds, few-shot settings and schedule."""
    check_seeds(config.seeds, "--seeds")
    SEED.check("--data-seed", config.data_seed, whole=True)
    Range(0, note="0: the full training split").check("--k-shot", config.k_shot, whole=True)
    Range(1).check("--k-shot-draws", config.k_shot_draws, whole=True)
    check_train(config.train)


def check_seeds(seeds, what: str) -> None:
    """Refuse seeds a grid cannot run: none (an empty `--seeds` is not the defaults), a repeat (each
    seed is one run), or one numpy cannot seed with."""
    if not isinstance(seeds, list) or not seeds:
        raise UsageError(f"{what} takes at least one seed, e.g. 0,1,2, not {seeds!r}")
    for seed in seeds:
        SEED.check(f"{what}: each seed", seed, whole=True)
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"{what} {','.join(map(str, seeds))} repeats a seed: each seed is one run; "
                         "give distinct seeds, e.g. 0,1,2")


def check_train(train: TrainConfig) -> None:
    """Refuse a schedule with a setting outside its choices or range."""
    defaults = TrainConfig()
    for name, legal in TRAIN_RANGES.items():
        legal.check(f"training setting {name}", getattr(train, name), isinstance(getattr(defaults, name), int))
    betas = train.adam_betas
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise UsageError(f"training setting adam_betas takes two numbers, not {betas!r}")
    for beta in betas:
        ADAM_BETA.check("training setting adam_betas: each beta", beta, whole=False)
    if train.precision not in PRECISIONS:
        raise UsageError(f"unknown precision {train.precision!r}; valid: {', '.join(PRECISIONS)}")
    from bench.core.precision import check  # imports torch: only once a run is being configured

    check(train.precision)
    if train.eval_mode not in EVAL_MODES:
        raise UsageError(f"unknown eval_mode {train.eval_mode!r}; valid: {', '.join(EVAL_MODES)}")
    if train.epoch_rule not in EPOCH_RULES:
        raise UsageError(f"unknown epoch_rule {train.epoch_rule!r}; valid: {', '.join(EPOCH_RULES)}")
    if train.head_pooling not in HEAD_POOLINGS:
        raise UsageError(f"unknown head_pooling {train.head_pooling!r}; valid: {', '.join(HEAD_POOLINGS)}")
    if train.pair_encoding not in PAIR_ENCODINGS:
        raise UsageError(f"unknown pair_encoding {train.pair_encoding!r}; valid: {', '.join(PAIR_ENCODINGS)}")


SELECTED_ON_SEEDS = "selected_on_seeds"
"""The key `bench sweep --export` adds to the config it writes: the seeds the sweep selected the
parameters on. A note, not a setting: no RunConfig field, so in no run's identity or key;
`bench run` warns when it trains those seeds again (`selection_warning`)."""


def read_config_file(path: str) -> dict:
    """A YAML (.yaml, .yml) or JSON config file's contents; missing or unparsable is a usage error."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"config file {path!r} does not exist")
    text = file.read_text()
    try:
        if file.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as error:
        raise UsageError(f"config file {path!r} cannot be parsed ({type(error).__name__})") from None
    return data or {}


def load_config_file(path: str) -> RunConfig:
    return RunConfig.from_dict({k: v for k, v in read_config_file(path).items() if k != SELECTED_ON_SEEDS})


def selection_warning(path: str, seeds: list[int]) -> str | None:
    """One line where a run of `seeds` from the config file at `path` trains seeds its parameters
    were selected on (an export of a sweep whose --sweep-seeds were the config's): the parameters
    won on those very seeds' dev scores, so their test scores are biased upward. None otherwise."""
    selected = read_config_file(path).get(SELECTED_ON_SEEDS) or []
    reused = [seed for seed in seeds if seed in selected]
    if not reused:
        return None
    return (f"the sweep selected this config's parameters on seed{'s' * (len(reused) > 1)} "
            f"{', '.join(map(str, reused))} ({SELECTED_ON_SEEDS} in {path}), which this run trains again: "
            f"{'their test scores are' if len(reused) > 1 else 'its test score is'} biased upward; pass --seeds for "
            "fresh ones")


def apply_profile(config: RunConfig, name: str) -> RunConfig:
    profile = PROFILES.get(name)
    config.profile = PROFILES.canonical(name)
    if profile.model:
        config.model = profile.model
    config.fixtures = config.fixtures or profile.fixtures
    if profile.seeds is not None:
        config.seeds = list(profile.seeds)
    for key, value in profile.train.items():
        setattr(config.train, key, value)
    return config


def source_train(profile_name: str) -> dict:
    """The profile's training settings for source stages (empty: they train as the run, but for
    `source_epochs`)."""
    return PROFILES.get(profile_name).source_train


def profile_options(profile_name: str, method: str, config_cls) -> dict:
    """The profile's options for `method`: the general ones its config class has (one profile
    serves every method; only AMP has `prompt_epochs`), then the method's own."""
    profile = PROFILES.get(profile_name)
    known = _names(config_cls)
    return {**{k: v for k, v in profile.method_options.items() if k in known}, **profile.per_method.get(method, {})}


def with_profile_options(config: RunConfig, config_cls) -> None:
    """Add the profile's options for the run's method; options given explicitly win."""
    config.method_options = {**profile_options(config.profile, config.method, config_cls), **config.method_options}
