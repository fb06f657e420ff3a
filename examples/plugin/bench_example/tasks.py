"""The plugin's task entry point: `register(registry)` adds `tasks.base.Task` instances.

`polarity` reads the small jsonl files shipped in this package (data/polarity/) as its
official release files, so `bench run --tasks polarity --data-dir <package>/data` runs offline;
the same rows in the Hub's schema (fixtures/polarity/) serve `--fixtures` and `--profile smoke`.
"""
from __future__ import annotations

from pathlib import Path

from tasks.base import DataError, HubSource, Task, field, label_index
from tasks.loading import read_json_lines

DATA = Path(__file__).parent / "data"
"""What to pass as `--data-dir` for the shipped files."""


class Polarity(Task):
    name, prefix, official_dir = "polarity", "polarity", "polarity"
    hub = HubSource("stanfordnlp/sst2", None, "main")
    split_protocol = "small"
    official_splits = {"train": "train.jsonl", "validation": "validation.jsonl"}
    fixtures_dir = Path(__file__).parent / "fixtures" / "polarity"
    labels = ("negative", "positive")
    label_names = labels
    max_source_length = 64

    def read_official(self, data_dir: Path, hub_split: str) -> list[dict]:
        path = data_dir / self.official_dir / self.official_splits[hub_split]
        if not path.is_file():
            raise DataError(f"{path}: missing (the polarity files ship in {DATA})")
        return [{"sentence": field(record, "sentence", path, line),
                 "label": label_index(field(record, "label", path, line), self.labels, path, line)}
                for line, record in read_json_lines(path)]

    def source(self, row, protocol):
        return self.join(("sentence", row["sentence"]))

    def target(self, row, protocol):
        return self.labels[row["label"]]


def register(registry) -> None:
    registry.register(Polarity.name, Polarity())
