"""`bench baseline` / `bench check` on real smoke results: exit 0 unedited, 1 when the baseline
demands more than the margin and the baseline's across-seed standard deviation allow, 2 when
the two are not the same experiment (backbone, preset, profile, data, settings or seeds)."""
from __future__ import annotations

import json
import math
import shutil

import pytest

from bench.cli import main
from helpers import result_file


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two seeds of PT on CB and RTE (smoke, one epoch), recorded as the runner wrote them."""
    output = tmp_path_factory.mktemp("runs")
    assert main(["run", "--method", "pt", "--tasks", "cb,rte", "--profile", "smoke", "--epochs", "1", "--seeds", "0,1",
                 "--quiet", "--output", str(output)]) == 0
    return output


@pytest.fixture()
def baseline(results, tmp_path, capsys):
    path = tmp_path / "ci" / "baseline.json"
    assert main(["baseline", str(results), "--out", str(path)]) == 0
    assert f"baseline of 2 scores written to {path}" in capsys.readouterr().out
    return path


def edit(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def entry(data: dict, task: str) -> dict:
    return next(e for e in data["entries"] if e["task"] == task)


def check(capsys, results, baseline, *flags) -> tuple[int, list[list[str]], str, str]:
    code = main(["check", str(results), "--baseline", str(baseline), *flags])
    out, err = capsys.readouterr()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ")]
    return code, rows, out, err


def test_the_baseline_records_mean_std_n_fingerprints_and_identity(results, baseline):
    data = json.loads(baseline.read_text())
    assert data["schema"] == 1 and [e["task"] for e in data["entries"]] == ["cb", "rte"]
    for task in ("cb", "rte"):
        runs = [json.loads(result_file(results, "pt", task, f"seed{s}.json").read_text()) for s in (0, 1)]
        scores = [r["test"][task]["metrics"]["accuracy"] for r in runs]
        recorded = entry(data, task)
        assert {k: recorded[k] for k in ("method", "k_shot", "task", "backbone", "preset", "profile", "metric", "n")} == {
            "method": "pt", "k_shot": 0, "task": task, "backbone": "tiny-t5", "preset": "paper", "profile": "smoke",
            "metric": "accuracy", "n": 2}
        assert recorded["mean"] == pytest.approx(sum(scores) / 2)
        assert recorded["std"] == pytest.approx(abs(scores[0] - scores[1]) / math.sqrt(2))  # ddof=1 of two values
        assert recorded["runs"] == [{"seed": s, "draw": 0, "score": scores[s]} for s in (0, 1)]
        assert recorded["data"] == {"source": "fixtures", "fingerprints": runs[0]["identity"]["data"][task]["fingerprints"],
                                    "test_scored": runs[0]["data"][task]["fingerprints"]["test"]}
        assert recorded["identity"] == runs[0]["identity"] and recorded["configuration"] == runs[0]["run"]["configuration"]


def test_unedited_the_check_passes_with_a_table_of_every_check(results, baseline, capsys):
    code, rows, out, _ = check(capsys, results, baseline)
    assert code == 0 and out.startswith("# Regression check")
    assert rows[0] == ["method", "task", "backbone", "metric", "baseline", "now", "change", "allowed drop", "result"]
    assert [row[1] for row in rows[1:]] == ["cb", "rte"] and all(row[-1] == "ok" for row in rows[1:])
    assert all(row[6] == "+0.00" and row[7] == "1.00" for row in rows[1:])  # smoke runs repeat: std 0, the margin
    assert "no regression in 2 scores (allowed drop: max(margin 1, z 2 × the baseline's std over runs)" in out


@pytest.mark.parametrize("mean, std, flags, allowed, regressed", [
    (5.0, 1.0, [], 2.0, True),           # max(1, 2 x 1 = 2): a drop of 5 regresses
    (1.8, 1.0, [], 2.0, False),          # 1.8 <= 2 (2 standard errors, 2 x 1 / sqrt 2 = 1.41, would call it)
    (1.3, 0.0, [], 1.0, True),           # no spread: the margin alone; 1.3 > 1
    (0.9, 0.0, [], 1.0, False),          # 0.9 <= 1
    (1.0, 0.0, [], 1.0, False),          # exactly the margin: not more than it (float rounding aside)
    (1.01, 0.0, [], 1.0, True),          # a hundredth more
    (2.0, 1.0, [], 2.0, False),          # exactly z x std
    (0.1 + 0.2, 0.0, ["--margin", "0.3"], 0.3, False),  # 0.30000000000000004 is 0.3 to a reader: no regression
    (5.0, 3.0, [], 6.0, False),          # 2 x 3 = 6 > the drop of 5
    (5.0, 3.0, ["--z", "1"], 3.0, True),  # 1 x 3 = 3 < 5
    (5.0, 3.0, ["--margin", "7"], 7.0, False),
])
def test_a_baseline_demanding_more_fails_with_the_regressions(results, baseline, capsys, mean, std, flags, allowed,
                                                              regressed):
    """The baseline's CB entry is edited to demand `mean` above what the runs scored (+ their own mean)."""
    now = entry(json.loads(baseline.read_text()), "cb")["mean"]
    edit(baseline, lambda data: entry(data, "cb").update(mean=now + mean, std=std))
    code, rows, out, err = check(capsys, results, baseline, *flags)
    assert err == ""
    if regressed:
        assert code == 1 and out.startswith("# Regressions")
        assert rows[1:] == [["pt", "cb", "tiny-t5", "accuracy", f"{now + mean:.2f} ± {std:.2f} (n=2)",
                             f"{now:.2f} ± 0.00 (n=2)", f"{-mean:+.2f}", f"{allowed:.2f}", "REGRESSED"]]
        assert "1 of 2 scores regressed" in out
    else:
        assert code == 0 and [row[-1] for row in rows[1:]] == ["ok", "ok"] and rows[1][7] == f"{allowed:.2f}"


@pytest.mark.parametrize("field, value, message", [
    ("backbone", "google-t5/t5-base", "backbone tiny-t5 in {results}, google-t5/t5-base in the baseline: not the same experiment"),
    ("profile", "paper", "profile smoke in {results}, paper in the baseline: not the same experiment"),
    ("preset", "attempt-code", "preset paper in {results}, attempt-code in the baseline: not the same experiment"),
])
def test_another_backbone_profile_or_preset_is_refused(results, baseline, capsys, field, value, message):
    edit(baseline, lambda data: entry(data, "rte").update({field: value}))
    code, _, out, err = check(capsys, results, baseline)
    assert code == 2 and out == "" and err.count("\n") == 1 and message.format(results=results) in err


@pytest.mark.parametrize("task, change, message", [
    ("rte", lambda data: data["fingerprints"].update(train="0123456789abcdef"),
     "pt on rte (tiny-t5, paper, smoke): train data fingerprint {now} here, 0123456789abcdef in the baseline: "
     "not the same data"),
    ("cb", lambda data: data.update(test_scored="fedcba9876543210"),
     "pt on cb (tiny-t5, paper, smoke): scored test examples {now} here, fedcba9876543210 in the baseline"),
    ("cb", lambda data: data.update(source="dir"), "pt on cb (tiny-t5, paper, smoke): data source fixtures here, dir in "
                                                   "the baseline"),
])
def test_other_data_are_refused(results, baseline, capsys, task, change, message):
    recorded = entry(json.loads(baseline.read_text()), task)["data"]
    now = recorded["fingerprints"]["train"] if "train data" in message else recorded["test_scored"]
    edit(baseline, lambda data: change(entry(data, task)["data"]))
    code, _, _, err = check(capsys, results, baseline)
    assert code == 2 and err.count("\n") == 1 and message.format(now=now) in err


def test_results_changed_on_disk_are_refused(results, baseline, tmp_path, capsys):
    """The real way data change: results made on other test examples (here a cap recorded in the
    results' own fingerprint)."""
    other = tmp_path / "other"
    shutil.copytree(results, other)
    path = result_file(other, "pt", "cb", "seed0.json")
    edit(path, lambda data: data["data"]["cb"]["fingerprints"].update(test="0000000000000000"))
    edit(result_file(other, "pt", "cb", "seed1.json"), lambda data: data["data"]["cb"]["fingerprints"].update(
        test="0000000000000000"))
    code, _, _, err = check(capsys, other, baseline)
    assert code == 2 and "scored test examples 0000000000000000 here" in err


def test_a_baseline_entry_without_results_is_refused(results, baseline, capsys):
    edit(baseline, lambda data: entry(data, "rte").update(task="wic"))
    code, _, _, err = check(capsys, results, baseline)
    assert code == 2 and err.count("\n") == 1
    assert "the baseline's pt on wic (tiny-t5, paper, smoke) has no results in" in err


def test_results_the_baseline_lacks_are_named_not_checked(results, baseline, capsys):
    edit(baseline, lambda data: data.update(entries=[entry(data, "cb")]))
    code, rows, out, _ = check(capsys, results, baseline)
    assert code == 0 and [row[1] for row in rows[1:]] == ["cb"]
    assert "Note: not in the baseline, so not checked: pt on rte (tiny-t5, paper, smoke)." in out


def test_a_single_run_baseline_allows_the_margin_alone(results, baseline, capsys):
    """One run has no spread (std None): the margin is the whole allowance."""
    now = entry(json.loads(baseline.read_text()), "cb")["mean"]
    edit(baseline, lambda data: entry(data, "cb").update(mean=now + 1.3, std=None))
    code, rows, _, _ = check(capsys, results, baseline)
    assert code == 1 and rows[1][4] == f"{now + 1.3:.2f} (n=2)" and rows[1][7:] == ["1.00", "REGRESSED"]


@pytest.mark.parametrize("change, message", [
    (lambda identity: identity["train"].update(epochs=3), "train.epochs 1 here, 3 in the baseline"),
    (lambda identity: identity["method_config"].update(lr=0.5), "method_config.lr 0.3 here, 0.5 in the baseline"),
    (lambda identity: (identity["train"].update(epochs=3), identity["method_config"].update(lr=0.5)),
     "method_config.lr 0.3 here, 0.5 in the baseline; train.epochs 1 here, 3 in the baseline"),
])
def test_other_settings_are_refused_naming_them(results, baseline, capsys, change, message):
    """Other epochs or method options make another experiment, whose scores the margin and the seed
    noise do not bound: refused like another backbone, each setting named with both values."""
    edit(baseline, lambda data: change(entry(data, "cb")["identity"]))
    code, _, out, err = check(capsys, results, baseline)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"pt on cb (tiny-t5, paper, smoke): {message}: not the same experiment (rebuild the baseline" in err


@pytest.mark.parametrize("runs, message", [
    ([(0, 0), (1, 0), (2, 0)], "seeds 0, 1 here; 0, 1, 2 in the baseline"),
    ([(0, 0), (2, 0)], "seeds 0, 1 here; 0, 2 in the baseline"),
    ([(0, 1), (1, 1)], "seeds 0, 1 here; 0 (draw 1), 1 (draw 1) in the baseline"),
])
def test_other_seeds_are_refused(results, baseline, capsys, runs, message):
    """A mean over other seeds (or few-shot draws) differs by their noise, not by the code: refused."""
    edit(baseline, lambda data: entry(data, "rte").update(
        runs=[{"seed": seed, "draw": draw, "score": 50.0} for seed, draw in runs]))
    code, _, out, err = check(capsys, results, baseline)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert f"pt on rte (tiny-t5, paper, smoke): {message}: not the same runs" in err


def test_two_configurations_of_one_task_are_refused(results, tmp_path, capsys):
    mixed = tmp_path / "mixed"
    shutil.copytree(results, mixed)
    source = result_file(mixed, "pt", "cb", "seed0.json")
    copy = source.parent.parent / "feedfacecafe" / "seed0.json"
    copy.parent.mkdir()
    shutil.copy(source, copy)
    edit(copy, lambda data: data["run"].update(configuration="feedfacecafe"))
    assert main(["baseline", str(mixed), "--out", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds 2 configurations of pt on cb (tiny-t5, paper, smoke)" in err
    assert not (tmp_path / "b.json").exists()


@pytest.mark.parametrize("argv, message", [
    (["check", "{results}", "--baseline", "{tmp}/none.json"], "--baseline '{tmp}/none.json' does not exist"),
    (["check", "{results}", "--baseline", "{tmp}/bad.json"], "--baseline '{tmp}/bad.json' is not a bench baseline of schema 1"),
    (["check", "{results}", "--baseline", "{tmp}/bad.json", "--margin", "-1"], "--margin takes a finite number ≥ 0 (default 1), not -1"),
    (["check", "{results}", "--baseline", "{tmp}/bad.json", "--z", "nan"], "--z takes a finite number ≥ 0 (default 2), not nan"),
    (["check", "{tmp}/nowhere", "--baseline", "{tmp}/bad.json"], "results directory '{tmp}/nowhere' does not exist"),
    (["baseline", "{tmp}", "--out", "{tmp}/b.json"], "no results in {tmp}"),
    (["baseline", "{results}"], "the following arguments are required: --out"),
])
def test_bad_input_is_one_line(results, tmp_path, capsys, argv, message):
    (tmp_path / "bad.json").write_text(json.dumps({"entries": []}))
    values = {"results": results, "tmp": tmp_path}
    assert main([arg.format(**values) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(**values) in err
