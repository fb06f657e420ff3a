"""The "others" suite (WinoGrande, Yelp, SciTail, PAWS) and AMP's IMDB.

Hub schemas: `allenai/winogrande` (winogrande_xl), `fancyzhx/yelp_polarity`,
`allenai/scitail` (snli_format), `google-research-datasets/paws`
(labeled_final) and `stanfordnlp/imdb`. Each official-file reader converts its
release layout to exactly those columns and label ids, quirks included, so a
run cannot tell which source it read.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from tasks.base import DataError, HubSource, Task, field, label_index, locate
from tasks.glue import tsv_records
from tasks.loading import read_json_lines

# Commits of each repository's main branch (parquet per builder config), found in stored public
# sources (the Hub itself was out of reach); commit messages and dates are not known from here.
WINOGRANDE_REVISION = "01e74176c63542e6b0bcb004dcdea22d94fb67b5"
"""allenai/winogrande: a script fetching `winogrande_xl/train-00000-of-00001.parquet` at it; `datasets`
cache folders `allenai___winogrande/winogrande_xl/0.0.0/01e74176.../` (packaged parquet builder, 40,398
train rows); lm-evaluation-harness settings `allenai/winogrande:winogrande_xl` at it. Main, not the
parquet export this task read before, so winogrande_xl is a builder config."""
YELP_REVISION = "bbf1c97a1f0cf005e5aded43839fd814654a1557"
"""fancyzhx/yelp_polarity: several projects recording it as the resolved revision of config plain_text
(560,000 train and 38,000 test rows), one beside stanfordnlp/imdb's commit below."""
SCITAIL_REVISION = "0cc4353235b289165dfde1c7c5d1be983f99ce44"
"""allenai/scitail: a script fetching `tsv_format/train-00000-of-00001.parquet` at it; several projects'
pinned-revision tables beside nyu-mll/glue's and aps/super_glue's commits (tasks/glue.py, superglue.py)."""
PAWS_REVISION = "161ece9501cf0a11f3e48bd356eaa82de46d6a09"
"""google-research-datasets/paws: scripts fetching `labeled_final/{train,validation,test}-00000-of-00001.parquet`
at it (49,401, 8,000 and 8,000 rows expected)."""
IMDB_REVISION = "e6281661ce1c48d982bc483cf8a173c1bbeb5d31"
"""stanfordnlp/imdb: a DuckDB listing of `hf://datasets/stanfordnlp/imdb@e6281661.../plain_text/
{train,test}-00000-of-00001.parquet` (25,000 rows each); `load_dataset("stanfordnlp/imdb", revision=...)`
at it; Hub cache snapshots `datasets--imdb/snapshots/e6281661.../plain_text/`."""


def release_file(task: Task, data_dir: Path, hub_split: str) -> Path:
    """The official file (or folder) serving `hub_split`, which must exist."""
    path = data_dir / task.official_dir / task.official_splits[hub_split]
    if not path.exists():
        raise DataError(f"{path}: missing (expected the official {task.name} release file for the {hub_split} split)")
    return path


class WinoGrande(Task):
    """WinoGrande 1.1, XL training set; test = the Hub's validation (the Hub test has no answers).

    The official code writes option1 twice (`option0: {option1} option1:
    {option1}`); `winogrande_both_options` (paper preset) shows both options.
    """

    name, prefix, official_dir = "winogrande", "winogrande", "winogrande"
    hub = HubSource("allenai/winogrande", "winogrande_xl", WINOGRANDE_REVISION)
    split_protocol = "large"
    official_splits = {"train": "train_xl.jsonl", "validation": "dev.jsonl", "test": "test.jsonl"}
    labels = ("0", "1")
    label_names = ("option1", "option2")
    ANSWERS = ("1", "2")

    def read_official(self, data_dir, hub_split):
        """Answers come from the jsonl or, where a record has none, from the release's `<file>-labels.lst`."""
        path = release_file(self, data_dir, hub_split)
        records = read_json_lines(path)
        listed = self.listed_answers(path, len(records))
        rows = []
        for index, (line, record) in enumerate(records):  # the labels file has one label per record, not per line
            answer = self.answer(record, listed[index] if listed else None, path, line, hub_split)
            rows.append({key: field(record, key, path, line) for key in ("sentence", "option1", "option2")}
                        | {"answer": answer})
        return rows

    @staticmethod
    def listed_answers(path: Path, count: int) -> list[str] | None:
        labels_path = path.with_name(f"{path.stem}-labels.lst")
        if not labels_path.is_file():
            return None
        answers = labels_path.read_text(encoding="utf-8").split()
        if len(answers) != count:
            raise DataError(f"{labels_path}: {len(answers)} labels for the {count} records of {path.name}")
        return answers

    def answer(self, record: dict, listed: str | None, path: Path, line: int, hub_split: str) -> str:
        """The Hub's answer: "1" or "2", or "" in the unlabelled test file (as in the Hub's test split);
        `line` locates an error."""
        answer = record.get("answer") or listed
        if answer is None:
            if hub_split == "test":
                return ""
            raise DataError(f"{path}: {locate(line)}: no answer (and no {path.stem}-labels.lst beside it)")
        answer = str(answer)
        if answer not in self.ANSWERS:
            raise DataError(f"{path}: {locate(line)}: answer {answer!r} is not \"1\" or \"2\"")
        if listed is not None and listed != answer:
            raise DataError(f"{path}: {locate(line)}: answer {answer!r} but {path.stem}-labels.lst says {listed!r}")
        return answer

    def source(self, row, protocol):
        second = row["option2"] if protocol.winogrande_both_options else row["option1"]
        return self.join(("sentence", row["sentence"]), ("option0", row["option1"]), ("option1", second))

    def target(self, row, protocol):
        return str(int(row["answer"]) - 1)


class Yelp(Task):
    """Yelp review polarity: dev carved from train, test = the Hub's test split, train capped at 100k.

    The Hub's loader slices each raw CSV line (`line[5:-2].strip()`) instead
    of parsing it, so its text keeps the file's escapes: newlines as a literal
    backslash-n and internal quotes doubled (`""`). The official CSV is parsed
    here and re-escaped to the same text.
    """

    name, prefix, official_dir = "yelp", "yelp_polarity", "yelp"
    hub = HubSource("fancyzhx/yelp_polarity", "plain_text", YELP_REVISION)
    split_protocol = "large"
    hub_test = "test"
    max_train = 100_000
    official_splits = {"train": "train.csv", "test": "test.csv"}
    labels = ("0", "1")
    label_names = ("negative", "positive")
    CLASSES = ("1", "2")
    """Official class column: 1 = negative, 2 = positive (Hub label 0 / 1)."""

    def read_official(self, data_dir, hub_split):
        path = release_file(self, data_dir, hub_split)
        rows = []
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            for fields in reader:
                if len(fields) != 2:
                    raise DataError(f"{path}: line {reader.line_num}: {len(fields)} fields, expected class and text")
                klass, text = fields
                rows.append({"text": text.replace('"', '""').strip(),
                             "label": label_index(klass, self.CLASSES, path, reader.line_num)})
        return rows

    def source(self, row, protocol):
        return self.join(("sentence", row["text"]))


class SciTail(Task):
    """SciTail 1.0 in the SNLI format (JSON lines despite `.txt`); labels `entailment` / `neutral`."""

    name, prefix, official_dir = "scitail", "scitail", "scitail/snli_format"
    hub = HubSource("allenai/scitail", "snli_format", SCITAIL_REVISION)
    split_protocol = "small"
    official_splits = {"train": "scitail_1.0_train.txt", "validation": "scitail_1.0_dev.txt",
                       "test": "scitail_1.0_test.txt"}
    labels = ("0", "1")
    label_names = ("entailment", "neutral")
    COLUMNS = ("sentence1_binary_parse", "sentence1_parse", "sentence1", "sentence2_parse", "sentence2",
               "annotator_labels", "gold_label")
    """The Hub's columns (the release also has `sentence2_binary_parse`, which the Hub drops)."""

    def read_official(self, data_dir, hub_split):
        path = release_file(self, data_dir, hub_split)
        rows = []
        for line, record in read_json_lines(path):
            row = {key: field(record, key, path, line) for key in self.COLUMNS}
            label_index(row["gold_label"], self.label_names, path, line)
            rows.append(row)
        return rows

    pair_fields = ("sentence1", "sentence2")

    def source(self, row, protocol):
        return self.join(("premise", row["sentence1"]), ("hypothesis", row["sentence2"]))

    def target(self, row, protocol):
        return str(self.label_names.index(row["gold_label"]))


class PAWS(Task):
    """PAWS-Wiki labeled final: its own train / dev / test (TSV, quoting off as in the Hub's loader)."""

    name, prefix, official_dir = "paws", "paws", "paws/final"
    hub = HubSource("google-research-datasets/paws", "labeled_final", PAWS_REVISION)
    split_protocol = "own"
    hub_test = "test"
    official_splits = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
    labels = ("0", "1")
    label_names = ("not_paraphrase", "paraphrase")
    COLUMNS = ("id", "sentence1", "sentence2", "label")

    def read_official(self, data_dir, hub_split):
        path = release_file(self, data_dir, hub_split)
        rows = []
        for line, record in tsv_records(path, required=self.COLUMNS):
            if not record["id"].isdigit():
                raise DataError(f"{path}: {locate(line)}: id {record['id']!r} is not an integer")
            rows.append({"id": int(record["id"]), "sentence1": record["sentence1"], "sentence2": record["sentence2"],
                         "label": label_index(record["label"], self.labels, path, line)})
        return rows

    pair_fields = ("sentence1", "sentence2")

    def source(self, row, protocol):
        return self.join(("sentence1", row["sentence1"]), ("sentence2", row["sentence2"]))


class IMDB(Task):
    """IMDB reviews (AMP's task set): dev carved from train, test = the Hub's test split.

    The release layout is `aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt`;
    text is kept as is (`<br />` included), as the Hub keeps it. Rows are
    ordered neg then pos, each by review id; the Hub's parquet follows the
    archive's order instead, so dev/test draws from a local copy differ from
    Hub runs. At the papers' 256-token source limit about 45% of reviews are
    cut (median 240 T5 tokens over 1,000 real test reviews).
    """

    name, prefix, official_dir = "imdb", "imdb", "aclImdb"
    hub = HubSource("stanfordnlp/imdb", "plain_text", IMDB_REVISION)
    split_protocol = "large"
    hub_test = "test"
    official_splits = {"train": "train", "test": "test"}
    labels = ("0", "1")
    label_names = ("negative", "positive")
    FOLDERS = ("neg", "pos")
    """Folder per Hub label id (ClassLabel names neg, pos)."""
    RATINGS = {"neg": range(1, 5), "pos": range(7, 11)}
    """Star ratings the release puts in each folder (file name `<id>_<rating>.txt`)."""

    def read_official(self, data_dir, hub_split):
        split_dir = release_file(self, data_dir, hub_split)
        rows = []
        for label, folder in enumerate(self.FOLDERS):
            directory = split_dir / folder
            if not directory.is_dir():
                raise DataError(f"{directory}: missing (the aclImdb release has neg/ and pos/ in {split_dir.name}/)")
            reviews = sorted((self.review_number(path, folder), path) for path in directory.glob("*.txt"))
            rows += [{"text": path.read_text(encoding="utf-8"), "label": label} for _, path in reviews]
        return rows

    def review_number(self, path: Path, folder: str) -> int:
        """The id from `<id>_<rating>.txt`, after checking the rating belongs in `folder`."""
        match = re.fullmatch(r"(\d+)_(\d+)", path.stem)
        if match is None:
            raise DataError(f"{path}: file name is not <id>_<rating>.txt")
        if int(match[2]) not in self.RATINGS[folder]:
            raise DataError(f"{path}: rating {match[2]} does not belong in {folder}/")
        return int(match[1])

    def source(self, row, protocol):
        return self.join(("sentence", row["text"]))


TASK_CLASSES = (WinoGrande, Yelp, SciTail, PAWS, IMDB)
