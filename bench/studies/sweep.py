"""`bench sweep`: an optuna study over a method's search space, scored on dev, shared by workers.

A trial is `bench run`'s resolved configuration with the trial's parameters in its method
options and the sweep seeds as its seeds; it trains through `bench.pipeline.runner.run` and writes its
results under `<output>/trial-<number>/`, so trials never overwrite each other.

Objective: the mean, over the trial's runs (every task set of the config × each sweep seed),
of each run's best dev mean (the score its checkpoint is selected on). Choosing
hyperparameters on test would flatter the method, so a trial's runs evaluate dev only: the
test split is loaded to fingerprint it (a configuration's data identity covers every split),
never tokenised or scored, and the trial's results files say so (`test_evaluated` false,
`test` empty; tables leave such runs out). With `--evaluate-test` (`Sweep.evaluate_test`)
the runs score test as `bench run` does and record it in their results files (and each
run's closing progress line shows it); the objective, `sweep.md`, `sweep.png` and the
export never read it. Source prompts a trial trains for the library are library stages,
evaluated as in any run, since later runs share them.

Pruning (optuna's MedianPruner): every dev evaluation is reported at step k = the k-th dev
evaluation of the trial, so run i's epoch e (runs of E epochs, in grid order) is step
(i-1)·E + e. Every trial runs the same grid in the same order, so a step compares the same
seed's same epoch across trials. (With `--train early_stopping_patience` a run that stops
early shifts the steps of the runs after it.) A pruned trial is never resumed, so the epoch
checkpoint of the run it stopped is removed.

How many trials: `--trials N` is the study's total, not this invocation's. A trial counts
while it is complete, pruned or running; a failed one does not (a rerun replaces
it). Workers on one storage claim trials by optuna's trial numbers, which the storage
assigns atomically: a trial whose number finds N counted trials before it is surplus (two
workers took the last slot at once); it is failed and tagged `surplus` without training, so
the study holds exactly N counted trials, none lost or run twice. On an RDB storage (SQLite,
PostgreSQL, MySQL) heartbeats fail the trial of a worker that died, so that a live worker or
a rerun replaces it; the journal file storage has no heartbeats, so a worker killed hard
leaves its trial running (counted) for good.
"""
from __future__ import annotations

import copy
import io
import itertools
import json
import os
import random
import socket
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import optuna
from optuna.trial import TrialState

from bench.core.config import SELECTED_ON_SEEDS, RunConfig
from bench.core.progress import Progress
from bench.core.registry import UsageError
from bench.core.results import atomic_write
from bench.pipeline import runner
from bench.pipeline.checkpoint import remove_checkpoints
from bench.studies.plots import PLOTS_EXTRA
from methods.registry import METHODS

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
"""Trial states that hold one of the study's N slots (a waiting, enqueued trial takes one when it
starts: workers take waiting trials before new ones)."""
HEARTBEAT_SECONDS = 60
"""A running trial's heartbeat on RDB storages; one silent for 3 beats belongs to a dead worker."""
STORAGE_FORMS = ("sqlite:///FILE.db", "postgresql://USER:PASSWORD@HOST/DB", "mysql://USER:PASSWORD@HOST/DB",
                 "journal:///FILE.log")
TEST_SHOWN = {False: "the trials do not evaluate the test split",
              True: "the trials score the test split too (--evaluate-test), recorded in their results files "
                    "but not used or shown here"}
"""What `sweep.md` says of the test split, without and with `--evaluate-test`."""
SETTINGS_KEY = "bench_sweep"
"""The study's user attribute recording what its objective depends on (see `Sweep.settings`)."""


class SurplusTrial(Exception):
    """A trial claimed after the study had its N trials (another worker took the last slot)."""


class RestrictedTrial:
    """A trial as a method's `search_space` sees it: the named parameters are suggested by
    optuna, every other `suggest_*` answers None and is dropped, so unswept parameters keep
    the config's values and never enter the study. With no trial it only lists the space."""

    def __init__(self, trial: optuna.Trial | None, names: set[str]):
        self.trial, self.names = trial, names

    def __getattr__(self, attribute: str):
        if not attribute.startswith("suggest_"):
            raise AttributeError(attribute)
        return lambda name, *args, **kwargs: (getattr(self.trial, attribute)(name, *args, **kwargs)
                                              if name in self.names else None)


def proposed(cls) -> list[str] | None:
    """The options a method class's search space proposes, in its order; None where it has none."""
    try:
        return list(cls.search_space(RestrictedTrial(None, set())))
    except NotImplementedError:
        return None


def space_names(method: str) -> list[str]:
    """The options `--param` may name for a method (ATTEMPT: g_lr, lr)."""
    names = proposed(METHODS.get(method).cls)
    if names is None:
        with_space = [name for name, spec in METHODS.items() if proposed(spec.cls)]
        raise UsageError(f"{method} has no search space to sweep; methods with one: {', '.join(with_space)}")
    return names


def shown(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def seeds_text(seeds: list[int]) -> str:
    return f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}"


def best_dev(path: Path) -> float:
    """A run's best dev mean over its epochs: the score its checkpoint was selected on."""
    return max(epoch["dev_mean"] for epoch in json.loads(Path(path).read_text())["epochs"])


@dataclass
class Sweep:
    config: RunConfig
    """`bench run`'s resolved config: what every trial trains, and what `--export` writes."""
    params: list[str]
    seeds: list[int]
    """The seeds each trial trains (the objective's); `config.seeds` are the exported config's."""
    trials: int
    storage: str
    study: str
    evaluate_test: bool = False
    """Whether trials score test too (recorded in their results files, never used by the objective)."""

    @classmethod
    def create(cls, config: RunConfig, params: list[str], trials: int, seeds: list[int] | None = None,
               storage: str | None = None, study: str | None = None, evaluate_test: bool = False) -> "Sweep":
        """Validated before any work: the parameters against the method's space, the seeds.

        Defaults: the config's seeds; an SQLite file in the output folder; a study named
        after method, tasks and parameters, so that the same command resumes the same study."""
        names = space_names(config.method)
        params = list(dict.fromkeys(params))
        unknown = [name for name in params if name not in names]
        if unknown:
            raise UsageError(f"--param {unknown[0]!r} is not in {config.method}'s search space; valid: {', '.join(names)}")
        seeds = list(config.seeds) if seeds is None else seeds
        if not seeds or len(set(seeds)) != len(seeds):
            raise UsageError(f"--sweep-seeds {','.join(map(str, seeds))!r}: give distinct seeds, e.g. 0,1")
        storage = storage or f"sqlite:///{Path(config.output).resolve() / 'sweep.db'}"
        study = study or f"{config.method}-{'+'.join(config.tasks)}-{'+'.join(params)}"
        return cls(config, params, seeds, trials, storage, study, evaluate_test)

    def settings(self) -> dict:
        """What the objective depends on, recorded in the study so that a rerun or another
        worker with other settings cannot mix its scores in: the config typed (method config,
        not the option strings) without the swept options, the evaluation seeds and this
        machine's paths (output, data, library), which may differ between workers. Also
        `evaluate_test` where on: not the objective's, but what the trials' results files hold
        and `sweep.md` says (absent where off, as in studies recorded before the flag existed)."""
        config = json.loads(json.dumps(self.config.as_dict()))
        for local in ("output", "data_dir", "library", "seeds", "method_options", "protocol_overrides"):
            config.pop(local)
        unswept = {k: v for k, v in self.config.method_options.items() if k not in self.params}
        method_config = asdict(METHODS.get(self.config.method).make_config(unswept))
        config["method_config"] = json.loads(json.dumps({k: v for k, v in method_config.items() if k not in self.params}))
        return {"params": self.params, "sweep_seeds": self.seeds, "config": config,
                **({"evaluate_test": True} if self.evaluate_test else {})}

    def trial_config(self, number: int, overrides: dict) -> RunConfig:
        config = copy.deepcopy(self.config)
        config.seeds = list(self.seeds)
        config.method_options = {**config.method_options, **overrides}
        config.output = str(Path(self.config.output) / f"trial-{number}")
        return config

    def shown_storage(self) -> str:
        """The storage URL without its password, for summaries and messages."""
        if self.storage.startswith("journal://"):
            return self.storage
        from sqlalchemy.engine import make_url

        return make_url(self.storage).render_as_string(hide_password=True)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """`journal:///FILE` is optuna's journal file (one file, several processes, no database
    server); anything else is an SQLAlchemy URL for optuna's RDB storage, with heartbeats. A
    plain `postgresql://` gets psycopg 3 (the `postgres` extra), whatever SQLAlchemy's default
    driver; a URL naming its driver (`postgresql+psycopg2://`) keeps it."""
    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, IntegrityError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"--storage {url!r} is not a storage URL; valid forms: {', '.join(STORAGE_FORMS)}") from None
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 4):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    parsed.render_as_string(hide_password=False), heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=3 * HEARTBEAT_SECONDS,
                    engine_kwargs={"connect_args": {"timeout": 60}} if backend == "sqlite" else {})  # wait for the lock
        except ImportError:
            extra = " (pip install -e '.[postgres]')" if parsed.drivername == "postgresql+psycopg" else ""
            raise UsageError(f"--storage {shown!r}: no database driver for {parsed.drivername}{extra}") from None
        except Exception as error:  # sqlalchemy's errors: unknown dialect, connection refused, bad credentials
            # workers starting together on a new database race to create optuna's tables
            # (optuna#1092, #4621): the loser finds them made and opens the storage on a retry
            if attempt < 3 and (isinstance(error, IntegrityError) or "already exists" in str(error)):
                time.sleep(random.uniform(0.2, 1.0))
                continue
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            raise UsageError(f"--storage {shown!r} cannot be opened ({reason}); "
                             f"valid forms: {', '.join(STORAGE_FORMS)}") from None


def check_own_folder(sweep: Sweep, storage: optuna.storages.BaseStorage) -> None:
    """A new study refused where the output folder holds trial folders already: they are another
    study's (`trial-<number>` restarts at 0 for each study), and its results would block or be
    mistaken for this one's."""
    trials = sorted(path.name for path in Path(sweep.config.output).glob("trial-*"))
    if trials and sweep.study not in optuna.get_all_study_names(storage):
        raise UsageError(f"{sweep.config.output} holds another study's trial folders ({', '.join(trials[:3])}"
                         f"{', ...' if len(trials) > 3 else ''}): give study {sweep.study!r} its own --output")


def open_study(sweep: Sweep) -> optuna.Study:
    """Create the study or load it (every worker calls this; optuna settles the race of two
    creating it at once), and refuse one made with other settings."""
    storage = open_storage(sweep.storage)
    check_own_folder(sweep, storage)
    study = optuna.create_study(storage=storage, study_name=sweep.study, direction="maximize",
                                pruner=optuna.pruners.MedianPruner(), load_if_exists=True)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise UsageError(f"study {sweep.study!r} minimises; a sweep maximises the dev score: give another --study")
    settings = sweep.settings()
    recorded = study.user_attrs.get(SETTINGS_KEY)
    if recorded is None:
        study.set_user_attr(SETTINGS_KEY, settings)
    elif recorded != settings:
        raise UsageError(f"study {sweep.study!r} in {sweep.shown_storage()} was run with other settings (they differ in "
                         f"{', '.join(differences(recorded, settings))}): give the same flags, or another --study")
    return study


def differences(recorded: dict, now: dict, prefix: str = "") -> list[str]:
    """The keys (dotted into nested dicts) whose values differ."""
    found = []
    for key in sorted(set(recorded) | set(now)):
        old, new = recorded.get(key), now.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key}")
    return found


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=COUNTED)


def run_sweep(sweep: Sweep, display: Callable[[], Progress] = Progress,
              say: Callable[[str], None] = print) -> optuna.Study:
    """Run trials until the study holds `sweep.trials` counted trials. Each trial gets a fresh
    `display()`, closed when it ends (a pruned run leaves no bar behind); `say` gets one line per
    trial (instead of optuna's log, which is quietened meanwhile)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        return _run_trials(sweep, open_study(sweep), display, say)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _run_trials(sweep: Sweep, study: optuna.Study, display: Callable[[], Progress],
                say: Callable[[str], None]) -> optuna.Study:
    space = METHODS.get(sweep.config.method).cls.search_space
    worker = f"{socket.gethostname()}:{os.getpid()}"
    names = set(sweep.params)

    def objective(trial: optuna.Trial) -> float:
        ahead = sum(1 for t in counted(study) if t.number < trial.number)
        if ahead >= sweep.trials:
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"trial {trial.number}: the study already has its {sweep.trials} trials")
        trial.set_user_attr("worker", worker)
        overrides = {k: v for k, v in space(RestrictedTrial(trial, names)).items() if k in names}
        label = ", ".join(f"{k}={shown(v)}" for k, v in overrides.items())
        config = sweep.trial_config(trial.number, overrides)
        steps = itertools.count(1)

        def report(epoch: int, dev_mean: float) -> None:
            step = next(steps)
            trial.report(dev_mean, step)
            if trial.should_prune():
                say(f"trial {trial.number} ({label}): pruned at step {step}, dev {dev_mean:.2f}")
                remove_checkpoints(Path(config.output))  # its last epoch's: a pruned trial never resumes
                raise optuna.TrialPruned(f"dev {dev_mean:.2f} at step {step}, below the median")

        progress = display()
        try:
            paths = runner.run(config, progress, on_epoch=report, evaluate_test=sweep.evaluate_test)
        finally:
            progress.close()
        value = sum(best_dev(path) for path in paths) / len(paths)
        say(f"trial {trial.number} ({label}): objective {value:.2f}")
        return value

    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial must not hold a slot
        if len(counted(study)) >= sweep.trials:
            return study
        try:
            study.optimize(objective, n_trials=1)
        except SurplusTrial as surplus:
            say(f"{surplus}: this worker stops")
            return study


def listed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's trials less the surplus ones (never trained)."""
    return [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The complete trial with the highest objective (the lowest number among equals)."""
    complete = [t for t in listed(study) if t.state == TrialState.COMPLETE]
    return max(complete, key=lambda t: t.value, default=None)


def summary(study: optuna.Study, sweep: Sweep) -> str:
    """`sweep.md`: what was swept and how it was scored, every trial, the best parameters."""
    from tabulate import tabulate

    config, trials = sweep.config, listed(study)
    states = Counter(t.state.name.lower() for t in trials)
    rows = [[t.number, t.state.name.lower(), *(shown(t.params[p]) if p in t.params else "–" for p in sweep.params),
             f"{t.value:.2f}" if t.state == TrialState.COMPLETE else "–", t.user_attrs.get("worker", "–")]
            for t in trials]
    lines = [
        f"# Sweep `{sweep.study}`", "",
        f"{config.method} on {', '.join(config.tasks)} ({config.model}, {config.profile} profile, {config.preset} preset), "
        f"swept: {', '.join(sweep.params)}. Objective: the mean over {seeds_text(sweep.seeds)} of each "
        f"run's best dev mean; {TEST_SHOWN[sweep.evaluate_test]}. Storage: `{sweep.shown_storage()}`.", "",
        f"Trials: {', '.join(f'{n} {state}' for state, n in states.items()) or 'none yet'}; the study runs until "
        f"{sweep.trials} are complete, pruned or running (a failed trial is replaced).",
        "", tabulate(rows, ["trial", "state", *sweep.params, "objective", "worker"], tablefmt="github", disable_numparse=True), "",
    ]
    best = best_trial(study)
    if best is None:
        lines.append("Best: no complete trial yet.")
    else:
        chosen = ", ".join(f"{p}={shown(best.params[p])}" for p in sweep.params)
        lines.append(f"Best: trial {best.number}, objective {best.value:.2f}: {chosen}.")
    surplus = len(study.get_trials(deepcopy=False)) - len(trials)
    if surplus:
        lines.append(f"\n{surplus} surplus trial{'s' * (surplus > 1)} (workers claiming the last slot at once) "
                     "failed without training and are not listed.")
    return "\n".join(lines) + "\n"


def plot(study: optuna.Study, sweep: Sweep, out: Path) -> str:
    """`sweep.png`: objective against the first swept parameter, the best trial marked; a
    one-line note instead where matplotlib (the `plots` extra) or complete trials are missing."""
    param = sweep.params[0]
    points = sorted((t.params[param], t.value) for t in listed(study)
                    if t.state == TrialState.COMPLETE and param in t.params)
    if not points:
        return f"{out.name} not drawn: no complete trial yet"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"{out.name} not drawn: plots need matplotlib: {PLOTS_EXTRA}"
    best = best_trial(study)
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.scatter([x for x, _ in points], [y for _, y in points], color="tab:blue", label="complete trial")
    axes.scatter([best.params[param]], [best.value], s=160, marker="*", color="tab:red", label=f"best (trial {best.number})")
    distribution = best.distributions[param]
    if getattr(distribution, "log", False):
        axes.set_xscale("log")
    axes.set_xlabel(param)
    axes.set_ylabel(f"mean best dev score ({seeds_text(sweep.seeds)})")
    axes.set_title(f"{sweep.study}: {sweep.config.method} on {', '.join(sweep.config.tasks)}", fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=120)
    plt.close(figure)
    atomic_write(out, image.getvalue())  # another worker may be drawing the same file
    return f"plot written to {out}"


def export(study: optuna.Study, sweep: Sweep, path: Path) -> Path:
    """The resolved config with the best trial's parameters as a YAML file `bench run --config`
    runs as is. Its seeds are the config's (`--seeds`), not the sweep seeds: selection and the
    final evaluation are separate steps (give disjoint seeds to evaluate on unseen ones). It
    records the sweep seeds as `selected_on_seeds`, and says in a comment where the two share
    seeds (no --sweep-seeds: the very seeds the winner was picked on), whose test scores are then
    biased upward; `bench run` warns when it trains them. Its output is `<sweep output>/best`,
    beside the trials, not among them."""
    import yaml

    best = best_trial(study)
    if best is None:
        raise UsageError(f"study {sweep.study!r} has no complete trial: nothing to export to {str(path)!r}")
    config = copy.deepcopy(sweep.config)
    config.method_options = {**config.method_options, **{p: best.params[p] for p in sweep.params}}
    config.output = str(Path(sweep.config.output).resolve() / "best")
    data = json.loads(json.dumps(config.as_dict()))  # tuples as lists: what YAML's safe dumper writes
    data[SELECTED_ON_SEEDS] = list(sweep.seeds)
    reused = [seed for seed in config.seeds if seed in sweep.seeds]
    header = (f"# bench sweep: study {sweep.study!r}, best of {len(listed(study))} trials: trial {best.number}, "
              f"objective {best.value:.4f} (mean best dev over {seeds_text(sweep.seeds)}).\n"
              + (f"# The parameters were selected on {seeds_text(reused)}, which this config runs: their test "
                 "scores are biased upward; pass --seeds for fresh ones.\n" if reused else "")
              + f"# Run it with: bench run --config {path.name}\n")
    atomic_write(path, header + yaml.safe_dump(data, sort_keys=False))
    return path
