"""Results directory -> markdown leaderboard, with the papers' numbers beside ours.

One table per suite: a numbered row per configuration, a column per task and
the suite average, cells `mean ± std` over runs (seeds × draws) of the metric
the papers report for that task; then invalid predictions and collapsed runs
(at or below their floor, the best constant answer on their test split:
bench/core/baselines.py, bench/studies/stats.py); baseline rows and reference
rows from the published tables with the delta of our average. A second table
gives each numbered row's cost: param/task, peak memory (device memory on CUDA,
resident memory on CPU), the bytes autograd saves for backward in one training
step (deterministic, comparable on any device) and time. `detail=True` adds each row's full stability statistics (CI, min, max,
best of runs) per task and suite average; `plot_score_vs_params` draws the
papers' efficiency figure (score against parameters per task).
"""
from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tabulate import tabulate

from bench.core.baselines import has_test_floor, result_floors, stage_floor
from bench.core.identity import configuration_key, digest, flatten, row_identity
from bench.core.registry import UsageError
from bench.core.results import SKIP_UNREADABLE, Loaded, atomic_write, described
from bench.studies.stats import Stability, row_statistics
from tasks.metrics import metric_range
from tasks.registry import SUITES, TASKS

REFERENCE_DIR = Path(__file__).parent / "reference"
REFERENCE_FILES = (  # T5-base tables first: they are the comparable ones
    "attempt_table1_glue_superglue.csv", "attempt_table2_mrqa_others.csv",
    "mpt_table1_glue_superglue.csv", "mpt_table2_mrqa_others.csv", "amp_table1.csv",
    "attempt_table4_ablation.csv", "mpt_table6_ablation.csv",
)
FEWSHOT_FILES = ("attempt_table3_fewshot.csv", "mpt_table3_fewshot.csv", "mpt_table4_fewshot_glue_superglue.csv")
PAPER_ROWS = {
    "pt": ("PT", "single-task"),
    "spot-g": ("SPoT", "single-task"),
    "spot-t": ("SPoT", "single-task"),
    "attempt": ("ATTEMPT", "single-task"),
    "attempt-m": ("ATTEMPT", "multi-task"),
    "attempt-no-target": ("ATTEMPT", "ablation: no target"),
    "attempt-const": ("ATTEMPT", "ablation: no attention"),
    "attempt-single": ("ATTEMPT", "ablation: single prompt"),
    "mpt": ("MPT", "single-task"),
    "mpt-m": ("MPT", "multi-task"),
    "mpt-no-decomp": ("MPT", "ablation: decomposition=no, distillation=yes"),
    "mpt-no-distill": ("MPT", "ablation: decomposition=yes, distillation=no"),
    "amp": ("AMP", "multi-task"),
}
"""Our method -> the row of the papers' tables it reproduces (variants without one are absent)."""


def report_metric(task_name: str) -> str:
    return TASKS.get(task_name).report_metric


def paper_method(method: str, k_shot: int = 0) -> tuple[str, str] | None:
    """Our method name -> (the papers' method name, setting); few-shot rows are `k=K`."""
    row = PAPER_ROWS.get(method)
    if row is None:
        return None
    return (row[0], f"k={k_shot}") if k_shot else row


class Reference(NamedTuple):
    value: float
    citation: str
    backbone: str
    """As the papers name it: `t5-base`, `roberta-base`."""


def reference_scores(method: str, k_shot: int = 0) -> dict[str, Reference]:
    """dataset -> the published value, its citation and backbone, for the method's row in the papers."""
    wanted = paper_method(method, k_shot)
    if wanted is None:
        return {}
    found: dict[str, Reference] = {}
    for name in REFERENCE_FILES + FEWSHOT_FILES * bool(k_shot):
        with open(REFERENCE_DIR / name, newline="") as handle:
            for row in csv.DictReader(handle):
                if (row["method"], row["setting"]) == wanted and row["dataset"] not in found:
                    found[row["dataset"]] = Reference(float(row["value"]), f"{row['paper'].split(' (')[0]} {row['table']} "
                                                      f"({row['backbone']})", row["backbone"])
    return found


def comparable(result: dict, reference: Reference) -> bool:
    """Our numbers are set against a paper's only on its backbone, with its schedule (profile
    `paper`, no caps) and real data: anything else would compare different experiments."""
    run, train = result["run"], result["identity"]["train"]
    real_data = all(data["source"]["kind"] != "fixtures" for data in result["identity"]["data"].values())
    return (run["profile"] == "paper" and run["backbone"].split("/")[-1] == reference.backbone and real_data
            and not train["max_train_examples"] and not train["max_eval_examples"])


def fmt(stat: Stability | None) -> str:
    """A leaderboard cell: mean ± std over runs (a lone run's score has no ±)."""
    if stat is None:
        return "–"
    if stat.std is None:
        return f"{stat.mean:.1f}"
    return f"{stat.mean:.1f} ± {stat.std:.1f}"


def human_bytes(n: float | None) -> str:
    if not n:
        return "–"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024


def human_count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return f"{n:.0f}"


def suite_of(task_names: set[str]) -> str:
    for suite, members in SUITES.items():
        if task_names <= set(members):
            return suite
    return "custom"


def leaderboard(directory: Path, loaded: Loaded, detail: bool = False, per_task: tuple[str, ...] = ()) -> str:
    """`loaded`: the folder as read (`load_results`: once for every table a command draws from it).
    `per_task`: method options that may differ from task to task within one row (see
    `configuration_rows`); a name no result's method has is refused in one line."""
    results, skipped = loaded.results, left_out(loaded)
    if not results:
        return f"No results in {directory}.{skipped}\n"
    options = {name for result in results for name in result["identity"]["method_config"]}
    unknown = [name for name in per_task if name not in options]
    if unknown:
        raise UsageError(f"--per-task {','.join(unknown)}: not a method option of these results; "
                         f"valid: {', '.join(sorted(options))}")
    by_suite: dict[str, list[dict]] = defaultdict(list)
    for result in results:
        by_suite[result["run"]["suite"] or suite_of(set(result["run"]["tasks"]))].append(result)
    sections = [f"# Leaderboard\n\nFrom `{directory}`: {len(results)} runs. Cells: mean ± std over a row's runs "
                f"(`runs`: seeds × few-shot draws; test split); a row is one configuration."
                f"{skipped}{fallback_note(results, directory)}"]
    for suite, suite_results in by_suite.items():
        sections.append(suite_table(suite, suite_results, detail, per_task))
    return "\n\n".join(sections) + "\n"


def left_out(loaded: Loaded) -> str:
    """What the board leaves out, said in its header, so that a saved board never looks complete
    when runs are missing from it."""
    skipped = f"Skipped ({SKIP_UNREADABLE}): {described(loaded.skipped)}" if loaded.skipped else ""
    return "".join(f" {part}." for part in (loaded.note(), skipped) if part)


def fallback_note(results: list[dict], directory: Path) -> str:
    """Where results predate test floors, `collapsed` holds them to their trained majority
    (bench/core/baselines.py): the board says so, and how to add the floors."""
    old = sum(not has_test_floor(result) and bool(result_floors(result)) for result in results)
    return (f" Floors of {old} results are their training rows' majority (made before test floors; "
            f"`bench floors {directory} --write` adds them)." if old else "")


def configuration_rows(results: list[dict], per_task: tuple[str, ...] = ()) -> list[list[dict]]:
    """Results grouped into leaderboard rows: one configuration each (bench/core/identity.py), seeds
    and few-shot draws aside. Where a task has results of several configurations that share
    everything else (its data changed), each gets a row of its own: nothing is ever averaged
    with another configuration's numbers. The method options named `per_task` may differ
    between a row's tasks (a leave-one-out design gives each target its own sources), never
    within one task's cell; an oracle run (`is_oracle`) never shares a row with transfer runs."""
    rows: dict[tuple[tuple[str, bool], int], list[dict]] = defaultdict(list)
    variants: dict[tuple[tuple[str, bool], tuple], list[str]] = defaultdict(list)
    for result in results:
        shared = (digest(row_identity(result["identity"], per_task, requested_pair_encoding(result))), is_oracle(result))
        configurations = variants[(shared, tuple(result["run"]["tasks"]))]
        configuration = configuration_key(result["identity"])
        if configuration not in configurations:
            configurations.append(configuration)
        rows[(shared, configurations.index(configuration))].append(result)
    return list(rows.values())


def requested_pair_encoding(result: dict) -> str:
    """What a run asked for (`--train pair_encoding`; results made before the setting ran joint)."""
    return result["config"]["train"].get("pair_encoding", "joint")


def is_oracle(result: dict) -> bool:
    """Whether a run's sources include its own target: the target's full-data prompt is then
    among the sources, a positive control on purpose, never a transfer result. The sources are
    the tasks the method's own `option_tasks` resolves (suite names, aliases), as the run read them."""
    from methods.registry import METHODS, SOURCE_OPTIONS

    options, tasks = result["identity"]["method_config"], result["run"]["tasks"]
    if not any(options.get(option) for option in SOURCE_OPTIONS):  # no sources to read (PT, head-only, ...)
        return False
    config = METHODS.get(result["run"]["method"]).make_config(options)
    named = config.option_tasks(tasks) if hasattr(config, "option_tasks") else {}
    return bool({task for option in SOURCE_OPTIONS for task in named.get(option, ())} & set(tasks))


def oracle_label(row: list[dict]) -> list[str]:
    """`oracle` on a row of oracle runs (`configuration_rows` keeps them apart from the others)."""
    return ["oracle: own task as source"] if any(is_oracle(result) for result in row) else []


def differing_settings(rows: list[list[dict]], per_task: tuple[str, ...] = ()) -> list[str]:
    """For each row, the settings in which it differs from other rows of the same method,
    preset, backbone and profile (e.g. `epochs=1`), so that such rows can be told apart; the
    `per_task` options that differ between its tasks (`sources per task`); and `oracle` where its
    sources include its target (`oracle_label`)."""
    flat = [flatten(row_identity(row[0]["identity"], per_task, requested_pair_encoding(row[0]))) for row in rows]
    kind = lambda row: tuple(row[0]["run"][k] for k in ("method", "preset", "backbone", "profile", "k_shot"))
    signatures = [task_settings(row) for row in rows]  # an earlier row sharing one is a data variant's
    labels = []
    for index, (row, settings) in enumerate(zip(rows, flat)):
        peers = [(other, r) for other, r in zip(flat, rows) if kind(r) == kind(row)]
        keys = sorted(k for k in settings if any(other.get(k) != settings[k] for other, _ in peers))
        label = ", ".join([f"{k.rsplit('.', 1)[-1]}={settings[k]}" for k in keys] +
                          per_task_labels(row, [r for _, r in peers if r is not row], per_task) + oracle_label(row))
        variant = sum(1 for earlier in signatures[:index] if earlier & signatures[index])
        labels.append(label + (f"{', ' if label else ''}data variant {variant + 1}" if variant else ""))
    return labels


def task_settings(row: list[dict]) -> set[tuple]:
    """(task set, every setting) of each result of a row: an earlier row that holds one of them
    differs from this row only in that task's data content (configuration_rows split them)."""
    return {(tuple(r["run"]["tasks"]), digest(row_identity(r["identity"], (), requested_pair_encoding(r)))) for r in row}


def per_task_labels(row: list[dict], peers: list[list[dict]], per_task: tuple[str, ...]) -> list[str]:
    """`name per task` where the option differs between the row's tasks; `name=value` where it is
    one value that another row of the same method has not."""
    def values(results: list[dict], name: str) -> set[str]:
        return {json.dumps(r["identity"]["method_config"].get(name)) for r in results}

    labels = []
    for name in per_task:
        own = values(row, name)
        if len(own) > 1:
            labels.append(f"{name} per task")
        elif any(values(peer, name) != own for peer in peers):
            labels.append(f"{name}={row[0]['identity']['method_config'].get(name)}")
    return labels


def invalid_share(results: list[dict]) -> str:
    """Test predictions outside the task's label set, over all runs of a row."""
    invalid = sum(test["invalid"] for r in results for test in r["test"].values())
    total = sum(test["n"] for r in results for test in r["test"].values())
    return f"{invalid}/{total}" if total else "–"


TOKENIZER_NAMES = {"ptb": "the Stanford PTB tokenizer, as the E2E scorer", "13a": "sacrebleu's 13a stand-in "
                   "(no Java or pycocoevalcap here), not comparable with the E2E scorer's values"}


def tokenizer_note(results: list[dict]) -> str:
    """Which tokens ROUGE-L and CIDEr-D were computed on, where a task reports them."""
    used = sorted({test["details"]["tokenizer"] for r in results for test in r["test"].values()
                   if "tokenizer" in test.get("details", {})})
    return f" ROUGE-L and CIDEr-D tokenised with {' and '.join(TOKENIZER_NAMES[t] for t in used)}." if used else ""


def floor_rows(results: list[dict], present: list[str], columns: "RowColumns") -> list[list[str]]:
    """The baseline rows, per k (0: full training sets). *best constant (test)*: each task's floor,
    the best constant answer on its test split (`baselines.floor`), one value per test split: the
    draws of a k share theirs, so nothing is averaged over draws (the mean over test splits where
    a board holds several of a task). *trained majority*: always answering the most frequent label
    of the runs' own training rows (`baselines.majority`), a few-shot draw's own, the mean over
    draws; shown only where it differs from the floor (or stands in for one that old results
    lack), since it is not the floor: a 16-row draw of MRPC answers "0" on a test split that is
    68.1% "1"."""
    floors: dict[int, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
    majorities: dict[int, dict[str, dict]] = defaultdict(lambda: defaultdict(dict))
    for result in results:
        run = result["run"]
        for task, floor in result.get("baselines", {}).get("floor", {}).items():
            split = result["data"][task]["fingerprints"]["test"]
            floors[run["k_shot"]][task].setdefault(split, floor["metrics"][report_metric(task)])
        for task, majority in result.get("baselines", {}).get("majority", {}).items():
            majorities[run["k_shot"]][task].setdefault(run["draw"], majority["metrics"][report_metric(task)])
    rows = []
    for k_shot in sorted({*floors, *majorities}):
        best, trained = baseline_cells(floors[k_shot], present), baseline_cells(majorities[k_shot], present)
        if set(best) != {"–"}:
            rows.append(baseline_row("*best constant (test)*", k_shot, best, columns))
        if trained != best:
            rows.append(baseline_row(f"*trained majority ({k_shot}-row draws)*" if k_shot else "*trained majority*",
                                     k_shot, trained, columns))
    return rows


def baseline_cells(values: dict[str, dict], present: list[str]) -> list[str]:
    """Per task the mean of its values (one per test split, or per draw), "–" where it has none;
    then their average over the tasks (where every task has one)."""
    scores = {task: float(np.mean(list(found.values()))) for task, found in values.items() if found}
    average = f"{np.mean([scores[t] for t in present]):.1f}" if all(t in scores for t in present) else "–"
    return [*(f"{scores[t]:.1f}" if t in scores else "–" for t in present), average]


def baseline_row(label: str, k_shot: int, cells: list[str], columns: "RowColumns") -> list[str]:
    """A baseline row of the board: its task cells and average, the run columns blank."""
    return ["", label, f"k={k_shot}" if k_shot else "baseline", *columns.run_blanks, "", *cells, "", "", ""]


class RowColumns(NamedTuple):
    """The columns between a row's setting and its runs that the board shows: `preset` only where
    its rows differ in it (else the header names it), `differs in` only where some row has a label."""
    preset: bool
    differs: bool

    @property
    def run_blanks(self) -> list[str]:
        """Blank cells for a baseline row, up to `runs`: backbone, then the optional columns."""
        return [""] * (1 + self.preset + self.differs)

    def cells(self, preset: str, backbone: str, differs: str) -> list[str]:
        return [*([preset] if self.preset else []), backbone, *([differs] if self.differs else [])]

    def headers(self) -> list[str]:
        return self.cells("preset", "backbone", "differs in")


def suite_table(suite: str, results: list[dict], detail: bool = False, per_task: tuple[str, ...] = ()) -> str:
    """The suite's board: scores per row (numbered), its baselines and the papers' rows; then what
    each numbered row cost, in a table of its own so that neither runs off the screen."""
    tasks = list(SUITES.get(suite)) if suite in SUITES else sorted({t for r in results for t in r["run"]["tasks"]})
    present = [t for t in tasks if any(t in r["test"] for r in results)]
    complete_suite = present == tasks
    rows = sorted(configuration_rows(results, per_task), key=lambda row: [row[0]["run"][k] for k in
                                                                          ("method", "k_shot", "preset", "backbone", "profile")])
    settings = differing_settings(rows, per_task)
    presets = sorted({row[0]["run"]["preset"] for row in rows})
    columns = RowColumns(preset=len(presets) > 1, differs=any(settings))
    headers = ["#", "method", "setting", *columns.headers(), "runs", *present, "avg", "Δ paper avg", "invalid",
               "collapsed"]
    table, costs, weak_notes = [], [], []
    for number, (row, setting) in enumerate(zip(rows, settings), 1):
        run = row[0]["run"]
        method, k_shot = run["method"], run["k_shot"]
        per_task, average = row_statistics(row, present)
        runs = {(r["run"]["seed"], r["run"]["draw"]) for r in row}
        reference = reference_scores(method, k_shot).get(f"avg_{suite}")
        delta = (f"{average.mean - reference.value:+.1f}"
                 if reference and average and complete_suite and all(comparable(r, reference) for r in row) else "–")
        weak = weak_stages(row)
        if weak:
            weak_notes.append(f"Weak sources: row {number}, {method}, started from stages at or below their floor: "
                              f"{'; '.join(weak)}.")
        table.append([str(number), method, setting_label(method, k_shot), *columns.cells(run["preset"], backbone_label(row), setting),
                      len(runs), *[fmt(per_task.get(t)) for t in present], fmt(average), delta, invalid_share(row),
                      collapsed_share(per_task.values())])
        costs.append([str(number), method, human_count(row[0]["params"]["param_per_task"]),
                      human_bytes(max(r["memory"]["peak_device_bytes"] or r["memory"]["peak_rss_bytes"] for r in row)),
                      human_bytes(max(r["memory"]["autograd_saved_bytes_first_step"] for r in row)),
                      human_seconds(np.mean([busy_seconds(r) for r in row])),
                      human_seconds(sum(busy_seconds(r) for r in row))])
    table += floor_rows(results, present, columns)
    table += paper_rows(rows, suite, present, complete_suite, columns)
    metrics = ", ".join(f"{t}: {report_metric(t)}" for t in present)
    note = "" if complete_suite else f" Only {len(present)} of the suite's {len(tasks)} tasks ran: no suite delta."
    note += tokenizer_note(results)
    note += (" Δ paper avg: our average minus the paper's, only for runs on the paper's backbone with its "
             "schedule (profile `paper`) and real data; the papers' rows are otherwise shown for context.")
    note += f" Every row's preset: `{presets[0]}`." if not columns.preset else ""
    markdown = (f"## {suite}\n\nMetrics: {metrics}. `runs` counts seeds × few-shot draws; `invalid` counts test "
                f"predictions outside the label set; `collapsed` counts test scores (run × task) at or below their "
                f"floor: the best constant answer on the split they are scored on (*best constant (test)*, per metric: "
                f"the test split's majority label's accuracy, the positive class's F1, 0 correlation). *trained "
                f"majority*, shown where it differs, always answers the most frequent label of the runs' own training "
                f"rows (each few-shot draw's; the mean over draws): no floor. A backbone's brackets name the profile "
                f"where it is not the papers' and, for an encoder on pair tasks, how it read the pairs.{note}\n\n"
                + tabulate(table, headers, tablefmt="github", disable_numparse=True)
                + "".join(f"\n\n{note}" for note in weak_notes)
                + f"\n\nCost of each row (#): trainable parameters per task, peak memory (device on CUDA, resident on "
                  f"CPU), the bytes autograd saves for backward in one training step, mean wall time per run and "
                  f"the row's wall time in all (its runs' sum: a library stage, such as a source mixture, counts in the "
                  f"run that trained it, and in no run where it came from an earlier one; a run's wait for a stage that "
                  f"another process was training is left out).\n\n"
                + tabulate(costs, ["#", "method", "param/task", "peak memory", "saved activations", "time/run",
                                   "time in all"],
                           tablefmt="github", disable_numparse=True))
    return markdown + ("\n\n" + detail_table(suite, rows, present) if detail else "")


def paper_rows(rows: list[list[dict]], suite: str, present: list[str], complete_suite: bool,
               columns: RowColumns) -> list[list[str]]:
    """The papers' rows of the board's methods, citation in the backbone column; a row with no
    value on any task the board shows is left out (it would be a line of dashes)."""
    papers = {paper_method(row[0]["run"]["method"], row[0]["run"]["k_shot"]): (row[0]["run"]["method"], row[0]["run"]["k_shot"])
              for row in rows}
    table = []
    for paper_row, (method, k_shot) in papers.items():
        reference = reference_scores(method, k_shot)
        if not any(t in reference for t in present):
            continue
        cite = next(iter(reference.values()))[1]
        avg = reference.get(f"avg_{suite}")
        table.append(["", f"*{paper_row[0]} (paper)*", paper_row[1], *columns.cells("", cite, ""), "",
                      *[f"{reference[t][0]:.1f}" if t in reference else "–" for t in present],
                      f"{avg[0]:.1f}" if avg and complete_suite else "–", "", "", ""])
    return table


def backbone_label(row: list[dict]) -> str:
    """The backbone, with its profile where not the papers' and, for an encoder row with a pair task,
    how it read the pairs (`joint`: one segment; `two-tower`: each text alone): a MiniLM score
    means something else in each form. Results made before the setting ran joint."""
    run = row[0]["run"]
    notes = [f"profile {run['profile']}"] if run["profile"] != "paper" else []
    if row[0]["params"].get("head") and any(TASKS.get(t).pair_fields for r in row for t in r["run"]["tasks"]):
        notes.append(row[0]["identity"]["train"].get("pair_encoding", "joint").replace("_", "-"))
    return f"{run['backbone']} ({', '.join(notes)})" if notes else run["backbone"]


def busy_seconds(result: dict) -> float:
    """A run's wall time less its waits for library stages that another process was training
    (`waited_seconds` of its stage records): idle time, no cost of its method."""
    return result["timing"]["wall_seconds"] - sum(stage.get("waited_seconds", 0.0) for stage in result.get("stages", []))


def weak_stages(row: list[dict]) -> list[str]:
    """The source stages a row's runs started from whose own test score is at or below their floor
    (bench/pipeline/stages.py records them; a stage made before floors names its training
    majority instead): what they transfer was not learned. A stage on the run's own task
    (SPoT-t's task embedding, AMP's prompts) transfers nothing."""
    found = {}
    for result in row:
        for stage in result.get("stages", []):
            name, floors = stage_floor(stage)
            for task in [t for t in stage.get("weak", []) if t not in result["run"]["tasks"]]:
                found[(stage["method"], task)] = (f"{stage['method']} on {task} (test {stage['test'][task]:.1f} ≤ "
                                                  f"{name} {floors[task]:.1f})")
    return [found[key] for key in sorted(found)]


def collapsed_share(stats) -> str:
    """Collapsed test scores over all scores that have a floor, as `invalid` counts."""
    floored = [stat for stat in stats if stat.collapsed is not None]
    return f"{sum(s.collapsed for s in floored)}/{sum(s.floored for s in floored)}" if floored else "–"


def detail_table(suite: str, rows: list[list[dict]], present: list[str]) -> str:
    """Every row's stability statistics per task and suite average (bench/studies/stats.py): where a
    mean ± std cell hides a collapsed seed or a wide interval, this shows it."""
    table = []
    for number, row in enumerate(rows, 1):
        label = f"{number} ({row[0]['run']['method']})"
        per_task, average = row_statistics(row, present)
        for task, stat in [*per_task.items(), *([("avg", average)] if average and len(present) > 1 else [])]:
            table.append([label, task, stat.n, f"{stat.mean:.1f}", "–" if stat.std is None else f"{stat.std:.1f}",
                          "–" if stat.ci is None else clipped_interval(stat.ci, present if task == "avg" else [task]),
                          f"{stat.min:.1f}",
                          f"{stat.max:.1f}", f"{stat.best:.1f} (best of {stat.n})",
                          "–" if stat.collapsed is None else f"{stat.collapsed}/{stat.floored}"])
    headers = ["#", "task", "runs", "mean", "std", "95% CI", "min", "max", "best of runs", "collapsed"]
    return (f"### {suite}: stability over runs\n\nPer row (#, as numbered on the board), task and suite average (`avg`: per run, the mean over the tasks; "
            "only runs that have every task). 95% CI: Student t over runs, two-sided (none for one run). "
            "Best of runs: the highest score (for `avg`, the mean of each task's best run): what a table of "
            "best-of-N cells reports, an upper bound that flatters, not an expected score. Collapsed: runs at or "
            "below their floor, the best constant answer on the split they are scored on (`avg`: the mean of the "
            "tasks' floors). An interval end marked * is clipped to the values the metric can take.\n\n"
            + tabulate(table, headers, tablefmt="github", disable_numparse=True))


def clipped_interval(ci: tuple[float, float], tasks: list[str]) -> str:
    """A t interval clipped to the values the tasks' report metrics can take (an accuracy's mean is
    never below 0: n = 2 gives intervals as wide as [-106.3, 211.3]); a clipped end is marked *."""
    ranges = [metric_range(report_metric(task)) for task in tasks]
    low, high = max(ci[0], min(r[0] for r in ranges)), min(ci[1], max(r[1] for r in ranges))
    return f"[{low:.1f}{'*' if low != ci[0] else ''}, {high:.1f}{'*' if high != ci[1] else ''}]"


def setting_label(method: str, k_shot: int) -> str:
    if k_shot:
        return f"k={k_shot}"
    from methods.registry import METHODS

    return "multi-task" if METHODS.get(method).multi_task else "single-task"


def human_seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


def plot_score_vs_params(results: list[dict], directory: Path, out: Path) -> Path:
    """The papers' efficiency figure: per task, each leaderboard row's test score (mean ± std over
    runs) against its trainable parameters per task, on a log axis (ATTEMPT's Figure 1, MPT's
    Figure 1): which method buys its score with how many parameters. `results`: those of
    `directory` the board read (at least one: `require_results`)."""
    from bench.studies.plots import PLOTS_EXTRA, task_order

    rows = configuration_rows(results)
    tasks = task_order({task for result in results for task in result["test"]})
    several_backbones = len({row[0]["run"]["backbone"] for row in rows}) > 1
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(f"plots need matplotlib: {PLOTS_EXTRA}") from None
    columns = min(3, len(tasks))
    figure, axes = plt.subplots(-(-len(tasks) // columns), columns, figsize=(4.2 * columns, 3.4 * -(-len(tasks) // columns)),
                                squeeze=False)
    colors = {}
    for task, ax in zip(tasks, axes.flat):
        for row in rows:
            per_task, _ = row_statistics(row, [task])
            if task not in per_task:
                continue
            run = row[0]["run"]
            label = run["method"] + (f" ({run['backbone'].split('/')[-1]})" if several_backbones else "")
            color = colors.setdefault(label, f"C{len(colors) % 10}")
            stat = per_task[task]
            ax.errorbar(row[0]["params"]["param_per_task"], stat.mean, yerr=stat.std or 0.0, fmt="o", color=color,
                        capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_title(f"{task} ({report_metric(task)})", fontsize=10)
        ax.set_xlabel("trainable parameters per task")
        ax.set_ylabel("test score, mean ± std" if ax in axes[:, 0] else "")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    handles = {label: handle for ax in axes.flat for handle, label in zip(*ax.get_legend_handles_labels())}
    figure.legend(handles.values(), handles.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    figure.suptitle(f"score against parameters per task ({directory})", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    plt.close(figure)
    atomic_write(Path(out), buffer.getvalue())
    return Path(out)
