"""The Hub path users run, with `datasets.load_dataset` replaced by a local stand-in."""
from __future__ import annotations

import datasets
import pytest

from bench.presets import PRESETS
from tasks.loading import DataSource, load_examples, read_rows
from tasks.registry import TASKS


@pytest.fixture()
def hub(monkeypatch):
    """Records each call and answers with the given rows, as a `datasets.Dataset`."""
    calls, tables = [], {}

    def load_dataset(path, name=None, *, data_dir=None, revision=None, split=None):
        calls.append({"path": path, "name": name, "data_dir": data_dir, "revision": revision, "split": split})
        return datasets.Dataset.from_list(tables[split])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    read_rows.cache_clear()
    yield calls, tables
    read_rows.cache_clear()


def test_parquet_branch_configs_are_folders(hub):
    calls, tables = hub
    tables["validation"] = [{"premise": "p", "hypothesis": "h", "idx": 0, "label": 2}]
    rows = read_rows(TASKS.get("cb"), "validation", DataSource("hub"))
    assert rows == tables["validation"]
    assert calls == [{"path": "aps/super_glue", "name": None, "data_dir": "cb", "revision": "refs/convert/parquet",
                      "split": "validation"}]


def test_script_free_main_branch_takes_the_config_name(hub):
    calls, tables = hub
    tables["validation_mismatched"] = [{"premise": "p", "hypothesis": "h", "label": 1, "idx": 0}]
    (example,) = load_examples(TASKS.get("mnli"), "validation", DataSource("hub"), PRESETS.get("paper"))
    assert example.source == "mnli premise: p hypothesis: h" and example.target == "1"
    assert calls[0]["name"] == "mnli" and calls[0]["data_dir"] is None and calls[0]["path"] == "nyu-mll/glue"


def test_mrqa_keeps_only_its_subset(hub):
    calls, tables = hub
    row = {"context": "Ada won .", "context_tokens": {"tokens": [], "offsets": []}, "qid": "q",
           "question": "Who won?", "question_tokens": {"tokens": [], "offsets": []},
           "detected_answers": {"text": [], "char_spans": [], "token_spans": []}, "answers": ["Ada"]}
    tables["validation"] = [{**row, "subset": "SearchQA", "qid": "a"}, {**row, "subset": "NewsQA", "qid": "b"}]
    rows = read_rows(TASKS.get("newsqa"), "validation", DataSource("hub"))
    assert [r["qid"] for r in rows] == ["b"]
    assert calls[0]["path"] == "mrqa-workshop/mrqa"
