"""What a task is: sources, split protocol, formatter, labels, metrics, lengths.

A task never touches tensors. It turns rows in the Hub schema (whichever
source they came from) into text-to-text `Example`s; everything after that is
the pipeline's job. One small subclass per dataset, as in Compacter's
`AbstractTask`, with the declarative parts as class attributes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from bench.core.presets import Protocol


@dataclass(frozen=True)
class Example:
    source: str
    target: str
    task: str
    extra: dict = field(default_factory=dict)
    """Scoring context: `group` (MultiRC question), `answers` (QA gold answers)."""
    pair: tuple[str, str] | None = None
    """A sentence-pair task's two texts, each as it stands (`Task.pair_fields`): what a bi-encoder
    reads, one text at a time, under `--train pair_encoding=two_tower`. A view of the same row
    fields the joined `source` shows, so not part of the data fingerprint."""


PARQUET_BRANCH = "refs/convert/parquet"
"""The Hub's parquet export of a dataset repository, where a config is a folder of split folders."""


def is_commit(revision: str) -> bool:
    """Whether a revision is a full commit id (40 lowercase hex digits), which names one fixed set
    of files, rather than a branch, which moves."""
    return re.fullmatch(r"[0-9a-f]{40}", revision) is not None


@dataclass(frozen=True)
class HubSource:
    path: str
    config: str | None
    revision: str
    """What `datasets` is asked to read: a commit of the dataset repository where a trustworthy one
    was found (each task module says where), else the branch itself; recorded in every result, and
    the data fingerprints tell whether a later read of a branch gave the same rows."""
    branch: str = "main"
    """The branch `revision` is, or is a commit of. It fixes the layout: on `main` a config is a
    builder config (`datasets` reads the repository's own config list), on `PARQUET_BRANCH` a config
    is a folder (tasks/loading.py `read_hub`); a commit does not say which branch it came from."""


class DataError(Exception):
    """A data file or record that cannot be used: one line naming file, record, problem."""


def locate(where: int | str) -> str:
    """A record's place in a file, for errors: in a line-based file (TSV, CSV, JSONL) its line as an
    editor numbers it (from 1, header and blank lines counted), one numbering for every message; in a
    nested JSON file a description such as "article 0 paragraph 2"."""
    return f"line {where}" if isinstance(where, int) else where


def field(record, name: str, path: Path, where: int | str):
    """`record[name]`, or a DataError naming the file, the record and the missing field."""
    if not isinstance(record, dict) or name not in record:
        raise DataError(f"{path}: {locate(where)}: missing field {name!r}")
    return record[name]


def label_index(value, names: tuple, path: Path, where: int | str) -> int:
    """An official label (string, boolean or integer) -> its Hub id, its position in `names`;
    anything else is a DataError that lists the valid labels."""
    if value not in names:
        raise DataError(f"{path}: {locate(where)}: unknown label {value!r} (valid: {', '.join(map(str, names))})")
    return names.index(value)


class Task:
    name: ClassVar[str]
    """Registry name (what users type)."""
    prefix: ClassVar[str]
    """Source prefix as the official code spells it (e.g. `superglue-boolq`)."""
    aliases: ClassVar[tuple[str, ...]] = ()
    """Other names users may type (the prefix is always an alias)."""
    hub: ClassVar[HubSource]
    split_protocol: ClassVar[str]
    """`small` (halve validation), `large` (carve dev from train) or `own`: tasks/splits.py."""
    hub_train: ClassVar[str] = "train"
    hub_validation: ClassVar[str] = "validation"
    hub_test: ClassVar[str] = "validation"
    """Hub split serving as test (large and own protocols)."""
    max_train: ClassVar[int | None] = None
    """Cap on training rows (Yelp: 100,000)."""
    labels: ClassVar[tuple[str, ...] | None] = None
    """Valid target strings of a classification task; None for open-ended targets."""
    label_names: ClassVar[tuple[str, ...] | None] = None
    """Human names of the label ids, for reports."""
    metrics: ClassVar[tuple[str, ...]] = ("accuracy",)
    """Metric names, primary first (tasks/metrics.py)."""
    selection_metrics: ClassVar[tuple[str, ...] | None] = None
    """Metrics averaged for checkpoint selection (None: all, the official `average_metrics`);
    generation tasks select on BLEU since TER falls as quality rises."""
    max_source_length: ClassVar[int] = 256
    multitask_max_source_length: ClassVar[int] = 256
    """In multi-task runs the papers used 256 for GLUE, SuperGLUE and Others, 512 for MRQA."""
    max_target_length: ClassVar[int | None] = None
    """None: the longest label (classification) or 128 (open-ended)."""
    batch_size: ClassVar[int] = 32
    grad_accum: ClassVar[int] = 1
    """The papers' batch: 32, or for MRQA 16 with 2 accumulation steps."""
    official_dir: ClassVar[str] = ""
    """Folder under `--data-dir` holding the official release files."""
    official_splits: ClassVar[dict[str, str]] = {}
    """Hub split name -> file name inside `official_dir`."""
    fixtures_dir: ClassVar[Path | None] = None
    """Folder of the task's fixtures (`<hub split>.jsonl`, Hub-schema rows) for `--fixtures` and
    the smoke profile; None: the project's own, tasks/fixtures/<name>/ (a plugin ships its own)."""

    # -- rows -------------------------------------------------------------
    def read_official(self, data_dir: Path, hub_split: str) -> list[dict]:
        """Read an official release file and convert it to Hub-schema rows."""
        raise NotImplementedError

    def evaluation_rows(self, rows: list[dict]) -> list[dict]:
        """A dev/test split's rows as `format` takes them (E2E: one row per input with all its references)."""
        return rows

    def hub_data_files(self, hub_split: str) -> list[str] | None:
        """The Hub files to read for `hub_split`, where the split's files hold more than this task
        (MRQA: the shards of its subset); None: all of them, as `datasets` finds them."""
        return None

    def select_hub_rows(self, dataset, hub_split: str):
        """The rows of a Hub split that belong to this task (MRQA keeps its subset)."""
        return dataset

    group_switch: ClassVar[str | None] = None
    """Protocol switch that turns on grouped dev/test splitting with `group_key`."""

    def group_key(self, row: dict):
        """Key keeping rows together in a dev/test split (MultiRC: the question)."""
        raise NotImplementedError

    # -- text ---------------------------------------------------------------
    def format(self, row: dict, protocol: Protocol, for_training: bool) -> list[Example]:
        """Text-to-text examples for one Hub row (usually one; ReCoRD: one per answer)."""
        return [Example(self.source(row, protocol), self.target(row, protocol), self.name, self.extra(row, protocol),
                        self.pair(row))]

    pair_fields: ClassVar[tuple[str, str] | None] = None
    """The row's two text fields where the task compares two texts (entailment, paraphrase,
    similarity: RTE, MNLI, QNLI, MRPC, QQP, STS-B, CB, SciTail, PAWS): a sentence encoder can
    encode each alone (two towers). None: one text, or texts whose roles differ beyond a pair
    (BoolQ's question and passage, WiC's word, COPA's choices), read as one segment."""

    def pair(self, row: dict) -> tuple[str, str] | None:
        """The two texts of a pair task's row, as they stand."""
        return None if self.pair_fields is None else (row[self.pair_fields[0]], row[self.pair_fields[1]])

    def source(self, row: dict, protocol: Protocol) -> str:
        raise NotImplementedError

    def target(self, row: dict, protocol: Protocol) -> str:
        return str(row["label"])

    def extra(self, row: dict, protocol: Protocol) -> dict:
        return {}

    def join(self, *pairs: tuple[str, str]) -> str:
        """`prefix field: value field: value`, single spaces, as the official code joins."""
        parts = [self.prefix]
        for key, value in pairs:
            parts += [f"{key}:", value]
        return " ".join(parts)

    @property
    def report_metric(self) -> str:
        """The metric the papers' tables print for this task (leaderboard cells)."""
        return self.metrics[0]

    def is_valid(self, prediction: str) -> bool:
        """Whether a decoded prediction is a possible target (invalid ones are counted)."""
        return self.labels is None or prediction in self.labels

    encoder_form: ClassVar[str | None] = None
    """How an encoder with a head runs the task when `labels` is None: "regression" (STS-B's
    score), or None: the task needs generation (QA, ReCoRD, data-to-text)."""

    @property
    def head_form(self) -> str | None:
        """"classification" over the labels for every label-set task (the formatted source is one
        segment, so COPA, WSC, WiC, MultiRC and BoolQ classify their source string as it is),
        "regression", or None when an encoder cannot run the task."""
        return "classification" if self.labels else self.encoder_form

    # -- defaults -------------------------------------------------------------
    def default_max_target_length(self, tokenizer) -> int:
        if self.max_target_length is not None:
            return self.max_target_length
        if self.labels is None:
            return 128
        return max(len(tokenizer(label).input_ids) for label in self.labels)

    def default_epochs(self, num_train: int) -> int:
        return 20 if num_train < 10_000 else 10

    def describe(self, suites: list[str] | None = None) -> dict:
        """The task for listings; `suites` are those it belongs to (tasks.registry.describe_task knows them)."""
        return {
            "name": self.name,
            "prefix": self.prefix,
            "suites": list(suites or []),
            "hub": {"path": self.hub.path, "config": self.hub.config, "revision": self.hub.revision},
            "official_files": {s: f"{self.official_dir}/{f}" for s, f in self.official_splits.items()},
            "split_protocol": self.split_protocol,
            "labels": list(self.labels) if self.labels else None,
            "metrics": list(self.metrics),
            "max_source_length": self.max_source_length,
            "pair": list(self.pair_fields) if self.pair_fields else None,
        }
