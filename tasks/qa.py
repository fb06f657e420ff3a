"""Extractive QA: SQuAD and the MRQA four (NQ, HotpotQA, SearchQA, NewsQA).

All five read `question: ... context: ...` with T5's punctuation padding,
train on the first gold answer and are scored against every gold answer (max
over answers, SQuAD normalisation). The answers in `extra` are padded like the
target because that is what the model learns to write: "35,000" and
"35 , 000" normalise differently.

Official files accepted under `--data-dir`:
- `squad/train-v1.1.json`, `squad/dev-v1.1.json`: SQuAD v1.1 (data -> paragraphs -> qas;
  a top-level `version` key is not needed).
- `mrqa/train/<Subset>.jsonl.gz`, `mrqa/dev/<Subset>.jsonl.gz`: the MRQA 2019 release
  layout, or the same names uncompressed (`.jsonl`). Subset is the release's file
  name: NaturalQuestionsShort, HotpotQA, SearchQA, NewsQA. The `{"header": ...}`
  first line is optional (the release's sample file has none); when present, its
  `dataset` must be the subset, so a misplaced file is refused.

What the official ATTEMPT code did (attempt/data/tasks.py): `TASK_MAPPING` maps
`nq`, `hotpotqa`, `searchqa` and `newsqa` to its `Squad` class, whose name, and
so source prefix, is `squad`. That class's Hub path (`load_dataset("squad")`)
cannot run, since it pads `example["answers"]`, a dict on the Hub, so every QA
run read the per-task CSV files passed as `--train_files` / `--validation_files`
/ `--test_files`: each task did train on its own data. What differs from the
paper is the prefix, which is what `Protocol.mrqa_own_data` switches.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import regex

from bench.core.presets import Protocol
from tasks.base import DataError, HubSource, Task, field
from tasks.loading import read_json_lines

NOT_WORD_CHARACTER = regex.compile(r"([^_\s\p{N}\p{L}\p{M}])")
WHITESPACE = regex.compile(r"\s+")


def pad_punctuation(text: str) -> str:
    """T5's `_pad_punctuation`, as the official code copies it: spaces around
    every character that is not a letter, digit, mark or underscore, then
    whitespace collapsed. The ends are stripped as well: T5's SentencePiece
    normaliser drops leading and trailing spaces, so the token ids are the
    official code's, while the strings stay joined by single spaces."""
    return WHITESPACE.sub(" ", NOT_WORD_CHARACTER.sub(r" \1 ", text)).strip()


def gold_answers(answers: list[str], path: Path, where: str) -> list[str]:
    """Training needs a first answer; an official QA record without one is broken."""
    if not answers:
        raise DataError(f"{path}: {where}: no answers")
    return answers


def read_json(path: Path):
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise DataError(f"{path}: missing (expected the official release file)") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: line {error.lineno}: not valid JSON ({error.msg})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None


class QaTask(Task):
    split_protocol = "large"
    metrics = ("squad_f1", "squad_em")
    max_source_length = multitask_max_source_length = 512

    def answers(self, row: dict) -> list[str]:
        """Gold answer strings of a Hub row, as stored."""
        raise NotImplementedError

    def source_prefix(self, protocol: Protocol) -> str:
        return self.prefix

    def source(self, row, protocol):
        question, context = pad_punctuation(row["question"]), pad_punctuation(row["context"])
        return f"{self.source_prefix(protocol)} question: {question} context: {context}"

    def target(self, row, protocol):
        return pad_punctuation(self.answers(row)[0])

    def extra(self, row, protocol):
        return {"answers": [pad_punctuation(answer) for answer in self.answers(row)]}


SQUAD_REVISION = "7b6d24c440a36b6815f21b70d25016731768db1f"
"""A commit of rajpurkar/squad's main branch (`plain_text/{train,validation}-00000-of-00001.parquet`),
found in stored public sources (the Hub itself was out of reach): scripts calling
`hf_hub_download("rajpurkar/squad", "plain_text/train-00000-of-00001.parquet", revision=...)` at it
(87,599 train rows); `datasets` cache folders `rajpurkar___squad/plain_text/0.0.0/7b6d24c4.../`
(the folder is the commit read); several projects' pinned-revision tables. Commit message and date:
not known from here."""


class Squad(QaTask):
    name, prefix, official_dir = "squad", "squad", "squad"
    hub = HubSource("rajpurkar/squad", "plain_text", SQUAD_REVISION)
    official_splits = {"train": "train-v1.1.json", "validation": "dev-v1.1.json"}

    def answers(self, row):
        return row["answers"]["text"]

    def read_official(self, data_dir, hub_split):
        path = data_dir / self.official_dir / self.official_splits[hub_split]
        rows = []
        for a, article in enumerate(field(read_json(path), "data", path, "top level")):
            for p, paragraph in enumerate(field(article, "paragraphs", path, f"article {a}")):
                context = field(paragraph, "context", path, f"article {a} paragraph {p}")
                for q, qa in enumerate(field(paragraph, "qas", path, f"article {a} paragraph {p}")):
                    where = f"article {a} paragraph {p} question {q}"
                    answers = gold_answers(field(qa, "answers", path, where), path, where)
                    rows.append({
                        "id": field(qa, "id", path, where),
                        "title": article.get("title", ""),
                        "context": context,
                        "question": field(qa, "question", path, where),
                        "answers": {
                            "text": [field(answer, "text", path, where) for answer in answers],
                            "answer_start": [field(answer, "answer_start", path, where) for answer in answers],
                        },
                    })
        return rows


MRQA_TRAIN_SUBSETS = (("SQuAD", 86_588), ("NewsQA", 74_160), ("TriviaQA-web", 61_688), ("SearchQA", 117_384),
                      ("HotpotQA", 72_928), ("NaturalQuestionsShort", 104_071))
"""The Hub's MRQA train split: each subset's questions (the release's counts, 516,819 in all), in
the order its loading script read the release files, which the parquet conversion kept."""
MRQA_REVISION = "f3178d9888471dfb2b67c93de14f0ddf499a8d9f"
"""A commit of mrqa-workshop/mrqa's main branch, found in a stored public source (the Hub itself was
out of reach): a script calling `hf_hub_download("mrqa-workshop/mrqa",
f"plain_text/train-{i:05d}-of-00009.parquet", revision=...)` at it for i in 0..8, and its notes
counting 516,819 train rows, 104,071 of them NaturalQuestionsShort, as MRQA_TRAIN_SUBSETS has them.
Commit message and date: not known from here."""
MRQA_SHARDS = {"train": 9, "validation": 1}
"""Parquet files per split at MRQA_REVISION, `plain_text/{split}-{i:05d}-of-{n:05d}.parquet`, written
by `push_to_hub`: contiguous shards, equal in rows (`Dataset.shard(contiguous=True)`). A commit's files
never change, so these counts are a fact of MRQA_REVISION, not something to list at load time; a new
pin must recount them (`select_hub_rows` refuses shards that miss part of a subset)."""


def train_rows(subset: str) -> range:
    """Where a subset's questions lie in the Hub's MRQA train split."""
    start = 0
    for name, count in MRQA_TRAIN_SUBSETS:
        if name == subset:
            return range(start, start + count)
        start += count
    raise KeyError(subset)


def train_shards(subset: str) -> list[int]:
    """The Hub's train shards holding any of a subset's rows; as `Dataset.shard` cuts, the first
    `rows % shards` shards are one row longer."""
    rows, shards = train_rows(subset), MRQA_SHARDS["train"]
    size, longer = divmod(sum(count for _, count in MRQA_TRAIN_SUBSETS), shards)
    starts = [size * i + min(i, longer) for i in range(shards + 1)]
    return [i for i in range(shards) if starts[i] < rows.stop and starts[i + 1] > rows.start]


def release_files(subset: str) -> dict[str, str]:
    return {"train": f"train/{subset}.jsonl.gz", "validation": f"dev/{subset}.jsonl.gz"}


def token_columns(pairs) -> dict:
    """MRQA `[[token, offset], ...]` -> the Hub's `{tokens: [...], offsets: [...]}`."""
    return {"tokens": [token for token, _ in pairs], "offsets": [offset for _, offset in pairs]}


def span_columns(pairs) -> dict:
    return {"start": [start for start, _ in pairs], "end": [end for _, end in pairs]}


class MrqaTask(QaTask):
    """One subset of the MRQA 2019 shared task. The Hub table holds all of them in one, so only the
    train shards holding the subset are read (2 or 3 of 9, about 4 GB in all) and then filtered.
    Read at MRQA_REVISION, a commit of the main branch, parquet since its conversion (`Convert dataset
    to Parquet`), whose shard names and row order that commit fixes; the parquet export's layout is
    not documented."""

    hub = HubSource("mrqa-workshop/mrqa", "plain_text", MRQA_REVISION)
    official_dir = "mrqa"
    batch_size, grad_accum = 16, 2
    subset: ClassVar[str]
    """The Hub's `subset` value, the release's file name and its header's `dataset`."""

    def source_prefix(self, protocol):
        return self.prefix if protocol.mrqa_own_data else Squad.prefix

    def source(self, row, protocol):
        if row["subset"] != self.subset:
            raise ValueError(f"row of MRQA subset {row['subset']!r}, expected {self.subset!r}")
        return super().source(row, protocol)

    def answers(self, row):
        return row["answers"]

    def default_epochs(self, num_train):
        return 5

    def hub_data_files(self, hub_split):
        shards = MRQA_SHARDS[hub_split]
        held = train_shards(self.subset) if hub_split == "train" else range(shards)
        return [f"plain_text/{hub_split}-{i:05d}-of-{shards:05d}.parquet" for i in held]

    def select_hub_rows(self, dataset, hub_split):
        """This task's rows of a Hub split (a `datasets.Dataset`), before they are listed; in train,
        all of the subset's, or the shards read were not the ones holding it."""
        rows = dataset.filter(lambda subset: subset == self.subset, input_columns="subset")
        expected = len(train_rows(self.subset))
        if hub_split == "train" and len(rows) != expected:
            raise DataError(f"{self.hub.path}: {len(rows)} {self.subset} rows in train files "
                            f"{', '.join(self.hub_data_files(hub_split))}, expected {expected}: revision "
                            f"{self.hub.revision} is not laid out as MRQA_SHARDS (tasks/qa.py) says; pass --data-dir "
                            "with the MRQA release files")
        return rows

    def read_official(self, data_dir, hub_split):
        path = data_dir / self.official_dir / self.official_splits[hub_split]
        if not path.is_file() and path.with_suffix("").is_file():
            path = path.with_suffix("")
        if not path.is_file():
            raise DataError(f"{path}: missing (nor {path.with_suffix('').name}; expected the MRQA 2019 release file)")
        rows = []
        for number, record in read_json_lines(path):
            if number == 1 and "header" in record:
                dataset = field(record["header"], "dataset", path, "header")
                if dataset != self.subset:
                    raise DataError(f"{path}: header: dataset {dataset!r}, expected {self.subset!r}")
                continue
            rows.extend(self.convert(record, path, f"line {number}"))
        return rows

    def convert(self, record: dict, path: Path, where: str) -> list[dict]:
        """One context line -> one Hub row per question, as the Hub's script converts it."""
        context = field(record, "context", path, where)
        context_tokens = field(record, "context_tokens", path, where)
        rows = []
        for q, qa in enumerate(field(record, "qas", path, where)):
            at = f"{where} question {q}"
            detected = field(qa, "detected_answers", path, at)
            try:
                rows.append({
                    "subset": self.subset,
                    "context": context.strip(),
                    "context_tokens": token_columns(context_tokens),
                    "qid": field(qa, "qid", path, at),
                    "question": field(qa, "question", path, at).strip(),
                    "question_tokens": token_columns(field(qa, "question_tokens", path, at)),
                    "detected_answers": {
                        "text": [field(d, "text", path, at).strip() for d in detected],
                        "char_spans": [span_columns(field(d, "char_spans", path, at)) for d in detected],
                        "token_spans": [span_columns(field(d, "token_spans", path, at)) for d in detected],
                    },
                    "answers": gold_answers(field(qa, "answers", path, at), path, at),
                })
            except (AttributeError, TypeError, ValueError) as error:
                raise DataError(f"{path}: {at}: malformed ({type(error).__name__}: {error})") from None
        return rows


class NaturalQuestions(MrqaTask):
    name, prefix, subset = "nq", "nq", "NaturalQuestionsShort"
    official_splits = release_files(subset)


class HotpotQA(MrqaTask):
    name, prefix, subset = "hotpotqa", "hotpotqa", "HotpotQA"
    official_splits = release_files(subset)


class SearchQA(MrqaTask):
    name, prefix, subset = "searchqa", "searchqa", "SearchQA"
    official_splits = release_files(subset)


class NewsQA(MrqaTask):
    name, prefix, subset = "newsqa", "newsqa", "NewsQA"
    official_splits = release_files(subset)


TASK_CLASSES = (Squad, NaturalQuestions, HotpotQA, SearchQA, NewsQA)
