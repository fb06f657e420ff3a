"""The Hub path users run, with `datasets.load_dataset` replaced by a local stand-in, or run for real
on a folder laid out as the Hub's, or offline."""
from __future__ import annotations

import importlib
import importlib.util
import json

import datasets
import huggingface_hub.errors
import pytest

from bench.core.presets import PRESETS
from bench.core.registry import UsageError
from tasks.base import DataError
from tasks.base import HubSource, is_commit
from tasks.declarative import DeclarativeTask, read_spec
from tasks.loading import DataSource, load_examples, read_rows, warn_unpinned
from tasks.registry import TASKS

PAPER = PRESETS.get("paper")
OFFLINE_HINT = ("; offline, pass --data-dir with the official files (expects superglue/CB/) or use --profile smoke "
                "for the shipped fixtures")


@pytest.fixture()
def hub(monkeypatch):
    """Records each call and answers with the given table (rows, or columns), as a `datasets.Dataset`."""
    calls, tables = [], {}

    def load_dataset(path, name=None, *, data_dir=None, revision=None, split=None, **options):
        calls.append({"path": path, "name": name, "data_dir": data_dir, "revision": revision, "split": split,
                      **options})
        table = tables[split]
        return datasets.Dataset.from_dict(table) if isinstance(table, dict) else datasets.Dataset.from_list(table)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    read_rows.cache_clear()
    warn_unpinned.cache_clear()
    yield calls, tables
    read_rows.cache_clear()
    warn_unpinned.cache_clear()


@pytest.fixture()
def hub_folder(monkeypatch, tmp_path):
    """The real `datasets.load_dataset`, reading a Hub id from the folder of that name under tmp_path
    (its layout as on the Hub), offline."""
    load = datasets.load_dataset

    def load_dataset(path, *args, revision=None, **options):
        return load(str(tmp_path / path), *args, **options)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    read_rows.cache_clear()
    yield tmp_path
    read_rows.cache_clear()


SUPER_GLUE_COMMIT = "3de24cf8022e94f4ee4b9d55a6f539891524d646"


def test_a_commit_of_main_takes_the_config_name(hub):
    calls, tables = hub
    tables["validation"] = [{"premise": "p", "hypothesis": "h", "idx": 0, "label": 2}]
    rows = read_rows(TASKS.get("cb"), "validation", DataSource("hub"))
    assert rows == tables["validation"]
    assert calls == [{"path": "aps/super_glue", "name": "cb", "data_dir": None, "revision": SUPER_GLUE_COMMIT,
                      "split": "validation"}]


def test_script_free_main_branch_takes_the_config_name(hub):
    calls, tables = hub
    tables["validation_mismatched"] = [{"premise": "p", "hypothesis": "h", "label": 1, "idx": 0}]
    (example,) = load_examples(TASKS.get("mnli"), "validation", DataSource("hub"), PAPER)
    assert example.source == "mnli premise: p hypothesis: h" and example.target == "1"
    assert calls[0]["name"] == "mnli" and calls[0]["data_dir"] is None and calls[0]["path"] == "nyu-mll/glue"


# -- revisions: a commit where one was found, else a branch that says so ----------------------------------------------

PINS = {
    **dict.fromkeys(("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte"),
                    ("nyu-mll/glue", "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c")),
    **dict.fromkeys(("boolq", "cb", "copa", "multirc", "record", "wic", "wsc"), ("aps/super_glue", SUPER_GLUE_COMMIT)),
    "squad": ("rajpurkar/squad", "7b6d24c440a36b6815f21b70d25016731768db1f"),
    **dict.fromkeys(("nq", "hotpotqa", "searchqa", "newsqa"),
                    ("mrqa-workshop/mrqa", "f3178d9888471dfb2b67c93de14f0ddf499a8d9f")),
    "winogrande": ("allenai/winogrande", "01e74176c63542e6b0bcb004dcdea22d94fb67b5"),
    "yelp": ("fancyzhx/yelp_polarity", "bbf1c97a1f0cf005e5aded43839fd814654a1557"),
    "scitail": ("allenai/scitail", "0cc4353235b289165dfde1c7c5d1be983f99ce44"),
    "paws": ("google-research-datasets/paws", "161ece9501cf0a11f3e48bd356eaa82de46d6a09"),
    "imdb": ("stanfordnlp/imdb", "e6281661ce1c48d982bc483cf8a173c1bbeb5d31"),
}
"""Each pinned task's dataset and the commit of its main branch found in public sources (tasks/README.md)."""
BRANCH_ONLY = {"e2e": "tuetschek/e2e_nlg", "webnlg": "webnlg-challenge/web_nlg"}
"""The built-in tasks no trustworthy commit was found for (tasks/README.md, tasks/nlg.py): they read the
parquet export's branch, `refs/convert/parquet`, and warn that it is unpinned."""


def builtin_tasks() -> list[str]:
    from tasks import glue, nlg, others, qa, superglue

    return [cls.name for module in (glue, superglue, qa, others, nlg) for cls in module.TASK_CLASSES]


def test_every_builtin_task_reads_a_commit_or_is_a_listed_branch_only_task():
    for name in builtin_tasks():
        hub = TASKS.get(name).hub
        if name in BRANCH_ONLY:
            assert hub == HubSource(BRANCH_ONLY[name], hub.config, "refs/convert/parquet", "refs/convert/parquet")
        else:
            assert len(hub.revision) == 40 and set(hub.revision) <= set("0123456789abcdef"), name
            assert (hub.path, hub.revision, hub.branch) == (*PINS[name], "main")
    assert sorted(builtin_tasks()) == sorted([*PINS, *BRANCH_ONLY])


@pytest.mark.parametrize("name", sorted(PINS))
def test_datasets_is_asked_for_the_pinned_commit_by_config_name(hub, capsys, name):
    calls, tables = hub
    task = TASKS.get(name)
    tables[task.hub_validation] = {"subset": [getattr(task, "subset", "")]}  # MRQA keeps its subset's rows
    read_rows(task, task.hub_validation, DataSource("hub"))
    path, commit = PINS[name]
    (call,) = calls
    assert (call["path"], call["name"], call["data_dir"], call["revision"]) == (path, task.hub.config, None, commit)
    assert "bench: warning" not in capsys.readouterr().err  # a commit is not warned about


UNPINNED = ("bench: warning: {} is read at branch {!r}, not at a commit: a later run may read other rows (the "
            "results' data fingerprints tell)\n")


def test_a_commit_of_the_parquet_export_is_read_by_folder(hub, capsys):
    """The branch, not the revision, picks the layout: a pinned parquet-export commit keeps configs as folders."""
    calls, tables = hub
    commit = "0123456789abcdef0123456789abcdef01234567"

    class PinnedWebNLG(type(TASKS.get("webnlg"))):
        hub = HubSource("webnlg-challenge/web_nlg", "webnlg_challenge_2017", commit, "refs/convert/parquet")

    tables["validation"] = [WEBNLG_ROW]
    read_rows(PinnedWebNLG(), "dev", DataSource("hub"))
    assert calls == [{"path": "webnlg-challenge/web_nlg", "name": None, "data_dir": "webnlg_challenge_2017",
                      "revision": commit, "split": "validation"}]
    assert "bench: warning" not in capsys.readouterr().err


def test_a_branch_is_warned_about_once_per_dataset_and_branch(hub, capsys):
    _, tables = hub
    tables["train"] = tables["validation"] = [WEBNLG_ROW]
    read_rows(TASKS.get("webnlg"), "train", DataSource("hub"))
    read_rows(TASKS.get("webnlg"), "dev", DataSource("hub"))
    assert capsys.readouterr().err == UNPINNED.format("webnlg-challenge/web_nlg", "refs/convert/parquet")


def test_a_failed_read_of_a_branch_is_its_error_alone(hub, monkeypatch, capsys):
    """No warning before an error: a Hub failure stays one line."""
    monkeypatch.setattr(datasets, "load_dataset", raising(ConnectionError("Couldn't reach it")))
    with pytest.raises(UsageError):
        read_rows(TASKS.get("webnlg"), "train", DataSource("hub"))
    assert "bench: warning" not in capsys.readouterr().err


@pytest.mark.parametrize("revision,expected", [
    ("bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c", True),
    ("BCDCBA79D07BC864C1C254CCFCEDCCE55BCC9A8C", False),  # the Hub's commit ids are lowercase
    ("bcdcba79d07bc864c1c254ccfcedcce55bcc9a8", False),  # 39 digits: an abbreviation, not a commit
    ("bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c0", False),
    ("bcdcba79d07bc864c1c254ccfcedcce55bcc9a8g", False),
    ("main", False), ("refs/convert/parquet", False),
])
def test_a_commit_is_forty_lowercase_hex_digits(revision, expected):
    assert is_commit(revision) is expected


# -- YAML tasks: revision optional (default main, warned about), a commit of main, or the parquet export -------------

def yaml_task(tmp_path, hub_line: str) -> DeclarativeTask:
    path = tmp_path / "task.yaml"
    path.write_text(f"task: mine\n{hub_line}\nsplit_protocol: small\ninput: '{{text}}'\nlabels: ['0', '1']\n")
    return DeclarativeTask(path, read_spec(path))


@pytest.mark.parametrize("hub_line,call,warned", [
    ("hub: {path: me/data}", {"name": None, "data_dir": None, "revision": "main"}, "main"),
    ("hub: {path: me/data, config: c, revision: dev}", {"name": "c", "data_dir": None, "revision": "dev"}, "dev"),
    ("hub: {path: me/data, config: c, revision: refs/convert/parquet}",
     {"name": None, "data_dir": "c", "revision": "refs/convert/parquet"}, "refs/convert/parquet"),
    (f"hub: {{path: me/data, config: c, revision: {SUPER_GLUE_COMMIT}}}",
     {"name": "c", "data_dir": None, "revision": SUPER_GLUE_COMMIT}, None),
], ids=["default-main", "other-branch", "parquet-export", "commit"])
def test_a_yaml_task_reads_its_revision_and_warns_unless_it_is_a_commit(hub, capsys, tmp_path, hub_line, call,
                                                                         warned):
    calls, tables = hub
    tables["validation"] = [{"text": "a", "label": 1}]
    assert read_rows(yaml_task(tmp_path, hub_line), "validation", DataSource("hub")) == tables["validation"]
    assert calls == [{"path": "me/data", **call, "split": "validation"}]
    assert capsys.readouterr().err == (UNPINNED.format("me/data", warned) if warned else "")


# -- WebNLG: the parquet branch's dev/ folder is the validation split ---------------------------------------------

WEBNLG_ROW = {
    "category": "Airport", "size": 1, "eid": "Id1", "original_triple_sets": {"otriple_set": [["a | b | c"]]},
    "modified_triple_sets": {"mtriple_set": [["Aarhus_Airport | runwayLength | 2702.0"]]},
    "shape": "", "shape_type": "",
    "lex": {"comment": ["good"], "lid": ["Id1"], "text": ["Aarhus Airport's runway length is 2702.0."], "lang": [""]},
    "test_category": "", "dbpedia_links": [], "links": [],
}


def test_webnlg_dev_is_asked_for_as_validation(hub):
    calls, tables = hub
    tables["validation"] = [WEBNLG_ROW]
    (example,) = load_examples(TASKS.get("webnlg"), "validation", DataSource("hub"), PAPER)
    assert calls == [{"path": "webnlg-challenge/web_nlg", "name": None, "data_dir": "webnlg_challenge_2017",
                      "revision": "refs/convert/parquet", "split": "validation"}]
    assert example.source == "webnlg Aarhus_Airport | runwayLength | 2702.0"
    assert example.extra == {"references": ["Aarhus Airport's runway length is 2702.0."]}


def test_webnlg_reads_a_parquet_branch_layout_with_datasets(hub_folder):
    config = hub_folder / "webnlg-challenge/web_nlg/webnlg_challenge_2017"
    for split, eid in (("train", "Id7"), ("dev", "Id1")):  # the export's folders are the script's split names
        (config / split).mkdir(parents=True)
        datasets.Dataset.from_list([{**WEBNLG_ROW, "eid": eid}]).to_parquet(config / split / "0000.parquet")
    assert [row["eid"] for row in read_rows(TASKS.get("webnlg"), "dev", DataSource("hub"))] == ["Id1"]
    assert [row["eid"] for row in read_rows(TASKS.get("webnlg"), "train", DataSource("hub"))] == ["Id7"]
    with pytest.raises(UsageError) as error:  # no test/ folder here: datasets' own error, kept
        read_rows(TASKS.get("webnlg"), "test", DataSource("hub"))
    assert str(error.value) == (
        "cannot load webnlg-challenge/web_nlg (webnlg_challenge_2017) at revision refs/convert/parquet from the "
        "Hugging Face Hub: ValueError: Unknown split \"test\". Should be one of ['train', 'validation'].")


# -- MRQA: only the subset's files ----------------------------------------------------------------------------------

MRQA_COMMIT = "f3178d9888471dfb2b67c93de14f0ddf499a8d9f"
MRQA_ROW = {"context": "Ada won .", "context_tokens": {"tokens": [], "offsets": []}, "qid": "q", "question": "Who won?",
            "question_tokens": {"tokens": [], "offsets": []},
            "detected_answers": {"text": [], "char_spans": [], "token_spans": []}, "answers": ["Ada"]}


def test_mrqa_validation_reads_its_one_file_and_keeps_only_the_subset(hub):
    calls, tables = hub
    tables["validation"] = [{**MRQA_ROW, "subset": "SearchQA", "qid": "a"},
                            {**MRQA_ROW, "subset": "NewsQA", "qid": "b"}]
    rows = read_rows(TASKS.get("newsqa"), "validation", DataSource("hub"))
    assert [r["qid"] for r in rows] == ["b"]
    assert calls == [{"path": "mrqa-workshop/mrqa", "name": "plain_text", "data_dir": None, "revision": MRQA_COMMIT,
                      "split": "validation",
                      "data_files": {"validation": ["plain_text/validation-00000-of-00001.parquet"]}}]


@pytest.mark.parametrize("task,subset,rows,shards", [
    # train rows in the Hub's order: SQuAD 86,588, NewsQA 74,160, TriviaQA 61,688, SearchQA 117,384, HotpotQA 72,928,
    # NQ 104,071; 9 shards of 57,425 (the first 3) or 57,424 rows start at 0, 57425, 114850, 172275, 229699, 287123,
    # 344547, 401971 and 459395
    ("newsqa", "NewsQA", 74_160, (1, 2)),  # rows 86588-160747
    ("searchqa", "SearchQA", 117_384, (3, 4, 5)),  # rows 222436-339819
    ("hotpotqa", "HotpotQA", 72_928, (5, 6, 7)),  # rows 339820-412747
    ("nq", "NaturalQuestionsShort", 104_071, (7, 8)),  # rows 412748-516818
])
def test_mrqa_train_reads_only_the_shards_holding_the_subset(hub, task, subset, rows, shards):
    calls, tables = hub
    tables["train"] = {"subset": ["TriviaQA-web"] * 3 + [subset] * rows, "qid": [str(i) for i in range(rows + 3)]}
    assert len(read_rows(TASKS.get(task), "train", DataSource("hub"))) == rows
    assert calls == [{"path": "mrqa-workshop/mrqa", "name": "plain_text", "data_dir": None, "revision": MRQA_COMMIT,
                      "split": "train",
                      "data_files": {"train": [f"plain_text/train-0000{i}-of-00009.parquet" for i in shards]}}]


def test_mrqa_train_files_without_all_of_the_subset_are_refused(hub):
    _, tables = hub
    tables["train"] = [{**MRQA_ROW, "subset": "NaturalQuestionsShort"}] * 3
    with pytest.raises(DataError) as error:
        read_rows(TASKS.get("nq"), "train", DataSource("hub"))
    assert str(error.value) == (
        "mrqa-workshop/mrqa: 3 NaturalQuestionsShort rows in train files plain_text/train-00007-of-00009.parquet, "
        f"plain_text/train-00008-of-00009.parquet, expected 104071: revision {MRQA_COMMIT} is not laid out as "
        "MRQA_SHARDS (tasks/qa.py) says; pass --data-dir with the MRQA release files")


# -- ReCoRD: one source string whichever the source -------------------------------------------------------------------

def as_on_the_hub(record: dict) -> list[dict]:
    """Hub rows of an official ReCoRD record, as aps/super_glue's loader wrote them: entity spans sorted by
    start with exclusive ends, the entity texts a set (listed here in reverse order of appearance, one
    order a set may come out in), answers a sorted set; one row per query."""
    text = record["passage"]["text"]
    spans = sorted(({"text": text[e["start"]:e["end"] + 1], "start": e["start"], "end": e["end"] + 1}
                    for e in record["passage"]["entities"]), key=lambda span: span["start"])
    entities = list(dict.fromkeys(span["text"] for span in reversed(spans)))
    return [{"passage": text, "query": qa["query"], "entities": entities,
             "entity_spans": {key: [span[key] for span in spans] for key in ("text", "start", "end")},
             "answers": sorted({answer["text"] for answer in qa["answers"]}),
             "idx": {"passage": record["idx"], "query": qa["idx"]}} for qa in record["qas"]]


def test_record_gives_the_same_examples_from_the_hub_and_the_files(hub, shared_data):
    _, tables = hub
    records = [json.loads(line) for line in (shared_data / "superglue/ReCoRD/val.jsonl").read_text().splitlines()]
    tables["validation"] = [row for record in records for row in as_on_the_hub(record)]
    assert tables["validation"][1]["entities"] == ["UK", "China", "Yang Guang", "Tian Tian", "Sweetie", "Edinburgh Zoo"]
    task = TASKS.get("record")
    from_hub = load_examples(task, "test", DataSource("hub"), PAPER)
    from_files = load_examples(task, "test", DataSource("dir", str(shared_data)), PAPER)
    assert from_hub == from_files and len(from_hub) == 2
    assert "entities: China, Edinburgh Zoo, Sweetie, Tian Tian, UK, Yang Guang passage:" in from_hub[1].source
    files_rows = read_rows(task, "validation", DataSource("dir", str(shared_data)))
    assert [row["entity_spans"] for row in files_rows] == [row["entity_spans"] for row in tables["validation"]]


# -- errors: the cause, and the offline alternatives only where the network is the cause -----------------------------

def raising(error: Exception):
    def load_dataset(*args, **kwargs):
        raise error
    return load_dataset


TRANSPORTS = [(module, kind) for module, kind in (("httpx2", "ConnectError"), ("httpx", "ConnectError"),
                                                   ("requests", "ConnectionError")) if importlib.util.find_spec(module)]
"""The HTTP libraries huggingface_hub may run on, those installed here."""


def generation_error_from(cause: Exception) -> Exception:
    """What `datasets` raises when a download fails while it prepares a split (`raise ... from`)."""
    try:
        raise datasets.exceptions.DatasetGenerationError("An error occurred while generating the dataset") from cause
    except datasets.exceptions.DatasetGenerationError as error:
        return error


CONNECTION_ERRORS = {
    "offline mode": lambda: huggingface_hub.errors.OfflineModeIsEnabled(
        f"Cannot reach https://huggingface.co/api/datasets/aps/super_glue/revision/{SUPER_GLUE_COMMIT}: offline mode "
        "is enabled. To disable it, please unset the `HF_HUB_OFFLINE` environment variable."),
    "not cached": lambda: huggingface_hub.errors.LocalEntryNotFoundError(
        "An error happened while trying to locate the file on the Hub and we cannot find the requested files in the "
        "local cache. Please check your connection and try again or make sure your Internet connection is on."),
    "datasets": lambda: ConnectionError("Couldn't reach 'aps/super_glue' on the Hub (LocalEntryNotFoundError)"),
    "read timeout during generation": lambda: generation_error_from(TimeoutError("The read operation timed out")),
    **{module: (lambda module=module, kind=kind: getattr(importlib.import_module(module), kind)(
        "[Errno -2] Name or service not known")) for module, kind in TRANSPORTS},
}


@pytest.mark.parametrize("make", CONNECTION_ERRORS.values(), ids=CONNECTION_ERRORS.keys())
def test_a_connection_error_keeps_its_message_and_says_what_to_do_offline(monkeypatch, make):
    error = make()
    monkeypatch.setattr(datasets, "load_dataset", raising(error))
    read_rows.cache_clear()
    with pytest.raises(UsageError) as raised:
        read_rows(TASKS.get("cb"), "validation", DataSource("hub"))
    message = " ".join(str(error).split())
    assert str(raised.value) == (f"cannot load aps/super_glue (cb) at revision {SUPER_GLUE_COMMIT} from the Hugging "
                                 f"Face Hub: {type(error).__name__}: {message}{OFFLINE_HINT}")


@pytest.mark.parametrize("error,shown", [
    (datasets.exceptions.DatasetNotFoundError(
        "Dataset 'aps/super_glue' doesn't exist on the Hub or cannot be accessed."),
     "DatasetNotFoundError: Dataset 'aps/super_glue' doesn't exist on the Hub or cannot be accessed."),
    (ValueError("Unknown split \"validation\".\nShould be one of ['train']."),
     "ValueError: Unknown split \"validation\". Should be one of ['train']."),
    (FileNotFoundError(), "FileNotFoundError"),
])
def test_another_error_keeps_its_message_on_one_line_without_the_offline_hint(monkeypatch, error, shown):
    monkeypatch.setattr(datasets, "load_dataset", raising(error))
    read_rows.cache_clear()
    with pytest.raises(UsageError) as raised:
        read_rows(TASKS.get("cb"), "validation", DataSource("hub"))
    assert str(raised.value) == (f"cannot load aps/super_glue (cb) at revision {SUPER_GLUE_COMMIT} from the Hugging "
                                 f"Face Hub: {shown}")


def test_offline_for_real_names_the_cause_and_the_alternatives(monkeypatch, tmp_path):
    """The real `datasets.load_dataset` with HF_HUB_OFFLINE / HF_DATASETS_OFFLINE set (conftest) and empty caches."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    read_rows.cache_clear()
    with pytest.raises(UsageError) as raised:
        read_rows(TASKS.get("cb"), "validation", DataSource("hub"))
    assert str(raised.value) == (
        f"cannot load aps/super_glue (cb) at revision {SUPER_GLUE_COMMIT} from the Hugging Face Hub: ConnectionError: "
        f"Couldn't reach 'aps/super_glue' on the Hub (OfflineModeIsEnabled){OFFLINE_HINT}")
