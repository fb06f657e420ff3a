"""No silent loss: a results folder holding an unreadable results file is refused by every command
that reads one (exit 2, one line naming each file and why), `--skip-unreadable` reads the rest and
says what it skipped, other JSON files are no results files, and runs whose test split was not
evaluated (sweep trials) are left out and counted.

The runs are the committed MiniLM ones (leaderboards/minilm-glue): PT on SST-2, seeds 0, 1, 2
score 80.0459, 78.0963, 80.2752 on test. All three: 79.47 ± 1.20 (79.5 ± 1.2); without seed 1:
(80.0459 + 80.2752) / 2 = 80.16 ± 0.2293 / √2 = 0.16 (80.2 ± 0.2), the move issue 21 saw."""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

import bench.core.results
import bench.studies.plots
from bench.cli import main
from helpers import board_rows

BOARD = Path(__file__).resolve().parent.parent / "leaderboards" / "minilm-glue"
CONFIGURATION = {"pt": "6a3d7bec620b", "spot-g": "39462ebfda36", "attempt": "b692ad5d1b66"}
"""The SST-2 configuration folder of each method on the committed board."""
SEED1 = "pt/sst2/6a3d7bec620b/seed1.json"
REFUSED = "repair or remove it, or give --skip-unreadable to read the rest\n"


def copy_runs(root: Path, *methods: str) -> Path:
    """The committed SST-2 runs of `methods` (three seeds each) under `root/runs`, as the runner left them."""
    for method in methods:
        folder = Path(method, "sst2", CONFIGURATION[method])
        shutil.copytree(BOARD / folder, root / "runs" / folder, ignore=shutil.ignore_patterns("*.safetensors"))
    return root / "runs"


def truncate(path: Path) -> None:
    """Cut the file inside its line 40, as an interrupted copy would."""
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[39][: len(lines[39].rstrip()) - 3]
    assert kept.strip(), "line 40 must keep some content"
    path.write_text("".join(lines[:39]) + kept)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rows(markdown: str) -> dict[str, dict[str, str]]:
    """The first table's rows by method (its first column)."""
    return {row["method"]: row for row in board_rows(markdown) if row["method"] in CONFIGURATION}


@pytest.fixture
def runs(tmp_path) -> Path:
    return copy_runs(tmp_path, "pt")


def test_readable_the_cell_holds_three_seeds(runs, capsys):
    code, out, err = cli(capsys, "leaderboard", str(runs))
    assert code == 0 and err == ""
    assert f"From `{runs}`: 3 runs." in out
    assert (rows(out)["pt"]["runs"], rows(out)["pt"]["sst2"]) == ("3", "79.5 ± 1.2")


def test_a_truncated_results_file_is_refused_naming_it(runs, capsys):
    truncate(runs / SEED1)
    code, out, err = cli(capsys, "leaderboard", str(runs))
    assert code == 2 and out == ""
    assert err == (f"bench: error: {runs} holds 1 unreadable results file: {SEED1} (truncated JSON at line 40); "
                   + REFUSED)


@pytest.mark.parametrize("content, reason", [
    ("{}", "empty object"),
    ("", "empty file"),
    ("[1, 2]", "not a JSON object (an array)"),
    ("null", "not a JSON object (null)"),
    ('{"a": 1 "b": 2}', "invalid JSON at line 1 column 9 (Expecting ',' delimiter)"),
    ("{} x", "invalid JSON at line 1 column 4 (Extra data)"),  # complete, then more: not cut short
    ('{\n"run": {"method": "p', "truncated JSON at line 2"),  # cut inside a string
    ('{"run": {}}', "not a results file: no `schema_version`"),
    ('{"schema_version": 2, "run": {}}', "not a results file: no `test`"),
    (b"\xff\xfe{}", "not UTF-8 text (byte 0)"),
])
def test_each_kind_of_unreadable_results_file_is_named_with_why(runs, capsys, content, reason):
    path = runs / SEED1
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    code, _, err = cli(capsys, "leaderboard", str(runs))
    assert code == 2 and err == f"bench: error: {runs} holds 1 unreadable results file: {SEED1} ({reason}); " + REFUSED


def test_a_file_that_cannot_be_opened_is_named(runs, capsys, monkeypatch):
    read_text, denied = Path.read_text, runs / SEED1  # as chmod 000 would, also where tests run as root
    monkeypatch.setattr(Path, "read_text", lambda path, *args, **kwargs: (
        (_ for _ in ()).throw(PermissionError(13, "Permission denied")) if path == denied
        else read_text(path, *args, **kwargs)))
    code, _, err = cli(capsys, "leaderboard", str(runs))
    assert code == 2 and f"{SEED1} (cannot be read (Permission denied))" in err


def test_every_bad_file_is_named_in_one_line_in_path_order(runs, capsys):
    few_shot = runs / "pt" / "sst2" / "6a3d7bec620b" / "k16-draw2-seed0.json"  # the few-shot name is a results name too
    few_shot.write_text("[]")
    truncate(runs / SEED1)
    code, _, err = cli(capsys, "leaderboard", str(runs))
    assert code == 2 and err.count("\n") == 1
    assert err == (f"bench: error: {runs} holds 2 unreadable results files: pt/sst2/6a3d7bec620b/k16-draw2-seed0.json "
                   f"(not a JSON object (an array)); {SEED1} (truncated JSON at line 40); repair or remove them, or "
                   "give --skip-unreadable to read the rest\n")


def test_skip_unreadable_reads_the_rest_and_counts_what_it_read(runs, capsys):
    truncate(runs / SEED1)
    code, out, err = cli(capsys, "leaderboard", str(runs), "--skip-unreadable")
    assert code == 0
    assert err == (f"bench: skipped {runs / SEED1}: truncated JSON at line 40\n"
                   "bench: 1 unreadable results file skipped (--skip-unreadable)\n")
    assert (f"From `{runs}`: 2 runs. Cells: mean ± std over a row's runs (`runs`: seeds × few-shot draws; test split); a row is one configuration. "
            f"Skipped (--skip-unreadable): 1 unreadable results file: {SEED1} (truncated JSON at line 40).") in out
    assert (rows(out)["pt"]["runs"], rows(out)["pt"]["sst2"]) == ("2", "80.2 ± 0.2")


def test_other_json_files_are_not_results_and_results_under_another_name_are(runs, capsys):
    """An exported adapter, its provenance, a baseline, a tracker's summary, even a broken one, are
    ignored; a results object under any name is read (4 runs: seed 0 twice)."""
    folder = runs / "pt" / "sst2" / "6a3d7bec620b"
    (runs / "adapter").mkdir()
    (runs / "adapter" / "adapter_config.json").write_text(json.dumps({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 10}))
    (runs / "adapter" / "bench_export.json").write_text(json.dumps({"result": "x", "task": "sst2"}))
    (runs / "baseline.json").write_text(json.dumps({"schema": 1, "results": "runs", "entries": []}))
    (runs / "wandb-summary.json").write_text('{"loss": 0.3, ')  # cut short, but not a results file
    (runs / "list.json").write_text("[]")
    shutil.copy(folder / "seed0.json", folder / "renamed.json")
    code, out, err = cli(capsys, "results", str(runs), "--out", str(runs.parent / "table.csv"))
    assert (code, err) == (0, "")
    assert out == f"8 rows from 4 runs written to {runs.parent / 'table.csv'}\n"  # dev and test accuracy per run


def test_an_object_with_run_and_schema_version_must_be_a_whole_results_file(runs, capsys):
    (runs / "notes.json").write_text(json.dumps({"schema_version": 2, "run": {"method": "pt"}}))
    code, _, err = cli(capsys, "leaderboard", str(runs))
    assert code == 2 and "1 unreadable results file: notes.json (not a results file: no `test`)" in err


def test_results_refuses_and_skips_as_the_leaderboard(runs, capsys, tmp_path):
    (runs / SEED1).write_text("{}")
    code, out, err = cli(capsys, "results", str(runs))
    assert (code, out) == (2, "") and err == f"bench: error: {runs} holds 1 unreadable results file: {SEED1} (empty object); " + REFUSED
    code, out, err = cli(capsys, "results", str(runs), "--skip-unreadable")
    assert code == 0 and err.endswith("bench: 1 unreadable results file skipped (--skip-unreadable)\n")
    table = list(csv.DictReader(io.StringIO(out)))
    assert [(row["seed"], row["split"]) for row in table] == [("0", "dev"), ("0", "test"), ("2", "dev"), ("2", "test")]
    assert [float(row["value"]) for row in table if row["split"] == "test"] == [80.04587155963303, 80.27522935779817]


def test_baseline_refuses_and_skipping_records_the_runs_read(runs, capsys, tmp_path):
    truncate(runs / SEED1)
    code, _, err = cli(capsys, "baseline", str(runs), "--out", str(tmp_path / "baseline.json"))
    assert code == 2 and f"{SEED1} (truncated JSON at line 40)" in err and not (tmp_path / "baseline.json").exists()
    code, out, err = cli(capsys, "baseline", str(runs), "--out", str(tmp_path / "baseline.json"), "--skip-unreadable")
    assert code == 0 and "| pt       | sst2   |" in out and "80.16 ± 0.16 (n=2)" in out
    [entry] = json.loads((tmp_path / "baseline.json").read_text())["entries"]
    assert (entry["n"], [run["seed"] for run in entry["runs"]]) == (2, [0, 2])


def test_check_refuses_and_skipping_tells_the_seeds_apart(runs, capsys, tmp_path):
    """A baseline of three seeds against a folder that lost one: refused for the file, and with the
    flag refused again for the seeds, never a check of two seeds passed off as three."""
    baseline = tmp_path / "baseline.json"
    assert cli(capsys, "baseline", str(runs), "--out", str(baseline))[0] == 0
    truncate(runs / SEED1)
    code, out, err = cli(capsys, "check", str(runs), "--baseline", str(baseline))
    assert (code, out) == (2, "") and err.count("\n") == 1 and f"{SEED1} (truncated JSON at line 40)" in err
    code, _, err = cli(capsys, "check", str(runs), "--baseline", str(baseline), "--skip-unreadable")
    assert code == 2 and "seeds 0, 2 here; 0, 1, 2 in the baseline: not the same runs" in err


def test_compare_refuses_and_skipping_compares_the_runs_read(tmp_path, capsys, shared_data_cpu):
    a, b = copy_runs(tmp_path / "a", "pt"), copy_runs(tmp_path / "b", "pt")
    truncate(a / SEED1)
    code, out, err = cli(capsys, "compare", "pt", "pt", "--results", str(a), "--results", str(b))
    assert (code, out) == (2, "") and err == f"bench: error: {a} holds 1 unreadable results file: {SEED1} (truncated JSON at line 40); " + REFUSED
    code, out, err = cli(capsys, "compare", "pt", "pt", "--results", str(a), "--results", str(b), "--json",
                         "--resamples", "200", "--skip-unreadable")
    assert code == 0 and f"bench: skipped {a / SEED1}: truncated JSON at line 40\n" in err
    [task] = json.loads(out)["tasks"]
    assert (task["a"]["n"], task["b"]["n"]) == (2, 3)
    assert task["a"]["mean"] == pytest.approx((80.04587155963303 + 80.27522935779817) / 2)


def test_leaderboard_reads_once_for_its_verdicts(tmp_path, capsys, shared_data_cpu):
    """`--compare-to` tests the rows the board shows: one read, so the skipped file is said once.
    SPoT-g's seeds 0 and 2 score 79.9312 and 80.0459: 79.99 ± 0.1147 / √2 = 0.08 (seed 1: 80.8486)."""
    runs = copy_runs(tmp_path, "pt", "spot-g")
    truncate(runs / "spot-g" / "sst2" / CONFIGURATION["spot-g"] / "seed1.json")
    code, out, err = cli(capsys, "leaderboard", str(runs), "--compare-to", "pt", "--skip-unreadable")
    assert code == 0 and err.count("bench: skipped ") == 1 and err.count("skipped (--skip-unreadable)") == 1
    assert (rows(out)["spot-g"]["runs"], rows(out)["spot-g"]["sst2"]) == ("2", "80.0 ± 0.1")
    verdict = next(line for line in out.splitlines() if line.startswith("| sst2"))
    assert "| 80.0 ± 0.1 " in verdict and "| 79.5 ± 1.2 " in verdict


def test_plot_attention_refuses_an_unreadable_file_in_a_folder(tmp_path, capsys, monkeypatch):
    runs = copy_runs(tmp_path, "attempt", "pt")
    truncate(runs / "attempt" / "sst2" / CONFIGURATION["attempt"] / "seed1.json")
    drawn = []
    monkeypatch.setattr(bench.studies.plots, "plot_attention", lambda paths, out: drawn.append(paths) or out)
    code, _, err = cli(capsys, "plot", "attention", str(runs))
    assert code == 2 and f"attempt/sst2/{CONFIGURATION['attempt']}/seed1.json (truncated JSON at line 40)" in err
    assert cli(capsys, "plot", "attention", str(runs), "--skip-unreadable")[0] == 0
    assert [path.name for path in drawn[0]] == ["seed0.json", "seed2.json"]  # PT reports no attention


@pytest.mark.parametrize("command", [["leaderboard"], ["baseline", "--out", "{tmp}/b.json"]])
def test_an_empty_folder_is_refused_as_check_refuses_it(tmp_path, capsys, command):
    (tmp_path / "runs").mkdir()
    argv = [command[0], str(tmp_path / "runs"), *(arg.format(tmp=tmp_path) for arg in command[1:])]
    code, out, err = cli(capsys, *argv)
    assert (code, out, err) == (2, "", f"bench: error: no results in {tmp_path / 'runs'}\n")


def test_bench_run_builds_its_board_skipping_what_it_cannot_read(tmp_path, capsys):
    """The runs are done by the time `bench run` draws its board: it says what it skipped, never
    throwing the work away. For real: PT on CB (tiny-t5, one epoch) beside a `{}` seed file."""
    runs = tmp_path / "runs"
    (runs / "pt" / "sst2" / "feedface").mkdir(parents=True)
    (runs / "pt" / "sst2" / "feedface" / "seed0.json").write_text("{}")
    code, _, err = cli(capsys, "run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--epochs", "1",
                       "--quiet", "--output", str(runs))
    assert code == 0 and f"bench: skipped {runs}/pt/sst2/feedface/seed0.json: empty object\n" in err
    board = (runs / "leaderboard.md").read_text()
    assert (f"From `{runs}`: 1 runs. Cells: mean ± std over a row's runs (`runs`: seeds × few-shot draws; test split); a row is one configuration. Skipped "
            "(--skip-unreadable): 1 unreadable results file: pt/sst2/feedface/seed0.json (empty object).") in board


def untested(result: dict) -> dict:
    """A results file as a sweep trial writes it (bench/pipeline/runner.py, `evaluate_test` off)."""
    return {**result, "test_evaluated": False, "test": {}, "test_mean": None, "predictions": {}, "baselines": {}}


def test_runs_without_test_scores_are_left_out_and_counted(runs, capsys):
    trial = runs / "trial-0" / "pt" / "sst2" / "6a3d7bec620b" / "seed1.json"
    trial.parent.mkdir(parents=True)
    trial.write_text(json.dumps(untested(json.loads((runs / SEED1).read_text()))))
    code, out, err = cli(capsys, "leaderboard", str(runs))
    assert code == 0 and err == ""
    assert (f"From `{runs}`: 3 runs. Cells: mean ± std over a row's runs (`runs`: seeds × few-shot draws; test split); a row is one configuration. 1 runs "
            "without test scores (sweep trials, whose test split is not evaluated) left out.") in out
    assert rows(out)["pt"]["sst2"] == "79.5 ± 1.2"
    code, out, err = cli(capsys, "results", str(runs))
    assert code == 0 and len(out.splitlines()) == 1 + 6
    assert err == "bench: 1 runs without test scores (sweep trials, whose test split is not evaluated) left out\n"


def test_the_loader_keeps_its_first_item_and_says_what_it_left_out(runs):
    """`load_results(folder)[0]` is still the results; another schema and untested runs are counted."""
    seed1 = json.loads((runs / SEED1).read_text())
    (runs / SEED1).write_text(json.dumps(untested(seed1)))
    (runs / "seed7.json").write_text(json.dumps({"schema_version": 1, "run": seed1["run"]}))  # an old one needs no test
    loaded = bench.core.results.load_results(runs)
    assert [r["run"]["seed"] for r in loaded[0]] == [0, 2]
    assert (loaded.other_schema, loaded.untested, loaded.skipped) == (1, 1, [])
    assert loaded.note() == ("1 results of another schema version left out (rerun them with this version); 1 runs "
                             "without test scores (sweep trials, whose test split is not evaluated) left out")
