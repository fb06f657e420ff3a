"""GLUE tasks: Hub schema of `nyu-mll/glue`, official TSV converters.

Every GLUE task is a list of text columns plus a label, so one converter
(`GlueTask.read_official`) serves them all: a class names its Hub columns, the
official TSV column behind each, and the label strings of the official files
in Hub id order. The converter mirrors what the Hub's parquet holds (it was
made by the old `glue` loading script from the same files): text verbatim,
including SST-2's trailing space before the tab, and `idx` = record number.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np

from tasks.base import DataError, HubSource, Task, field, label_index, locate
from tasks.loading import read_json_lines

GLUE_REVISION = "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c"
"""A commit of nyu-mll/glue's main branch (script-free: `<config>/<split>-00000-of-00001.parquet`).
Where it was found (stored public sources; the Hub itself was out of reach): zenml-io/zenml,
src/zenml/integrations/huggingface/materializers/huggingface_datasets_materializer.py, quotes a
`datasets` download checksum key `hf://datasets/nyu-mll/glue@bcdcba79.../mrpc/train-00000-of-00001.parquet`;
a CI log shows `resolve/main/README.md` of nyu-mll/glue redirecting to
`api/resolve-cache/datasets/nyu-mll/glue/bcdcba79.../README.md` (200), i.e. main was this commit
when read; several projects pin it and fetch `sst2/{train,validation}-00000-of-00001.parquet` at it
(67,349 and 872 rows). Commit message and date: not known from here."""

csv.field_size_limit(sys.maxsize)


def read_tsv(path: Path, header: bool = True) -> tuple[list[str], list[list[str]]]:
    """GLUE TSVs hold unbalanced quotes, so quoting is off; a BOM is dropped."""
    if not path.is_file():
        raise DataError(f"{path}: missing (expected an official GLUE release file)")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not header:
        return [], lines
    if not lines:
        raise DataError(f"{path}: empty (expected a header line)")
    return lines[0], lines[1:]


def tsv_records(
    path: Path, required: tuple[str, ...] = (), columns: tuple[str, ...] | None = None,
) -> list[tuple[int, dict]]:
    """(line number, row) of a TSV, each row a dict keyed by column name.

    Names come from the header line (so MNLI's 16 dev and 12 train columns read
    alike), or from `columns` for a header-less file (CoLA). A `required`
    column absent from the header fails once, for the whole file. The line
    number (from 1, the header counted) is what an error about the row names.
    """
    if columns is None:
        header, lines = read_tsv(path)
        first_line = 2
    else:
        header, lines = list(columns), read_tsv(path, header=False)[1]
        first_line = 1
    missing = [name for name in required if name not in header]
    if missing:
        raise DataError(f"{path}: header: missing column {missing[0]!r} (columns: {', '.join(header)})")
    records = []
    for number, line in enumerate(lines, first_line):
        if len(line) < len(header):
            raise DataError(f"{path}: {locate(number)}: {len(line)} fields, expected {len(header)}")
        records.append((number, dict(zip(header, line))))
    return records


class GlueTask(Task):
    official_splits = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
    labels = ("0", "1")
    columns: ClassVar[dict[str, str]]
    """Hub text column -> official TSV column, in source order (the source shows every one)."""
    label_column: ClassVar[str] = "label"
    """Official TSV column holding the label (absent from test files)."""
    file_labels: ClassVar[tuple[str, ...]] = ("0", "1")
    """Label strings of the official files, in Hub id order."""
    unlabelled: ClassVar[int | float] = -1
    """The Hub's label of a test row."""

    @classmethod
    def hub_source(cls, config: str) -> HubSource:
        return HubSource("nyu-mll/glue", config, GLUE_REVISION)

    @property
    def pair_fields(self) -> tuple[str, str] | None:
        """Every two-column GLUE task compares its two texts (RTE, MNLI, QNLI, MRPC, QQP, STS-B)."""
        return tuple(self.columns) if len(self.columns) == 2 else None

    def read_official(self, data_dir: Path, hub_split: str) -> list[dict]:
        path = data_dir / self.official_dir / self.official_splits[hub_split]
        labelled = not hub_split.startswith("test")
        required = (*self.columns.values(), *([self.label_column] if labelled else []))
        return [
            {
                **{hub: record[column] for hub, column in self.columns.items()},
                "label": self.label(record[self.label_column], path, line) if labelled else self.unlabelled,
                "idx": index,
            }
            for index, (line, record) in enumerate(self.records(path, hub_split, required))
        ]

    def records(self, path: Path, hub_split: str, required: tuple[str, ...]) -> list[tuple[int, dict]]:
        """The file's (line number, record) pairs, records keyed by column name."""
        return tsv_records(path, required)

    def label(self, value: str, path: Path, line: int) -> int | float:
        """Official label string -> Hub label; `line` locates an error."""
        return label_index(value, self.file_labels, path, line)

    def source(self, row, protocol):
        return self.join(*((column, row[column]) for column in self.columns))


class MNLI(GlueTask):
    """Dev = mismatched, test = matched validation, as in the papers."""

    name, prefix, official_dir = "mnli", "mnli", "glue/MNLI"
    hub = GlueTask.hub_source("mnli")
    split_protocol = "own"
    hub_validation, hub_test = "validation_mismatched", "validation_matched"
    official_splits = {
        "train": "train.tsv",
        "validation_matched": "dev_matched.tsv",
        "validation_mismatched": "dev_mismatched.tsv",
        "test_matched": "test_matched.tsv",
        "test_mismatched": "test_mismatched.tsv",
    }
    columns = {"premise": "sentence1", "hypothesis": "sentence2"}
    label_column = "gold_label"
    labels = ("0", "1", "2")
    file_labels = label_names = ("entailment", "neutral", "contradiction")


class Paraphrase(GlueTask):
    """QQP and MRPC: scored by F1 and accuracy (both enter the checkpoint mean)."""

    metrics = ("f1", "accuracy")

    @property
    def report_metric(self):
        return "accuracy"  # what the papers' tables print


class QQP(Paraphrase):
    name, prefix, official_dir = "qqp", "qqp", "glue/QQP"
    hub = GlueTask.hub_source("qqp")
    split_protocol = "large"
    columns = {"question1": "question1", "question2": "question2"}
    label_column = "is_duplicate"
    label_names = ("not_duplicate", "duplicate")


class QNLI(GlueTask):
    name, prefix, official_dir = "qnli", "qnli", "glue/QNLI"
    hub = GlueTask.hub_source("qnli")
    split_protocol = "large"
    columns = {"question": "question", "sentence": "sentence"}
    file_labels = label_names = ("entailment", "not_entailment")


class SST2(GlueTask):
    name, prefix, official_dir = "sst2", "sst2", "glue/SST-2"
    hub = GlueTask.hub_source("sst2")
    split_protocol = "large"
    columns = {"sentence": "sentence"}
    label_names = ("negative", "positive")


class STSB(GlueTask):
    """Regression: the score (0-5, float32 on the Hub) written as a one-decimal string."""

    name, prefix, official_dir = "stsb", "stsb", "glue/STS-B"
    hub = GlueTask.hub_source("stsb")
    split_protocol = "small"
    columns = {"sentence1": "sentence1", "sentence2": "sentence2"}
    label_column = "score"
    labels = None
    encoder_form = "regression"
    unlabelled = -1.0
    metrics = ("pearson", "spearman")
    max_target_length = 8
    """Every target (0.0 to 5.0) is 3 T5 tokens with EOS; 8 leaves room, 128 would waste padding."""

    def label(self, value, path, line):
        """Rounded through float32 as the Hub stores it, so both sources format alike."""
        try:
            score = float(np.float32(value))
        except ValueError:
            raise DataError(f"{path}: {locate(line)}: score {value!r} is not a number") from None
        if not 0 <= score <= 5:
            raise DataError(f"{path}: {locate(line)}: score {value!r} outside 0-5")
        return score

    def target(self, row, protocol):
        if protocol.stsb_grid:
            return f"{round(row['label'] * 5) / 5:.1f}"  # T5's 0.2 grid (round half to even, as tf.round)
        return str(np.round((row["label"] * 5) / 5, decimals=1))  # the official code, verbatim: one decimal

    def is_valid(self, prediction):
        """A finite number: "nan" and "inf" parse, but the correlations score them as -1 like any invalid string."""
        try:
            return bool(np.isfinite(float(prediction)))
        except ValueError:
            return False


class MRPC(Paraphrase):
    name, prefix, official_dir = "mrpc", "mrpc", "glue/MRPC"
    hub = GlueTask.hub_source("mrpc")
    split_protocol = "small"
    columns = {"sentence1": "#1 String", "sentence2": "#2 String"}
    label_column = "Quality"
    label_names = ("not_equivalent", "equivalent")


class CoLA(GlueTask):
    """The train and dev files have no header; the test file has one (index, sentence)."""

    name, prefix, official_dir = "cola", "cola", "glue/CoLA"
    hub = GlueTask.hub_source("cola")
    split_protocol = "small"
    columns = {"sentence": "sentence"}
    label_names = ("unacceptable", "acceptable")
    metrics = ("matthews",)
    header_less = ("source", "label", "original_mark", "sentence")

    def records(self, path, hub_split, required):
        return tsv_records(path, required, columns=None if hub_split.startswith("test") else self.header_less)


class RTE(GlueTask):
    """GLUE RTE; also reads SuperGLUE's RTE jsonl (same data, premise/hypothesis)."""

    name, prefix, official_dir = "rte", "rte", "glue/RTE"
    hub = GlueTask.hub_source("rte")
    split_protocol = "small"
    columns = {"sentence1": "sentence1", "sentence2": "sentence2"}
    file_labels = label_names = ("entailment", "not_entailment")

    def read_official(self, data_dir, hub_split):
        glue_path = data_dir / self.official_dir / self.official_splits[hub_split]
        if glue_path.is_file():
            return super().read_official(data_dir, hub_split)
        jsonl = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}[hub_split]
        path = data_dir / "superglue" / "RTE" / jsonl
        if not path.is_file():
            raise DataError(f"{glue_path}: missing (and no SuperGLUE copy at {path})")
        rows = []
        for index, (line, record) in enumerate(read_json_lines(path)):
            rows.append({
                "sentence1": field(record, "premise", path, line),
                "sentence2": field(record, "hypothesis", path, line),
                "label": self.unlabelled if record.get("label") is None else self.label(record["label"], path, line),
                "idx": record.get("idx", index),
            })
        return rows


TASK_CLASSES = (MNLI, QQP, QNLI, SST2, STSB, MRPC, CoLA, RTE)
