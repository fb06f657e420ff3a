"""Tasks written as YAML (`--include PATH`), the lm-evaluation-harness way: no Python needed.

A file describes one task: where its rows come from (a Hub id, and/or local
jsonl / csv / tsv files under `--data-dir`), its Hub splits and split protocol,
an input template over the row's fields, a label list or a target template,
metrics from tasks/metrics.py and the suites it belongs to. For example
(BoolQ, as tasks/superglue.py defines it):

    task: boolq-yaml
    prefix: superglue-boolq
    hub: {path: aps/super_glue, config: boolq, revision: 3de24cf8022e94f4ee4b9d55a6f539891524d646}
    files: {dir: superglue/BoolQ, train: train.jsonl, validation: val.jsonl}
    split_protocol: small
    input: "superglue-boolq question: {question} passage: {passage}"
    labels: ["0", "1"]
    label_values: [false, true]

Rows keep their fields as the source gives them; only the label is mapped to
its id (its place in `label_values`, where given) and a row without one gets
the Hub's -1. A classification target is `labels[id]`. Every mistake in a file
is one line naming the file, the key and the valid choices.

`hub.revision` stays optional (default `main`): a file that names no commit still
runs, as files written before pins did, and its first Hub read prints one warning
line that the branch is unpinned (tasks/loading.py `warn_unpinned`); a commit
(40 hex digits) pins the rows.
"""
from __future__ import annotations

import csv
import re
import string
from pathlib import Path

from bench.core.registry import UsageError
from tasks.base import DataError, HubSource, Task, is_commit, label_index
from tasks.loading import read_json_lines

PROTOCOLS = ("small", "large", "own")
SPLIT_KEYS = ("train", "validation", "test")
KEYS = {
    "task": "the name users type (required)",
    "prefix": "the name in the input's prefix (default: task)",
    "aliases": "other names users may type",
    "hub": "{path, config, revision}: a Hugging Face dataset; revision a commit of its main branch (40 hex "
           "digits: the same rows every run) or a branch (default main, which warns that it is unpinned; "
           "refs/convert/parquet reads configs as folders)",
    "files": "{dir, train, validation, test}: jsonl / csv / tsv files under --data-dir/<dir>",
    "splits": "{train, validation, test}: the Hub split (or file) each split of the protocol reads "
              "(default train, validation, validation: the papers test on the validation split)",
    "split_protocol": "small | large | own (tasks/splits.py)",
    "input": "the source text: a template over the row's fields, e.g. '{question}' (required)",
    "labels": "target strings in label-id order (classification)",
    "label_field": "the row field holding the label (default: label)",
    "label_values": "the label's values in the files, in label-id order (default: the ids)",
    "target": "a template over the row's fields (open-ended targets, instead of labels)",
    "metrics": "bench metrics, primary first (default: accuracy)",
    "suites": "suites of your own that the task joins",
    "max_source_length": "source tokens kept (default 256)",
    "max_target_length": "target tokens kept (default: the longest label, or 128)",
    "pair": "[field, field]: a pair task's two text fields, which an encoder may read each alone "
            "(--train pair_encoding=two_tower)",
}
"""Every key a task file may hold, with what it means (the error for an unknown key lists them)."""
READERS = (".jsonl", ".jsonl.gz", ".csv", ".tsv")
LINE_BREAK = re.compile(r"\r\n|\r|\n")


class DeclarativeTask(Task):
    """A task read from a YAML file; every class attribute of `Task` is set per instance."""

    def __init__(self, path: Path, spec: dict):
        self.path = path
        self.name = spec["task"]
        self.prefix = spec.get("prefix", self.name)
        self.aliases = tuple(spec.get("aliases", ()))
        hub = spec.get("hub")
        self.hub_source = hub_source(hub) if hub else None
        files = dict(spec.get("files", {}))
        self.official_dir = files.pop("dir", "")
        self.official_splits = files
        splits = spec.get("splits", {})
        self.hub_train, self.hub_validation = splits.get("train", "train"), splits.get("validation", "validation")
        self.hub_test = splits.get("test", "validation")
        self.split_protocol = spec["split_protocol"]
        self.template = spec["input"]
        self.target_template = spec.get("target")
        self.labels = tuple(spec["labels"]) if "labels" in spec else None
        self.label_field = spec.get("label_field", "label")
        self.label_values = tuple(spec.get("label_values", range(len(self.labels or ()))))
        self.metrics = tuple(spec.get("metrics", ("accuracy",)))
        self.max_source_length = self.multitask_max_source_length = spec.get("max_source_length", 256)
        self.max_target_length = spec.get("max_target_length")
        self.pair_fields = tuple(spec["pair"]) if "pair" in spec else None

    @property
    def hub(self) -> HubSource:
        if self.hub_source is None:
            raise UsageError(f"task {self.name} ({self.path}) has no hub source: pass --data-dir DIR holding "
                             f"{self.official_dir or '.'}/{', '.join(self.official_splits.values())}")
        return self.hub_source

    def read_official(self, data_dir: Path, hub_split: str) -> list[dict]:
        if hub_split not in self.official_splits:
            raise DataError(f"task {self.name} ({self.path}): files names no file for split {hub_split!r} "
                            f"(it names: {', '.join(self.official_splits) or 'none'})")
        path = data_dir / self.official_dir / self.official_splits[hub_split]
        return [self.hub_row(record, path, line) for line, record in read_records(path)]

    def hub_row(self, record: dict, path: Path, line: int) -> dict:
        """A file record with its label as the Hub stores it: the label's id, -1 where it has none;
        `line` locates an error."""
        if self.labels is None:
            return record
        value = record.get(self.label_field)
        return {**record, self.label_field: -1 if value in (None, "") else label_index(
            value, self.label_values, path, line)}

    def source(self, row, protocol):
        return self.template.format(**row)

    def target(self, row, protocol):
        if self.labels is None:
            return self.target_template.format(**row)
        label = row[self.label_field]
        # unlabelled rows (the Hub's -1) keep their id as the target, as the Python tasks' str(label)
        return self.labels[label] if 0 <= label < len(self.labels) else str(label)

    def describe(self, suites: list[str] | None = None) -> dict:
        """`Task.describe` plus the file the task came from; `hub` is None for a files-only task
        (Task.describe reads the hub source, so a blank one stands in while it runs)."""
        own, self.hub_source = self.hub_source, self.hub_source or HubSource("", None, "")
        try:
            described = super().describe(suites)
        finally:
            self.hub_source = own
        return {**described, "hub": described["hub"] if own else None, "file": str(self.path)}


def hub_source(hub: dict) -> HubSource:
    """A task file's `hub`: a commit is taken for a commit of main (the branch a pin most often comes
    from), a branch name for itself, so that `refs/convert/parquet` is read as the parquet export."""
    revision = str(hub.get("revision", "main"))
    return HubSource(hub["path"], hub.get("config"), revision, "main" if is_commit(revision) else revision)


def read_records(path: Path) -> list[tuple[int, dict]]:
    """A local file's (line number, record) pairs: jsonl (or .gz), csv with a header, or tsv with a
    header read as GLUE's (quoting off)."""
    if path.suffix == ".csv":
        return csv_records(path)
    if path.suffix == ".tsv":
        from tasks.glue import tsv_records

        return tsv_records(path)
    return read_json_lines(path)


def csv_records(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of a csv file with a header, records as csv.DictReader reads them. The
    number is the record's first line: the reader counts lines up to its last, and a quoted value
    may hold line breaks."""
    if not path.is_file():
        raise DataError(f"{path}: missing")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        return [(reader.line_num - line_breaks(record), record) for record in reader]


def line_breaks(record: dict) -> int:
    """Line breaks inside a csv record's values (those past the header's columns, listed under None,
    included), counted as a file read with newline="" splits lines: at CR LF, a lone CR or LF."""
    values = [*record.values(), *record.get(None, [])]
    return sum(len(LINE_BREAK.findall(value)) for value in values if isinstance(value, str))


def include(paths: list[str]) -> list[str]:
    """Register the tasks of `--include` files and folders (a folder: its *.yaml / *.yml, in
    name order, subfolders included); their names, in order."""
    from tasks.registry import TASKS, join_suite

    names = []
    for path in yaml_files(paths):
        spec = read_spec(path)
        task = DeclarativeTask(path, spec)
        for key, name in [("task", task.name), *(("aliases", alias) for alias in task.aliases)]:
            if name in TASKS:
                raise UsageError(f"{path}: key {key!r}: {name!r} is a task already ({TASKS.canonical(name)}); "
                                 "give the task another name")
        TASKS.register(task.name, task, aliases=task.aliases)
        for suite in spec.get("suites", ()):
            join_suite(suite, task.name)
        names.append(task.name)
    return names


def yaml_files(paths: list[str]) -> list[Path]:
    files = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise UsageError(f"--include {given}: the folder holds no .yaml or .yml file")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"--include {given}: no such file or folder")
    return files


def read_spec(path: Path) -> dict:
    """A task file's keys, checked: every mistake is one line naming the file, the key and the choices."""
    import yaml

    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UsageError(f"{path}: not readable as YAML ({' '.join(str(error).split())})") from None
    if not isinstance(spec, dict):
        raise UsageError(f"{path}: a task file is a mapping of keys; valid keys: {', '.join(KEYS)}")
    for key in spec:
        if key not in KEYS:
            raise UsageError(f"{path}: unknown key {key!r}; valid keys: {', '.join(KEYS)}")
    for key in ("task", "input", "split_protocol"):
        if key not in spec:
            raise UsageError(f"{path}: key {key!r} missing: {KEYS[key]}")
    if "hub" not in spec and "files" not in spec:
        raise UsageError(f"{path}: give key 'hub' ({KEYS['hub']}) or 'files' ({KEYS['files']}), or both")
    if ("labels" in spec) == ("target" in spec):
        raise UsageError(f"{path}: give key 'labels' ({KEYS['labels']}) or 'target' ({KEYS['target']}), one of them")
    for key, check in CHECKS.items():
        if key in spec:
            check(path, key, spec[key], spec)
    return spec


def fail(path: Path, key: str, problem: str):
    raise UsageError(f"{path}: key {key!r}: {problem}")


def check_name(path, key, value, spec):
    if not isinstance(value, str) or not value.strip() or any(c.isspace() or c == "," for c in value):
        fail(path, key, f"{value!r} is not a name (a word without spaces or commas)")


def check_names(path, key, value, spec):
    if not isinstance(value, list) or not value:
        fail(path, key, f"takes a list of names, not {value!r}")
    for item in value:
        check_name(path, key, item, spec)


def check_pair(path, key, value, spec):
    """Two fields, both shown by `input`: the pair is a view of what the source joins."""
    check_names(path, key, value, spec)
    if len(value) != 2:
        fail(path, key, f"takes the two text fields of a pair, not {value!r}")
    shown = {field for _, field, _, _ in string.Formatter().parse(spec.get("input", "")) if field}
    for field in value:
        if field not in shown:
            fail(path, key, f"{field!r} is not a field of input ({', '.join(sorted(shown)) or 'none'})")


def check_mapping(keys: tuple[str, ...], required: tuple[str, ...] = ()):
    """A check for a mapping key whose own keys are `keys` (strings as values)."""
    def check(path, key, value, spec):
        if not isinstance(value, dict):
            fail(path, key, f"takes a mapping with keys {', '.join(keys)}, not {value!r}")
        for inner, item in value.items():
            if inner not in keys:
                fail(path, key, f"unknown key {inner!r}; valid: {', '.join(keys)}")
            if not isinstance(item, str):
                fail(path, key, f"{inner} takes a string, not {item!r}")
        for inner in required:
            if inner not in value:
                fail(path, key, f"{inner} missing; valid: {', '.join(keys)}")
    return check


def check_files(path, key, value, spec):
    splits = spec.get("splits", {}) if isinstance(spec.get("splits"), dict) else {}
    names = ("dir", *SPLIT_KEYS, *sorted(set(splits.values()) - set(SPLIT_KEYS)))
    check_mapping(names)(path, key, value, spec)
    for split, file in value.items():
        if split != "dir" and not file.endswith(READERS):
            fail(path, key, f"{split}: {file!r} is not a file bench reads; valid: {', '.join(READERS)}")


def check_choice(choices: tuple[str, ...]):
    def check(path, key, value, spec):
        if value not in choices:
            fail(path, key, f"{value!r} is not one of: {', '.join(choices)}")
    return check


def check_template(path, key, value, spec):
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None] if isinstance(
            value, str) else None
    except ValueError as error:
        fail(path, key, f"{value!r} is not a template ({error}); write fields as {{name}} and braces as {{{{ }}}}")
    if fields is None or any(not name.isidentifier() for name in fields):
        fail(path, key, f"{value!r}: a string whose fields are row fields in braces, e.g. '{{question}}'")


def check_labels(path, key, value, spec):
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        fail(path, key, f"takes a list of target strings, not {value!r}")


def check_label_values(path, key, value, spec):
    labels = spec.get("labels")
    if not isinstance(labels, list):
        fail(path, key, "goes with labels (a classification task); an open-ended task has a target template")
    if not isinstance(value, list) or len(value) != len(labels):
        fail(path, key, f"takes a list as long as labels ({len(labels)}), not {value!r}")


def check_metrics(path, key, value, spec):
    from tasks.metrics import METRICS

    if not isinstance(value, list) or not value:
        fail(path, key, f"takes a list of metrics, not {value!r}; valid: {', '.join(sorted(METRICS.names()))}")
    for name in value:
        if name not in METRICS:
            fail(path, key, f"unknown metric {name!r}; valid: {', '.join(sorted(METRICS.names()))}")


def check_suites(path, key, value, spec):
    from tasks.registry import BUILTIN_SUITES

    check_names(path, key, value, spec)
    for suite in value:
        if suite in BUILTIN_SUITES:
            fail(path, key, f"{suite!r} is one of bench's suites ({', '.join(BUILTIN_SUITES)}), which a task file "
                            "cannot join; name a suite of your own")


def check_length(path, key, value, spec):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fail(path, key, f"takes a positive integer, not {value!r}")


CHECKS = {
    "task": check_name, "prefix": check_name, "aliases": check_names,
    "hub": check_mapping(("path", "config", "revision"), required=("path",)),
    "splits": check_mapping(SPLIT_KEYS), "files": check_files,
    "split_protocol": check_choice(PROTOCOLS), "input": check_template, "target": check_template,
    "labels": check_labels, "label_values": check_label_values, "label_field": check_name, "metrics": check_metrics,
    "suites": check_suites,
    "max_source_length": check_length, "max_target_length": check_length, "pair": check_pair,
}
"""The check of each key's value, in this order (`labels` before `label_values`)."""
