"""`bench sweep`: search-space restriction, the dev objective over sweep seeds, pruning, resume,
workers sharing one storage (SQLite, PostgreSQL), the summary, the plot and the export.

Most tests replace `bench.pipeline.runner.run` with `ScriptedRuns`, which reports scripted dev scores per
epoch exactly as the runner does (and writes a results file unless the sweep stops the run), so
every objective is computed by hand. One test sweeps and runs the export for real (tiny-t5)."""
from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from bench.cli import main
from bench.core.results import write_json
from bench.studies.sweep import proposed, space_names
from helpers import result_file

TESTS = Path(__file__).resolve().parent
ATTEMPT = ["sweep", "--method", "attempt", "--tasks", "rte", "--profile", "smoke", "--param", "g_lr", "--quiet"]


class ScriptedRuns:
    """Stands in for `bench.pipeline.runner.run`: for each sweep seed, the dev means `scores(value, seed)`
    (one per epoch) of the swept `param`'s value, reported through `on_epoch` as the runner
    reports them; a run the sweep does not stop writes a results file like the runner's, with a
    test score (87.654) that must never reach the objective. `log`: one line per run started;
    `evaluate_test`: what each call was asked (the runner's keyword)."""

    def __init__(self, param: str, scores, log: Path | None = None, pause: float = 0.0):
        self.param, self.scores, self.log, self.pause = param, scores, log, pause
        self.configs, self.reported, self.evaluate_test = [], [], []

    def __call__(self, config, progress, resume=False, units=None, expected_data=None, on_epoch=None,
                 evaluate_test=True):
        self.configs.append(config)
        self.evaluate_test.append(evaluate_test)
        paths = []
        for seed in config.seeds:
            value = float(config.method_options[self.param])
            if self.log:
                with open(self.log, "a") as log:
                    log.write(f"{Path(config.output).name} seed {seed}\n")
            history = []
            for epoch, dev in enumerate(self.scores(value, seed), 1):
                time.sleep(self.pause)
                history.append({"epoch": epoch, "dev_mean": dev})
                self.reported.append((value, seed, epoch))
                on_epoch(epoch, dev)
            best = max(history, key=lambda e: e["dev_mean"])
            path = Path(config.output) / config.method / "rte" / "c0" / f"seed{seed}.json"
            write_json(path, {"run": {"seed": seed}, "epochs": history, "best_epoch": best["epoch"],
                              "test": {"rte": {"mean": 87.654}}, "test_mean": 87.654})
            paths.append(path)
        return paths


def table(script: dict):
    """Scores looked up by (rounded swept value, seed)."""
    return lambda value, seed: script[(round(value, 6), seed)]


def linear(value, seed):
    """Two epochs whose best grows with the swept value: any value is a valid trial."""
    return [100 * value + seed, 100 * value + seed + 1]


def sweep(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def storage_of(output: Path) -> str:
    return f"sqlite:///{output / 'sweep.db'}"


def enqueue(storage: str, study: str, param: str, values: list[float]) -> None:
    """Trials with fixed values, in order: the sweep's workers take waiting trials first."""
    created = optuna.create_study(storage=storage, study_name=study, direction="maximize")
    for value in values:
        created.enqueue_trial({param: value})


def trials_of(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=storage).get_trials()


# -- the search space ----------------------------------------------------------------------
def test_each_methods_space_in_its_order():
    from methods.base import Method

    assert space_names("attempt") == ["g_lr", "lr"]
    assert space_names("mpt") == ["lr_shared", "lr_task"]
    assert space_names("pt") == ["lr"]
    assert proposed(Method) is None


def test_a_method_without_a_space_is_named_with_those_that_have_one(monkeypatch):
    from methods.base import Method
    from methods.registry import METHODS

    from bench.core.registry import UsageError

    monkeypatch.setattr(METHODS.get("pt").cls, "search_space", Method.search_space)
    with pytest.raises(UsageError, match=r"^pt has no search space to sweep; methods with one: amp, amp-maxpool, attempt"):
        space_names("pt")


def test_only_the_named_params_are_swept_the_others_keep_the_config(tmp_path, capsys, monkeypatch):
    runs = ScriptedRuns("g_lr", linear)
    monkeypatch.setattr("bench.pipeline.runner.run", runs)
    code, out, _ = sweep(capsys, *ATTEMPT, "--trials", "2", "--option", "lr=0.25", "--output", str(tmp_path))
    assert code == 0
    trials = trials_of(storage_of(tmp_path), "attempt-rte-g_lr")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial, config in zip(trials, runs.configs):
        assert list(trial.params) == ["g_lr"] and 0.01 <= trial.params["g_lr"] <= 1.0
        assert trial.distributions["g_lr"].log
        assert config.method_options["g_lr"] == trial.params["g_lr"]
        assert config.method_options["lr"] == "0.25" and config.method_options["prompt_length"] == 10
        assert config.output == str(tmp_path / f"trial-{trial.number}")
        assert trial.value == pytest.approx(100 * trial.params["g_lr"] + 1)  # seed 0, best epoch: the second
    assert f"trial 0 (g_lr={trials[0].params['g_lr']:.4g}): objective {trials[0].value:.2f}" in out


# -- the objective and pruning ---------------------------------------------------------------
def test_objective_is_the_mean_over_sweep_seeds_of_each_runs_best_dev(tmp_path, capsys, monkeypatch):
    script = {(0.1, 0): [50.0, 60.0], (0.1, 1): [70.0, 65.0],  # best 60 and 70 (not the last epoch): 65
              (0.2, 0): [40.0, 30.0], (0.2, 1): [20.0, 35.0]}  # best 40 and 35: 37.5
    runs = ScriptedRuns("g_lr", table(script))
    monkeypatch.setattr("bench.pipeline.runner.run", runs)
    enqueue(storage_of(tmp_path), "attempt-rte-g_lr", "g_lr", [0.1, 0.2])
    code, out, _ = sweep(capsys, *ATTEMPT, "--trials", "2", "--seeds", "0,1,2", "--sweep-seeds", "0,1",
                         "--output", str(tmp_path))
    assert code == 0
    trials = trials_of(storage_of(tmp_path), "attempt-rte-g_lr")
    assert [t.value for t in trials] == [65.0, 37.5]
    assert [c.seeds for c in runs.configs] == [[0, 1], [0, 1]]  # the sweep seeds, not --seeds
    # every dev evaluation is a step: run (seed) i's epoch e is step (i-1)·2 + e
    assert trials[0].intermediate_values == {1: 50.0, 2: 60.0, 3: 70.0, 4: 65.0}
    assert sorted(p.name for p in (tmp_path / "trial-1").rglob("seed*.json")) == ["seed0.json", "seed1.json"]
    summary = (tmp_path / "sweep.md").read_text()
    assert "| 0       | complete | 0.1    | 65.00       |" in summary
    assert "| 1       | complete | 0.2    | 37.50       |" in summary
    assert "Best: trial 0, objective 65.00: g_lr=0.1." in summary
    assert "the mean over seeds 0, 1 of each run's best dev mean" in summary
    assert summary in out


def test_a_trial_far_below_the_median_is_pruned(tmp_path, capsys, monkeypatch):
    script = {**{(v, 0): [70.0, 72.0] for v in (0.1, 0.2, 0.3, 0.4, 0.5)},
              (0.9, 0): [10.0, 80.0],   # step 1: 10 against the complete trials' median 70
              (0.6, 0): [70.0, 73.0]}   # at the median, then above it: runs to the end
    runs = ScriptedRuns("g_lr", table(script))
    monkeypatch.setattr("bench.pipeline.runner.run", runs)
    enqueue(storage_of(tmp_path), "attempt-rte-g_lr", "g_lr", [0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.6])
    code, out, _ = sweep(capsys, *ATTEMPT, "--trials", "7", "--output", str(tmp_path))
    assert code == 0
    trials = trials_of(storage_of(tmp_path), "attempt-rte-g_lr")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 5 + [TrialState.PRUNED, TrialState.COMPLETE]
    pruned = trials[5]
    assert pruned.intermediate_values == {1: 10.0}
    assert (0.9, 0, 2) not in runs.reported  # stopped after its first epoch
    assert not list((tmp_path / "trial-5").rglob("*.json"))  # a stopped run writes no results
    assert trials[6].value == 73.0
    assert "trial 5 (g_lr=0.9): pruned at step 1, dev 10.00" in out
    assert "| 5       | pruned   | 0.9    | –           |" in (tmp_path / "sweep.md").read_text()


def test_a_pruned_trial_leaves_no_epoch_checkpoint(tmp_path, capsys, monkeypatch):
    """For real (tiny-t5): pruned at its second dev evaluation, the run stops with epoch 1's
    checkpoint written, which nothing would ever resume."""
    import bench.pipeline.runner

    calls = iter(range(1, 100))
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda trial: next(calls) == 2)
    saved, save = [], bench.pipeline.runner.save_checkpoint
    monkeypatch.setattr(bench.pipeline.runner, "save_checkpoint", lambda path, state: (saved.append(path), save(path, state)))
    code, out, _ = sweep(capsys, "sweep", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--param", "lr",
                         "--trials", "1", "--epochs", "3", "--quiet", "--output", str(tmp_path))
    assert code == 0 and "pruned at step 2" in out
    assert [t.state for t in trials_of(storage_of(tmp_path), "pt-cb-lr")] == [TrialState.PRUNED]
    assert [path.name for path in saved] == ["seed0.resume.pt"] and saved[0].is_relative_to(tmp_path / "trial-0")
    assert not list(tmp_path.rglob("*.resume.pt"))


def test_each_trial_gets_its_own_display_closed_when_it_ends_pruned_or_not(tmp_path, monkeypatch):
    """A pruned run never finishes its progress bar: closing each trial's display removes it."""
    from bench.cli import build_parser, resolve_run_config
    from bench.core.progress import Progress
    from bench.studies.sweep import Sweep, run_sweep

    script = {**{(v, 0): [70.0, 72.0] for v in (0.1, 0.2, 0.3, 0.4, 0.5)}, (0.9, 0): [10.0, 80.0]}
    monkeypatch.setattr("bench.pipeline.runner.run", ScriptedRuns("g_lr", table(script)))
    enqueue(storage_of(tmp_path), "attempt-rte-g_lr", "g_lr", [0.1, 0.2, 0.3, 0.4, 0.5, 0.9])
    displays = []

    class Display(Progress):
        def __init__(self):
            self.closed = False
            displays.append(self)

        def close(self):
            self.closed = True

    config = resolve_run_config(build_parser().parse_args(
        ["run", "--method", "attempt", "--tasks", "rte", "--profile", "smoke", "--output", str(tmp_path)]))
    lines = []
    study = run_sweep(Sweep.create(config, ["g_lr"], 6), Display, lines.append)
    assert study.trials[-1].state == TrialState.PRUNED
    assert len(displays) == 6 and all(d.closed for d in displays)
    assert lines[-1] == "trial 5 (g_lr=0.9): pruned at step 1, dev 10.00"


# -- how many trials ---------------------------------------------------------------------------
@pytest.mark.parametrize("storage", ["default", "journal"])
def test_rerunning_the_study_adds_trials_up_to_n(tmp_path, capsys, monkeypatch, storage):
    runs = ScriptedRuns("g_lr", linear)
    monkeypatch.setattr("bench.pipeline.runner.run", runs)
    url = storage_of(tmp_path) if storage == "default" else f"journal:///{tmp_path / 'journal' / 'sweep.log'}"
    given = [] if storage == "default" else ["--storage", url]
    base = [*ATTEMPT, "--output", str(tmp_path), *given]
    assert sweep(capsys, *base, "--trials", "2")[0] == 0
    assert len(runs.configs) == 2
    code, out, _ = sweep(capsys, *base, "--trials", "3")
    assert code == 0 and len(runs.configs) == 3
    assert sweep(capsys, *base, "--trials", "3")[0] == 0
    assert len(runs.configs) == 3  # the study has its 3 trials: nothing to add
    if storage == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        url = JournalStorage(JournalFileBackend(str(tmp_path / "journal" / "sweep.log")))
    trials = optuna.load_study(study_name="attempt-rte-g_lr", storage=url).get_trials()
    assert [(t.number, t.state) for t in trials] == [(n, TrialState.COMPLETE) for n in range(3)]
    assert sorted(p.name for p in tmp_path.glob("trial-*")) == ["trial-0", "trial-1", "trial-2"]


def test_a_failed_trial_is_replaced_by_the_rerun(tmp_path, capsys, monkeypatch):
    runs = ScriptedRuns("g_lr", linear)

    def fails_once(config, *args, **kwargs):
        if not runs.configs:
            runs.configs.append(config)
            raise RuntimeError("out of memory")
        return runs(config, *args, **kwargs)

    monkeypatch.setattr("bench.pipeline.runner.run", fails_once)
    base = [*ATTEMPT, "--output", str(tmp_path), "--trials", "2"]
    with pytest.raises(RuntimeError, match="out of memory"):
        main(base)
    assert sweep(capsys, *base)[0] == 0
    trials = trials_of(storage_of(tmp_path), "attempt-rte-g_lr")
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert "Trials: 1 fail, 2 complete" in (tmp_path / "sweep.md").read_text()


def test_a_trial_claimed_past_n_by_a_racing_worker_is_surplus(tmp_path, capsys, monkeypatch):
    """Two workers both see N-1 trials and both ask: the one whose trial number finds N trials
    before it fails that trial as surplus, untrained, and stops."""
    runs = ScriptedRuns("g_lr", linear)
    monkeypatch.setattr("bench.pipeline.runner.run", runs)
    storage, name = storage_of(tmp_path), "attempt-rte-g_lr"
    ask = optuna.Study.ask

    def racing_ask(study, *args, **kwargs):
        if len(study.get_trials()) == 1:  # trial 0 is done: another worker takes the last slot first
            ask(optuna.load_study(study_name=name, storage=storage))
        return ask(study, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "ask", racing_ask)
    code, out, _ = sweep(capsys, *ATTEMPT, "--trials", "2", "--output", str(tmp_path))
    assert code == 0
    trials = trials_of(storage, name)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.RUNNING, TrialState.FAIL]
    assert trials[2].user_attrs["surplus"] is True and trials[2].params == {}
    assert len(runs.configs) == 1 and not (tmp_path / "trial-2").exists()
    assert "trial 2: the study already has its 2 trials: this worker stops" in out
    summary = (tmp_path / "sweep.md").read_text()
    assert "| 2 " not in summary and "1 surplus trial (workers claiming the last slot at once)" in summary


WORKER = """
import sys, time
from pathlib import Path

import bench.pipeline.runner
from test_sweep import ScriptedRuns, linear

log, ready, go = map(Path, sys.argv[1:4])
ready.touch()
deadline = time.time() + 120
while not go.exists() and time.time() < deadline:  # both workers start together
    time.sleep(0.02)
bench.pipeline.runner.run = ScriptedRuns("lr", linear, log=log, pause=0.3)
from bench.cli import main
sys.exit(main(sys.argv[4:]))
"""


def two_workers(tmp_path: Path, storage: str, trials: int, workers_seen: set[int]) -> None:
    """Two `bench sweep` processes on one storage, started together, until the study has `trials`;
    then checks the study's trials. Called again with a larger N, the same study grows to it.
    `workers_seen`: how many distinct worker processes the study's finished trials may name by then."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    log, go = tmp_path / "runs.log", tmp_path / f"go{trials}"
    argv = ["sweep", "--method", "pt", "--tasks", "rte", "--profile", "smoke", "--param", "lr", "--quiet",
            "--trials", str(trials), "--output", str(tmp_path / "out"), "--storage", storage, "--study", "shared"]
    ready = [tmp_path / f"ready{trials}-{i}" for i in range(2)]
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(log), str(flag), str(go), *argv],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for flag in ready]
    deadline = time.time() + 120
    while not all(flag.exists() for flag in ready) and time.time() < deadline:
        time.sleep(0.05)
    go.touch()
    outputs = [worker.communicate(timeout=180) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    runs = log.read_text().splitlines()
    assert len(runs) == trials and len(set(runs)) == trials  # every trial ran once, none twice
    found = optuna.load_study(study_name="shared", storage=storage).get_trials()
    finished = [t for t in found if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == trials
    assert sorted(f"trial-{t.number} seed 0" for t in finished) == sorted(runs)
    assert all(t.user_attrs.get("surplus") for t in found if t not in finished)  # only surplus trials besides
    assert len({t.user_attrs["worker"] for t in finished}) in workers_seen


def six_then_eight(tmp_path: Path, storage: str) -> None:
    """The issue's check: 6 trials by two workers, then the same command with 8 adds exactly 2."""
    two_workers(tmp_path, storage, trials=6, workers_seen={2})  # both trained some of the 6
    two_workers(tmp_path, storage, trials=8, workers_seen={3, 4})  # the new pair took the 2 new ones


def test_two_workers_on_one_sqlite_file_finish_exactly_n_trials_then_grow_to_more(tmp_path):
    six_then_eight(tmp_path, storage_of(tmp_path))


# -- PostgreSQL, a server of its own -----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster on a free localhost port, stopped and removed after the test.
    The server refuses to run as root, so root runs it as the `postgres` user (Debian's package
    makes one); its folder is not under tmp_path, whose parents only root may enter."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    if not found[-1]:
        pytest.skip("PostgreSQL's server binaries are absent (no /usr/lib/postgresql/*/bin/initdb, no initdb on "
                    "PATH): apt-get install postgresql, as .ci/run does")
    pytest.importorskip("psycopg", reason="psycopg (3) is absent: pip install -e '.[postgres]'")
    bin_dir = Path(found[-1]).parent
    as_user, owner = [], None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    if owner:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data, port = folder / "data", free_port()
    run = lambda *argv: subprocess.run([*as_user, *map(str, argv)], check=True, capture_output=True, text=True)
    try:
        run(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        run(bin_dir / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-t", "60", "start",
            "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off")
        try:
            run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "bench")
            yield f"postgresql://postgres@127.0.0.1:{port}/bench"
        finally:
            run(bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_on_one_postgresql_server_finish_exactly_n_trials_then_grow_to_more(tmp_path, postgres):
    six_then_eight(tmp_path, postgres)


# -- summary, plot, export ---------------------------------------------------------------------
def test_without_matplotlib_the_plot_is_a_one_line_note(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bench.pipeline.runner.run", ScriptedRuns("g_lr", linear))
    assert sweep(capsys, *ATTEMPT, "--trials", "1", "--output", str(tmp_path / "with"))[0] == 0
    assert (tmp_path / "with" / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails as where it is absent
    code, out, _ = sweep(capsys, *ATTEMPT, "--trials", "1", "--output", str(tmp_path / "without"))
    assert code == 0 and not (tmp_path / "without" / "sweep.png").exists()
    assert "sweep.png not drawn: plots need matplotlib: pip install -e '.[plots]'" in out


def test_export_is_a_config_bench_run_runs_as_is(tmp_path, capsys):
    """For real, on tiny-t5: sweep on seed 1, export, then `bench run --config` on the config's seed 0."""
    output, best = tmp_path / "sweep", tmp_path / "best.yaml"
    code, out, _ = sweep(capsys, *ATTEMPT, "--trials", "2", "--epochs", "1", "--seeds", "0", "--sweep-seeds", "1",
                         "--output", str(output), "--export", str(best))
    assert code == 0 and f"best configuration written to {best}" in out
    trials = trials_of(storage_of(output), "attempt-rte-g_lr")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    winner = max(trials, key=lambda t: (t.value, -t.number))
    for trial in trials:  # each trial trained the sweep seed, in its own folder, and scored its dev epochs only
        recorded = json.loads(result_file(output / f"trial-{trial.number}", "attempt", "rte", "seed1.json").read_text())
        assert recorded["config"]["method_options"]["g_lr"] == trial.params["g_lr"]
        assert trial.value == max(e["dev_mean"] for e in recorded["epochs"])
        assert (recorded["test_evaluated"], recorded["test"], recorded["test_mean"]) == (False, {}, None)
    exported = yaml.safe_load(best.read_text())
    assert exported["method_options"] == {"prompt_length": 10, "g_lr": winner.params["g_lr"]}
    assert exported["seeds"] == [0] and exported["output"] == str((output / "best").resolve())
    assert exported["train"]["epochs"] == 1 and exported["profile"] == "smoke"
    assert exported["selected_on_seeds"] == [1] and "biased" not in best.read_text()  # selected on another seed
    code, _, err = sweep(capsys, "run", "--config", str(best), "--quiet")
    assert code == 0 and "warning" not in err
    result = json.loads(result_file(output / "best", "attempt", "rte", "seed0.json").read_text())
    assert result["method_config"]["g_lr"] == winner.params["g_lr"] and result["run"]["seed"] == 0
    assert result["test_evaluated"] is True and list(result["test"]) == ["rte"]  # the exported run is tested
    assert result["test_mean"] == result["test"]["rte"]["mean"] and len(result["predictions"]["rte"]) == result["test"]["rte"]["n"]


@pytest.mark.parametrize("sweep_seeds,selected,commented,run_seeds,warned", [
    ([], [0], 0, [], 0),  # no --sweep-seeds: the trials trained the config's seed 0, which the export runs
    ([], [0], 0, ["--seeds", "3"], None),  # fresh seeds at run time
    (["--sweep-seeds", "1"], [1], None, [], None),  # selected on another seed
    (["--seeds", "0,1", "--sweep-seeds", "1,2"], [1, 2], 1, [], 1),  # overlapping: seed 1 only
])
def test_an_export_that_reruns_the_seeds_it_was_selected_on_says_so(tmp_path, capsys, monkeypatch, sweep_seeds,
                                                                    selected, commented, run_seeds, warned):
    from bench.cli import build_parser, grid_plan, resolve_run_config

    monkeypatch.setattr("bench.pipeline.runner.run", ScriptedRuns("g_lr", linear))
    best = tmp_path / "best.yaml"
    assert sweep(capsys, *ATTEMPT, "--trials", "1", "--output", str(tmp_path / "sweep"), "--export", str(best),
                 *sweep_seeds)[0] == 0
    text = best.read_text()
    assert yaml.safe_load(text)["selected_on_seeds"] == selected
    comments = [line for line in text.splitlines() if "biased upward" in line]
    assert comments == ([f"# The parameters were selected on seed {commented}, which this config runs: their test "
                         "scores are biased upward; pass --seeds for fresh ones."] if commented is not None else [])
    grid_plan(build_parser().parse_args(["run", "--config", str(best), *run_seeds]))
    assert capsys.readouterr().err == (
        f"bench: warning: the sweep selected this config's parameters on seed {warned} (selected_on_seeds in "
        f"{best}), which this run trains again: its test score is biased upward; pass --seeds for fresh ones\n"
        if warned is not None else "")
    # a note, not a setting: the config is the one without it, so its runs keep their identity and folder
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({k: v for k, v in yaml.safe_load(text).items() if k != "selected_on_seeds"}))
    configs = [resolve_run_config(build_parser().parse_args(["run", "--config", str(f)])) for f in (best, plain)]
    assert configs[0].as_dict() == configs[1].as_dict()


def test_several_reused_seeds_are_named_together(tmp_path):
    from bench.core.config import selection_warning

    config = tmp_path / "best.yaml"
    config.write_text(yaml.safe_dump({"method": "pt", "selected_on_seeds": [0, 1, 2]}))
    assert selection_warning(str(config), [1, 2, 5]) == (
        f"the sweep selected this config's parameters on seeds 1, 2 (selected_on_seeds in {config}), which this run "
        "trains again: their test scores are biased upward; pass --seeds for fresh ones")
    assert selection_warning(str(config), [5]) is None


# -- the test split -------------------------------------------------------------------------------
def test_trials_evaluate_test_only_when_asked_and_sweep_md_says_which(tmp_path, capsys, monkeypatch):
    runs = ScriptedRuns("g_lr", linear)
    monkeypatch.setattr("bench.pipeline.runner.run", runs)
    assert sweep(capsys, *ATTEMPT, "--trials", "1", "--output", str(tmp_path / "dev"))[0] == 0
    assert "best dev mean; the trials do not evaluate the test split. Storage" in (tmp_path / "dev" / "sweep.md").read_text()
    code, out, _ = sweep(capsys, *ATTEMPT, "--trials", "1", "--output", str(tmp_path / "test"), "--evaluate-test")
    assert code == 0 and runs.evaluate_test == [False, True]
    summary = (tmp_path / "test" / "sweep.md").read_text()
    assert ("best dev mean; the trials score the test split too (--evaluate-test), recorded in their results files "
            "but not used or shown here. Storage") in summary
    assert "87.6" not in summary + out  # ScriptedRuns' test score, in any rounding
    code, _, err = sweep(capsys, *ATTEMPT, "--trials", "2", "--output", str(tmp_path / "test"))
    assert code == 2 and "(they differ in evaluate_test)" in err and runs.evaluate_test == [False, True]


def test_a_trials_results_hold_no_test_scores_and_tables_leave_it_out(tmp_path, capsys):
    """For real (tiny-t5 on CB): the trial's run scores dev only, says so, and a board of the
    sweep folder has no run to show (exit 2, naming why); its progress line shows no test score."""
    code, out, err = sweep(capsys, "sweep", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--param", "lr",
                           "--trials", "1", "--epochs", "1", "--output", str(tmp_path))
    assert code == 0 and ": best dev " in err and "(test not evaluated)" in err and ": test " not in err
    result = json.loads(result_file(tmp_path / "trial-0", "pt", "cb").read_text())
    assert (result["test_evaluated"], result["test"], result["test_mean"], result["predictions"], result["baselines"]) \
        == (False, {}, None, {}, {})
    assert list(result["data"]["cb"]["max_new_tokens"]) == ["validation"]  # test's targets not even tokenised
    assert result["dev"]["cb"]["n"] == result["data"]["cb"]["sizes"]["validation"]  # dev is scored as ever
    assert main(["leaderboard", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"bench: error: no results in {tmp_path} (1 runs without test scores (sweep "
                                       "trials, whose test split is not evaluated) left out)\n")


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("extra,message", [
    (["--param", "lr_task"], "--param 'lr_task' is not in attempt's search space; valid: g_lr, lr"),
    (["--trials", "0"], "argument --trials: takes a positive integer, not '0'"),
    (["--sweep-seeds", "1,1"], "--sweep-seeds '1,1': give distinct seeds, e.g. 0,1"),
    (["--sweep-seeds", "1,x"], "--sweep-seeds takes comma-separated integers, not '1,x'"),
    (["--resume"], "--resume is bench run's: a sweep resumes its study by itself"),
    (["--export", "best.txt"], "--export 'best.txt': give a .yaml or .yml file"),
    (["--storage", "nonsense"], "--storage 'nonsense' is not a storage URL; valid forms: sqlite:///FILE.db, "
                                "postgresql://USER:PASSWORD@HOST/DB, mysql://USER:PASSWORD@HOST/DB, journal:///FILE.log"),
    (["--storage", "postgresql://bench:secret@127.0.0.1:1/db"], "--storage 'postgresql://bench:***@127.0.0.1:1/db' "
                                                                "cannot be opened (connection"),
    (["--storage", "postgresql+pg8000://bench:secret@127.0.0.1:1/db"],
     "--storage 'postgresql+pg8000://bench:***@127.0.0.1:1/db': no database driver for postgresql+pg8000\n"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, monkeypatch, extra, message):
    runs = ScriptedRuns("g_lr", linear)
    monkeypatch.setattr("bench.pipeline.runner.run", runs)
    code, _, err = sweep(capsys, *ATTEMPT, "--trials", "1", "--output", str(tmp_path), *extra)
    assert code == 2 and err.startswith(f"bench: error: {message}") and err.count("\n") == 1
    assert "secret" not in err and not runs.configs


def test_postgresql_without_its_driver_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails as where the extra is absent
    code, _, err = sweep(capsys, *ATTEMPT, "--trials", "1", "--output", str(tmp_path),
                         "--storage", "postgresql://bench@127.0.0.1:1/db")
    assert code == 2 and err == ("bench: error: --storage 'postgresql://bench@127.0.0.1:1/db': no database driver for "
                                 "postgresql+psycopg (pip install -e '.[postgres]')\n")


def test_a_study_run_with_other_settings_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bench.pipeline.runner.run", ScriptedRuns("g_lr", linear))
    base = [*ATTEMPT, "--output", str(tmp_path)]
    assert sweep(capsys, *base, "--trials", "1")[0] == 0
    code, _, err = sweep(capsys, *base, "--trials", "2", "--epochs", "3", "--sweep-seeds", "0,1")
    assert code == 2 and err == (f"bench: error: study 'attempt-rte-g_lr' in sqlite:///{tmp_path}/sweep.db was run "
                                 "with other settings (they differ in config.train.epochs, sweep_seeds): give the "
                                 "same flags, or another --study\n")
    # what may differ between workers or reruns: N, the evaluation seeds, the output folder
    assert sweep(capsys, *ATTEMPT, "--output", str(tmp_path / "elsewhere"), "--storage", storage_of(tmp_path),
                 "--trials", "2", "--seeds", "4", "--sweep-seeds", "0")[0] == 0
    assert len(trials_of(storage_of(tmp_path), "attempt-rte-g_lr")) == 2


def test_a_second_study_in_one_output_folder_is_refused(tmp_path, capsys, monkeypatch):
    """Trial folders are numbered per study: a second study's trial-0 would be the first's."""
    monkeypatch.setattr("bench.pipeline.runner.run", ScriptedRuns("g_lr", linear))
    base = [*ATTEMPT, "--output", str(tmp_path), "--trials", "1"]
    assert sweep(capsys, *base)[0] == 0 and (tmp_path / "trial-0").is_dir()
    code, _, err = sweep(capsys, *base, "--study", "another")
    assert code == 2 and err == (f"bench: error: {tmp_path} holds another study's trial folders (trial-0): give study "
                                 "'another' its own --output\n")
    assert "another" not in optuna.get_all_study_names(storage_of(tmp_path))  # refused before it was created
    assert sweep(capsys, *base, "--trials", "2")[0] == 0  # the folder's own study goes on
