"""`bench results`: a results folder of real smoke runs as CSV / JSON lines, one row per run x task x split x metric."""
from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from bench.cli import main
from helpers import result_file

SMOKE = ["--profile", "smoke", "--quiet", "--epochs", "1"]
RUN_COLUMNS = ["method", "tasks", "task", "split", "metric", "value", "seed", "draw", "k_shot", "backbone", "preset",
               "profile", "configuration"]
OPTION_COLUMNS = ["option.init", "option.init_checkpoint", "option.init_text", "option.lr", "option.prompt_length",
                  "option.sources", "option.weight_decay"]  # PT's options, and SPoT's `sources`
# (method, task, split, metric) of each row, in order: results by path (pt/cb, pt/wic, spot-g/cb), dev before test
KEYS = [("pt", "cb", "dev", "accuracy"), ("pt", "cb", "dev", "macro_f1"), ("pt", "cb", "test", "accuracy"),
        ("pt", "cb", "test", "macro_f1"), ("pt", "wic", "dev", "accuracy"), ("pt", "wic", "test", "accuracy"),
        ("spot-g", "cb", "dev", "accuracy"), ("spot-g", "cb", "dev", "macro_f1"), ("spot-g", "cb", "test", "accuracy"),
        ("spot-g", "cb", "test", "macro_f1")]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """PT on cb and on wic, and SPoT-g on cb from mnli's prompt: (results folder, method -> task -> results)."""
    root = tmp_path_factory.mktemp("study")
    output = root / "runs"
    assert main(["run", "--method", "pt", "--tasks", "cb,wic", *SMOKE, "--output", str(output)]) == 0
    assert main(["run", "--method", "spot-g", "--tasks", "cb", *SMOKE, "--option", "sources=mnli",
                 "--output", str(output), "--library", str(root / "library")]) == 0
    records = {(method, task): json.loads(result_file(output, method, task).read_text())
               for method, task in (("pt", "cb"), ("pt", "wic"), ("spot-g", "cb"))}
    return output, records


def export(capsys, *argv) -> str:
    assert main(["results", *argv]) == 0
    return capsys.readouterr().out


def test_csv_has_one_row_per_run_task_split_metric_with_the_configuration(study, capsys):
    output, records = study
    reader = csv.DictReader(io.StringIO(export(capsys, str(output))))
    train_columns = sorted(f"train.{name}" for name in records["pt", "cb"]["identity"]["train"])
    assert reader.fieldnames == RUN_COLUMNS + OPTION_COLUMNS + train_columns
    rows = list(reader)
    assert [(r["method"], r["task"], r["split"], r["metric"]) for r in rows] == KEYS
    for row, (method, task, split, metric) in zip(rows, KEYS):
        record = records[method, task]
        assert float(row["value"]) == record[split][task]["metrics"][metric]
        assert (row["tasks"], row["seed"], row["draw"], row["k_shot"], row["backbone"], row["preset"], row["profile"]) \
            == (task, "0", "0", "0", "tiny-t5", "paper", "smoke")
        assert row["configuration"] == result_file(output, method, task).parent.name
        assert (row["option.lr"], row["option.prompt_length"], row["train.epochs"], row["train.batch_size"],
                row["train.adam_betas"], row["train.backbone_dropout"]) == ("0.3", "10", "1", "8", "[0.9, 0.999]", "True")
        assert row["option.sources"] == ("mnli" if method == "spot-g" else "")  # blank: PT has no sources


def test_jsonl_rows_keep_native_types_and_null_where_a_method_lacks_an_option(study, capsys):
    output, records = study
    rows = [json.loads(line) for line in export(capsys, str(output), "--format", "jsonl").splitlines()]
    assert [(r["method"], r["task"], r["split"], r["metric"]) for r in rows] == KEYS
    first, last = rows[0], rows[-1]
    assert list(first)[:len(RUN_COLUMNS) + len(OPTION_COLUMNS)] == RUN_COLUMNS + OPTION_COLUMNS
    assert first["value"] == records["pt", "cb"]["dev"]["cb"]["metrics"]["accuracy"]
    assert (first["seed"], first["train.adam_betas"], first["train.group_by_length"], first["option.sources"]) == (
        0, [0.9, 0.999], False, None)
    assert last["value"] == records["spot-g", "cb"]["test"]["cb"]["metrics"]["macro_f1"]
    assert (last["option.sources"], last["option.lr"]) == ("mnli", 0.3)


def test_pandas_reads_one_column_per_field(study, capsys):
    pd = pytest.importorskip("pandas", reason="pandas is not installed")
    output, records = study
    frame = pd.read_csv(io.StringIO(export(capsys, str(output))))
    assert frame.shape == (10, len(RUN_COLUMNS) + len(OPTION_COLUMNS) + len(records["pt", "cb"]["identity"]["train"]))
    test = frame[(frame.split == "test") & (frame.metric == "accuracy")].set_index(["method", "task"])["value"]
    assert test.to_dict() == {key: records[key]["test"][key[1]]["metrics"]["accuracy"] for key in records}
    assert frame["train.epochs"].dtype.kind == "i" and frame["option.lr"].dtype.kind == "f"


def test_out_writes_the_same_table_to_a_file(study, capsys, tmp_path):
    output, _ = study
    printed = export(capsys, str(output), "--format", "jsonl")
    target = tmp_path / "tables" / "study.jsonl"
    assert main(["results", str(output), "--format", "jsonl", "--out", str(target)]) == 0
    assert capsys.readouterr().out == f"10 rows from 3 runs written to {target}\n"
    assert target.read_text() == printed
    assert [p.name for p in target.parent.iterdir()] == ["study.jsonl"]  # no temporary file left beside it


def test_results_of_another_schema_are_left_out_and_said(study, capsys, tmp_path):
    output, records = study
    old = records["pt", "wic"] | {"schema_version": 1}
    shutil.copytree(output / "pt" / "cb", tmp_path / "pt" / "cb")
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main(["results", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert [row["task"] for row in csv.DictReader(io.StringIO(out))] == ["cb"] * 4
    assert err == "bench: 1 results of another schema version left out (rerun them with this version)\n"


def test_an_empty_folder_gives_the_header_only(capsys, tmp_path):
    assert export(capsys, str(tmp_path)) == ",".join(RUN_COLUMNS) + "\n"


@pytest.mark.parametrize("argv,parts", [
    (["/nonexistent/results"], ["bench: error: results directory '/nonexistent/results' does not exist"]),
    ([".", "--format", "xlsx"], ["bench: error: argument --format: invalid choice: 'xlsx' (choose from ", "csv",
                                 "jsonl"]),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, parts):
    assert main(["results", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(parts[0]) and err.count("\n") == 1 and all(part in err for part in parts)


def test_csv_cells_hold_lists_as_json_and_absent_values_blank():
    from bench.studies.results_table import render

    assert render(["a", "b", "c"], [{"a": ["mnli", "qnli"], "b": {"k": 1}}], "csv") == \
        'a,b,c\n"[""mnli"", ""qnli""]","{""k"": 1}",\n'
