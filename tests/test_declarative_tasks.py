"""YAML tasks (tasks/declarative.py, `--include PATH`): a built-in task re-expressed in YAML gives
the very examples its Python class gives, from the shipped fixtures and from the real release
files; local csv files and open-ended targets; every mistake in a file is one line naming it."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core.presets import PRESETS
from bench.core.registry import UsageError
from tasks.declarative import DeclarativeTask, include, read_spec
from tasks.loading import DataSource, load_examples
from tasks.registry import SUITES, TASKS

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
PAPER = PRESETS.get("paper")

BOOLQ = """\
task: boolq
prefix: superglue-boolq
hub: {path: aps/super_glue, config: boolq, revision: 3de24cf8022e94f4ee4b9d55a6f539891524d646}
files: {dir: superglue/BoolQ, train: train.jsonl, validation: val.jsonl}
split_protocol: small
input: "superglue-boolq question: {question} passage: {passage}"
labels: ["0", "1"]
label_values: [false, true]
"""
"""tasks/superglue.py's BoolQ; named `boolq` here so that even Example.task matches (never registered)."""

RTE = """\
task: rte
hub: {path: nyu-mll/glue, config: rte}
files: {dir: glue/RTE, train: train.tsv, validation: dev.tsv}
split_protocol: small
input: "rte sentence1: {sentence1} sentence2: {sentence2}"
labels: ["0", "1"]
label_values: [entailment, not_entailment]
pair: [sentence1, sentence2]
"""
"""tasks/glue.py's RTE, read from GLUE's TSVs."""


def twin(tmp_path: Path, text: str) -> DeclarativeTask:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return DeclarativeTask(path, read_spec(path))


def both(task: DeclarativeTask, source: DataSource) -> dict:
    """Split -> (YAML examples, Python examples)."""
    return {split: (load_examples(task, split, source, PAPER), load_examples(TASKS.get(task.name), split, source, PAPER))
            for split in ("train", "validation", "test")}


@pytest.mark.parametrize("text,sizes", [(BOOLQ, (32, 12, 12)), (RTE, (32, 12, 12))], ids=["boolq", "rte"])
def test_a_yaml_task_equals_its_python_twin_on_the_fixtures(tmp_path, text, sizes):
    examples = both(twin(tmp_path, text), DataSource("fixtures"))
    assert tuple(len(yaml) for yaml, _ in examples.values()) == sizes
    assert all(yaml == python for yaml, python in examples.values())  # Example: source, target, task, extra


def test_a_yaml_commit_is_read_as_the_python_twin_reads_it(tmp_path):
    """A commit in a task file is a commit of main, read by config name, as tasks/superglue.py pins BoolQ."""
    assert twin(tmp_path, BOOLQ).hub == TASKS.get("boolq").hub
    assert (twin(tmp_path, RTE).hub.revision, twin(tmp_path, RTE).hub.branch) == ("main", "main")  # no revision given


@pytest.mark.parametrize("text,folder,sizes", [(BOOLQ, "superglue/BoolQ", (32, 20, 20)),
                                               (RTE, "glue/RTE", (32, 138, 139))], ids=["boolq", "rte"])
def test_a_yaml_task_equals_its_python_twin_on_the_release_files(tmp_path, text, folder, sizes):
    if not (SHARED / folder).is_dir():
        pytest.skip(f"real data absent: {SHARED / folder}")
    examples = both(twin(tmp_path, text), DataSource("dir", str(SHARED)))
    assert tuple(len(yaml) for yaml, _ in examples.values()) == sizes
    assert all(yaml == python for yaml, python in examples.values())
    first = examples["validation"][0][0]
    assert first.target in ("0", "1") and first.source.startswith(text.split('input: "')[1].split(":")[0])


def test_local_csv_files_with_an_open_ended_target_and_named_splits(tmp_path):
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "train.csv").write_text('question,answer\n"Paris, France?",yes\nTwo plus two?,four\n')
    (tmp_path / "qa" / "dev.csv").write_text("question,answer\nRed or blue?,red\n")
    task = twin(tmp_path, "task: capitals\nfiles: {dir: qa, train: train.csv, dev: dev.csv}\n"
                          "splits: {validation: dev, test: dev}\nsplit_protocol: own\n"
                          "input: 'quiz question: {question}'\ntarget: '{answer}!'\nmetrics: [squad_em]\n")
    source = DataSource("dir", str(tmp_path))
    train = load_examples(task, "train", source, PAPER)
    assert [(e.source, e.target, e.task, e.extra) for e in train] == [
        ("quiz question: Paris, France?", "yes!", "capitals", {}), ("quiz question: Two plus two?", "four!", "capitals", {})]
    assert [e.target for e in load_examples(task, "test", source, PAPER)] == ["red!"]
    assert (task.labels, task.metrics, task.report_metric) == (None, ("squad_em",), "squad_em")
    assert (task.prefix, task.max_source_length, task.multitask_max_source_length, task.max_target_length) == (
        "capitals", 256, 256, None)


def test_lengths_and_unlabelled_rows_as_the_python_tasks_have_them(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.jsonl").write_text('{"text": "a", "label": "yes"}\n')
    (tmp_path / "d" / "test.jsonl").write_text('{"text": "b"}\n{"text": "c", "label": ""}\n')
    task = twin(tmp_path, "task: yn\nprefix: y-n\nfiles: {dir: d, train: train.jsonl, test: test.jsonl}\n"
                          "splits: {validation: test, test: test}\nsplit_protocol: own\ninput: '{text}'\n"
                          "labels: ['no', 'yes']\nlabel_values: ['n', 'yes']\nmax_source_length: 512\n"
                          "max_target_length: 3\n")
    source = DataSource("dir", str(tmp_path))
    assert [e.target for e in load_examples(task, "train", source, PAPER)] == ["yes"]
    assert [e.target for e in load_examples(task, "test", source, PAPER)] == ["-1", "-1"]  # the Hub's unlabelled id
    assert (task.prefix, task.max_source_length, task.multitask_max_source_length, task.max_target_length) == (
        "y-n", 512, 512, 3)


def test_a_file_label_outside_label_values_names_the_file_and_record(tmp_path):
    from tasks.base import DataError

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.jsonl").write_text('{"text": "a", "label": "yes"}\n{"text": "b", "label": "maybe"}\n')
    task = twin(tmp_path, "task: yn\nfiles: {dir: d, train: train.jsonl, validation: train.jsonl}\n"
                          "split_protocol: own\ninput: '{text}'\nlabels: ['no', 'yes']\nlabel_values: ['n', 'yes']\n")
    with pytest.raises(DataError, match=r"d/train.jsonl: line 2: unknown label 'maybe' \(valid: n, yes\)"):
        load_examples(task, "train", DataSource("dir", str(tmp_path)), PAPER)


@pytest.mark.parametrize("name, text, line", [
    ("train.jsonl", '{"text": "a", "label": "yes"}\n\n{"text": "b", "label": "maybe"}\n', 3),  # blank line 2 counted
    ("train.jsonl.gz", '{"text": "a", "label": "yes"}\n\n{"text": "b", "label": "maybe"}\n', 3),
    ("train.tsv", "text\tlabel\na\tyes\nb\tn\nc\tmaybe\n", 4),  # header line 1 counted
    ("train.csv", 'text,label\na,yes\n\n"two\nlines",maybe\n', 4),  # blank line 3; the record is lines 4-5
    ("train.csv", 'text,label\r\na,yes\r\n"two\r\nlines",maybe\r\n', 3),  # CR LF ends: the record is lines 3-4
    ("train.csv", 'text,label\na,maybe,"a field past\nthe header"\n', 2),  # the record is lines 2-3
], ids=["jsonl", "jsonl.gz", "tsv", "csv", "csv-crlf", "csv-extra-field"])
def test_a_bad_label_names_the_line_an_editor_shows(tmp_path, name, text, line):
    """One numbering for every local file: the record's first line, from 1, header and blank lines counted."""
    from tasks.base import DataError

    (tmp_path / "d").mkdir()
    data = text.encode()
    (tmp_path / "d" / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    task = twin(tmp_path, f"task: yn\nfiles: {{dir: d, train: {name}, validation: {name}}}\n"
                          "split_protocol: own\ninput: '{text}'\nlabels: ['no', 'yes']\nlabel_values: ['n', 'yes']\n")
    with pytest.raises(DataError) as error:
        load_examples(task, "train", DataSource("dir", str(tmp_path)), PAPER)
    assert str(error.value) == f"{tmp_path / 'd' / name}: line {line}: unknown label 'maybe' (valid: n, yes)"


def test_a_row_that_cannot_be_formatted_is_named_as_a_row_of_its_split(tmp_path):
    """Split rows are shuffled and drawn, so the message names the split's row, counted from 1, not a file line."""
    from tasks.base import DataError

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.jsonl").write_text('{"text": "a", "label": "yes"}\n')
    task = twin(tmp_path, "task: yn\nfiles: {dir: d, train: train.jsonl, validation: train.jsonl}\n"
                          "split_protocol: own\ninput: '{text} {note}'\nlabels: ['no', 'yes']\n"
                          "label_values: ['n', 'yes']\n")
    with pytest.raises(DataError) as error:
        load_examples(task, "train", DataSource("dir", str(tmp_path)), PAPER)
    assert str(error.value) == "yn: row 1 of the train split: cannot format (KeyError: 'note')"


def bench(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "bench", *argv], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


def write_folder(tmp_path: Path) -> Path:
    """A folder of two task files (one in a subfolder) that build one suite of their own."""
    folder = tmp_path / "mine"
    (folder / "more").mkdir(parents=True)
    (folder / "a.yaml").write_text(BOOLQ.replace("task: boolq", "task: boolq-yaml\nsuites: [mine]"))
    (folder / "more" / "b.yml").write_text(RTE.replace("task: rte", "task: rte-yaml\nsuites: [mine]\naliases: [ry]"))
    return folder


def test_bench_tasks_and_data_show_read_included_files_and_folders(tmp_path):
    folder = write_folder(tmp_path)
    listed = bench("tasks", "--suite", "mine", "--json", "--include", str(folder))
    assert listed.returncode == 0, listed.stderr
    assert [(t["name"], t["suites"], t["file"]) for t in json.loads(listed.stdout)] == [
        ("boolq-yaml", ["mine"], str(folder / "a.yaml")), ("rte-yaml", ["mine"], str(folder / "more" / "b.yml"))]


def test_bench_data_show_reads_an_included_file_as_its_python_twin(tmp_path):
    if not (SHARED / "glue" / "RTE").is_dir():
        pytest.skip(f"real data absent: {SHARED / 'glue' / 'RTE'}")
    folder = write_folder(tmp_path)
    shown = bench("data", "show", "ry", "--data-dir", str(SHARED), "--split", "test", "--include",
                  str(folder / "more" / "b.yml"))
    builtin = bench("data", "show", "rte", "--data-dir", str(SHARED), "--split", "test")
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [{**row, "task": "rte"} for row in rows] == [json.loads(line) for line in builtin.stdout.splitlines()]
    assert {row["task"] for row in rows} == {"rte-yaml"} and len(rows) == 139


def test_bench_run_trains_on_an_included_task(tmp_path):
    if not (SHARED / "superglue" / "BoolQ").is_dir():
        pytest.skip(f"real data absent: {SHARED / 'superglue' / 'BoolQ'}")
    done = bench("run", "--method", "pt", "--suite", "mine", "--tasks", "boolq-yaml", "--profile", "smoke",
                 "--data-dir", str(SHARED), "--include", str(write_folder(tmp_path)), "--output", str(tmp_path / "runs"),
                 "--quiet")
    assert done.returncode == 0, done.stderr
    [path] = (tmp_path / "runs").glob("pt/boolq-yaml/*/seed0.json")
    result = json.loads(path.read_text())
    assert result["data"]["boolq-yaml"]["sizes"] == {"train": 32, "validation": 20, "test": 20}
    assert result["run"]["suite"] == "mine"


def test_a_files_only_task_without_data_dir_says_to_pass_one(tmp_path):
    path = tmp_path / "local.yaml"
    path.write_text("task: local\nfiles: {dir: mine, train: t.jsonl, validation: v.jsonl}\nsplit_protocol: own\n"
                    "input: '{text}'\nlabels: ['0', '1']\n")
    done = bench("data", "show", "local", "--include", str(path))
    assert (done.returncode, done.stderr) == (2, f"bench: error: task local ({path}) has no hub source: pass --data-dir "
                                                 "DIR holding mine/t.jsonl, v.jsonl\n")
    described = json.loads(bench("tasks", "--json", "--include", str(path)).stdout)[-1]
    assert (described["name"], described["prefix"], described["hub"], described["official_files"]) == (
        "local", "local", None, {"train": "mine/t.jsonl", "validation": "mine/v.jsonl"})


KEYS = ("task, prefix, aliases, hub, files, splits, split_protocol, input, labels, label_field, label_values, target, "
        "metrics, suites, max_source_length, max_target_length")
GOOD = "task: mine\nhub: {path: me/data}\nsplit_protocol: small\ninput: '{text}'\nlabels: ['0', '1']\n"


@pytest.mark.parametrize("text,message", [
    (GOOD + "labelz: [a]\n", f"unknown key 'labelz'; valid keys: {KEYS}"),
    (GOOD.replace("small", "medium"), "key 'split_protocol': 'medium' is not one of: small, large, own"),
    (GOOD + "metrics: [acc]\n", "key 'metrics': unknown metric 'acc'; valid: "),
    (GOOD + "files: {train: t.parquet}\n",
     "key 'files': train: 't.parquet' is not a file bench reads; valid: .jsonl, .jsonl.gz, .csv, .tsv"),
    (GOOD + "files: {tets: t.jsonl}\n", "key 'files': unknown key 'tets'; valid: dir, train, validation, test"),
    (GOOD.replace("'{text}'", "'{text'"), "key 'input': '{text' is not a template"),
    (GOOD.replace("'{text}'", "'{0}'"), "key 'input': '{0}': a string whose fields are row fields in braces"),
    (GOOD + "suites: [glue]\n", "key 'suites': 'glue' is one of bench's suites (source, glue, superglue, "),
    (GOOD + "target: '{x}'\n", "give key 'labels' (target strings in label-id order (classification)) or 'target' "),
    (GOOD.replace("input: '{text}'\n", ""), "key 'input' missing: the source text"),
    (GOOD.replace("hub: {path: me/data}\n", ""), "give key 'hub' ("),
    (GOOD + "splits: {dev: v}\n", "key 'splits': unknown key 'dev'; valid: train, validation, test"),
    (GOOD.replace("hub: {path: me/data}", "hub: {config: x}"), "key 'hub': path missing; valid: path, config, revision"),
    (GOOD + "label_values: [a]\n", "key 'label_values': takes a list as long as labels (2), not ['a']"),
    (GOOD + "max_source_length: 0\n", "key 'max_source_length': takes a positive integer, not 0"),
    (GOOD + "max_target_length: true\n", "key 'max_target_length': takes a positive integer, not True"),
    (GOOD.replace("task: mine", "task: my task"), "key 'task': 'my task' is not a name"),
    (GOOD.replace("task: mine", "task: boolq"), "key 'task': 'boolq' is a task already (boolq)"),
    (GOOD + "aliases: [superglue-cb]\n", "key 'aliases': 'superglue-cb' is a task already (cb)"),
    (GOOD + "pair: [text]\n", "key 'pair': takes the two text fields of a pair, not ['text']"),
    (GOOD + "pair: [text, other]\n", "key 'pair': 'other' is not a field of input (text)"),
    ("- a list\n", f"a task file is a mapping of keys; valid keys: {KEYS}"),
    ("task: [unclosed\n", "not readable as YAML"),
])
def test_a_bad_task_file_is_one_line_naming_file_key_and_choices(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    names = TASKS.names()
    with pytest.raises(UsageError) as error:
        include([str(path)])
    assert str(error.value).startswith(f"{path}: {message}") and "\n" not in str(error.value)
    assert TASKS.names() == names and "mine" not in SUITES  # nothing registered


def test_the_command_line_reports_a_bad_file_and_a_missing_path_with_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("small", "medium"))
    done = bench("tasks", "--include", str(path))
    assert (done.returncode, done.stderr) == (
        2, f"bench: error: {path}: key 'split_protocol': 'medium' is not one of: small, large, own\n")
    missing = bench("run", "--method", "pt", "--tasks", "x", "--include", str(tmp_path / "nowhere"))
    assert (missing.returncode, missing.stderr) == (2, f"bench: error: --include {tmp_path / 'nowhere'}: no such file "
                                                       "or folder\n")
    (tmp_path / "empty").mkdir()
    empty = bench("tasks", "--include", str(tmp_path / "empty"))
    assert empty.stderr == f"bench: error: --include {tmp_path / 'empty'}: the folder holds no .yaml or .yml file\n"
