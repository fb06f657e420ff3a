"""GLUE tasks: Hub schema of `nyu-mll/glue`, official TSV converters."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

from tasks.base import DataError, HubSource, Task
from tasks.loading import read_jsonl

GLUE_REVISION = "main"

csv.field_size_limit(sys.maxsize)


def read_tsv(path: Path, header: bool = True) -> tuple[list[str], list[list[str]]]:
    """GLUE TSVs hold unbalanced quotes, so quoting is off; a BOM is dropped."""
    if not path.is_file():
        raise DataError(f"{path}: missing (expected an official GLUE release file)")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not header:
        return [], lines
    return lines[0], lines[1:]


def tsv_records(path: Path) -> list[dict]:
    """Rows of a headed TSV as dicts keyed by column name (MNLI's 16 and 12 columns alike)."""
    columns, lines = read_tsv(path)
    records = []
    for number, line in enumerate(lines, 2):
        if len(line) < len(columns):
            raise DataError(f"{path}: line {number}: {len(line)} fields, header has {len(columns)}")
        records.append(dict(zip(columns, line)))
    return records


def label_id(value: str, names: tuple[str, ...], path: Path, index: int) -> int:
    if value not in names:
        raise DataError(f"{path}: record {index}: unknown label {value!r} (valid: {', '.join(names)})")
    return names.index(value)


class GlueTask(Task):
    official_splits = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
    labels = ("0", "1")

    @classmethod
    def hub_source(cls, config: str) -> HubSource:
        return HubSource("nyu-mll/glue", config, GLUE_REVISION)


class RTE(GlueTask):
    """GLUE RTE; also reads SuperGLUE's RTE jsonl (same data, premise/hypothesis)."""

    name, prefix, official_dir = "rte", "rte", "glue/RTE"
    hub = GlueTask.hub_source("rte")
    split_protocol = "small"
    label_names = ("entailment", "not_entailment")

    def read_official(self, data_dir, hub_split):
        glue_path = data_dir / self.official_dir / self.official_splits[hub_split]
        if glue_path.is_file():
            return [
                {
                    "sentence1": record["sentence1"],
                    "sentence2": record["sentence2"],
                    "label": label_id(record["label"], self.label_names, glue_path, index) if "label" in record else -1,
                    "idx": index,
                }
                for index, record in enumerate(tsv_records(glue_path))
            ]
        jsonl = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}[hub_split]
        path = data_dir / "superglue" / "RTE" / jsonl
        if not path.is_file():
            raise DataError(f"{glue_path}: missing (and no SuperGLUE copy at {path})")
        rows = []
        for index, record in enumerate(read_jsonl(path)):
            for key in ("premise", "hypothesis"):
                if key not in record:
                    raise DataError(f"{path}: record {index}: missing field {key!r}")
            label = record.get("label")
            rows.append({
                "sentence1": record["premise"],
                "sentence2": record["hypothesis"],
                "label": -1 if label is None else label_id(label, self.label_names, path, index),
                "idx": record.get("idx", index),
            })
        return rows

    def source(self, row, protocol):
        return self.join(("sentence1", row["sentence1"]), ("sentence2", row["sentence2"]))


TASK_CLASSES = (RTE,)
