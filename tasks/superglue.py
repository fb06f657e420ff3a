"""SuperGLUE tasks: Hub schema of `aps/super_glue`, official jsonl converters."""
from __future__ import annotations

import re
from pathlib import Path

from tasks.base import DataError, Example, HubSource, Task, field, label_index
from tasks.loading import read_json_lines

SUPER_GLUE_REVISION = "3de24cf8022e94f4ee4b9d55a6f539891524d646"
"""A commit of aps/super_glue's main branch, which holds parquet per builder config
(`<config>/<split>-00000-of-00001.parquet`), so its configs are read as builder configs, no longer as
the parquet export's folders. Where it was found (stored public sources; the Hub itself was out of
reach): a download script calling `load_dataset("aps/super_glue", config, split="validation",
revision=...)` at it for boolq, cb, copa, multirc, record, rte, wic and wsc.fixed; another fetching
`multirc/validation-00000-of-00001.parquet` at it; a `datasets` cache folder
`super_glue/rte/0.0.0/3de24cf8.../super_glue-train.arrow` (the folder is the commit read); a table
pinning it for RTE, CB, COPA, WiC and WSC. Commit message and date: not known from here."""


class SuperGlueTask(Task):
    official_splits = {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}
    split_protocol = "small"
    labels = ("0", "1")

    @classmethod
    def hub_source(cls, config: str) -> HubSource:
        return HubSource("aps/super_glue", config, SUPER_GLUE_REVISION)

    def read_official(self, data_dir: Path, hub_split: str) -> list[dict]:
        path = data_dir / self.official_dir / self.official_splits[hub_split]
        if not path.is_file():
            raise DataError(f"{path}: missing (expected the official {self.official_dir} release file)")
        rows = []
        for index, (line, record) in enumerate(read_json_lines(path)):
            rows.extend(self.convert(record, path, index, line))
        return rows

    def convert(self, record: dict, path: Path, index: int, line: int) -> list[dict]:
        """One official record -> Hub-schema rows (label -1 where the file has none). `index`, the
        record's place among the file's records, is the Hub's `idx` where the record has none;
        `line`, its line in the file, locates an error."""
        raise NotImplementedError

    def label_of(self, record: dict, path: Path, line: int) -> int:
        if "label" not in record:
            return -1  # test files carry no labels, as on the Hub
        return label_index(record["label"], (False, True), path, line)


class BoolQ(SuperGlueTask):
    name, prefix, official_dir = "boolq", "superglue-boolq", "superglue/BoolQ"
    hub = SuperGlueTask.hub_source("boolq")
    label_names = ("False", "True")

    def convert(self, record, path, index, line):
        return [{
            "question": field(record, "question", path, line),
            "passage": field(record, "passage", path, line),
            "idx": record.get("idx", index),
            "label": self.label_of(record, path, line),
        }]

    def source(self, row, protocol):
        return self.join(("question", row["question"]), ("passage", row["passage"]))


class CB(SuperGlueTask):
    name, prefix, official_dir = "cb", "superglue-cb", "superglue/CB"
    hub = SuperGlueTask.hub_source("cb")
    labels = ("0", "1", "2")
    label_names = ("entailment", "contradiction", "neutral")
    metrics = ("accuracy", "macro_f1")

    def convert(self, record, path, index, line):
        label = record.get("label")
        return [{
            "premise": field(record, "premise", path, line),
            "hypothesis": field(record, "hypothesis", path, line),
            "idx": record.get("idx", index),
            "label": -1 if label is None else label_index(label, self.label_names, path, line),
        }]

    pair_fields = ("premise", "hypothesis")

    def source(self, row, protocol):
        return self.join(("premise", row["premise"]), ("hypothesis", row["hypothesis"]))


class COPA(SuperGlueTask):
    name, prefix, official_dir = "copa", "superglue-copa", "superglue/COPA"
    hub = SuperGlueTask.hub_source("copa")
    label_names = ("choice1", "choice2")

    def convert(self, record, path, index, line):
        label = record.get("label")
        return [{
            **{key: field(record, key, path, line) for key in ("premise", "choice1", "choice2", "question")},
            "idx": record.get("idx", index),
            "label": -1 if label is None else label_index(label, (0, 1), path, line),
        }]

    def source(self, row, protocol):
        pairs = [("premise", row["premise"]), ("choice1", row["choice1"]), ("choice2", row["choice2"])]
        if protocol.copa_question:
            pairs.append(("question", row["question"]))
        return self.join(*pairs)


class MultiRC(SuperGlueTask):
    """One official record per passage; the Hub flattens to one row per answer option."""

    name, prefix, official_dir = "multirc", "superglue-multirc", "superglue/MultiRC"
    hub = SuperGlueTask.hub_source("multirc")
    label_names = ("False", "True")
    metrics = ("f1a", "em")
    max_source_length = 348
    group_switch = "multirc_split_by_question"

    def convert(self, record, path, index, line):
        passage = field(record, "passage", path, line)
        rows = []
        for question in field(passage, "questions", path, line):
            for answer in field(question, "answers", path, line):
                rows.append({
                    "paragraph": field(passage, "text", path, line),
                    "question": field(question, "question", path, line),
                    "answer": field(answer, "text", path, line),
                    "idx": {"paragraph": record.get("idx", index), "question": question["idx"], "answer": answer["idx"]},
                    "label": self.label_of(answer, path, line),
                })
        return rows

    def group_key(self, row):
        return row["idx"]["question"]

    @staticmethod
    def remove_markup(text: str) -> str:
        return re.sub("<(/)?b>", "", re.sub("<br>", " ", text))

    def source(self, row, protocol):
        return self.join(
            ("question", self.remove_markup(row["question"])),
            ("answer", self.remove_markup(row["answer"])),
            ("paragraph", self.remove_markup(row["paragraph"])),
        )

    def extra(self, row, protocol):
        return {"group": row["idx"]["question"]}


class WiC(SuperGlueTask):
    name, prefix, official_dir = "wic", "superglue-wic", "superglue/WiC"
    hub = SuperGlueTask.hub_source("wic")
    label_names = ("False", "True")

    def convert(self, record, path, index, line):
        return [{
            **{key: field(record, key, path, line) for key in ("word", "sentence1", "sentence2", "start1", "start2", "end1", "end2")},
            "idx": record.get("idx", index),
            "label": self.label_of(record, path, line),
        }]

    def source(self, row, protocol):
        return self.join(("sentence1", row["sentence1"]), ("sentence2", row["sentence2"]), ("word", row["word"]))


class WSC(SuperGlueTask):
    """T5's span marking: `* noun span *` and `# pronoun #`, positions in `text.split()`."""

    name, prefix, official_dir = "wsc", "superglue-wsc.fixed", "superglue/WSC"
    aliases = ("superglue-wsc", "wsc.fixed")
    hub = SuperGlueTask.hub_source("wsc.fixed")
    label_names = ("False", "True")

    def convert(self, record, path, index, line):
        target = field(record, "target", path, line)
        row = {
            "text": field(record, "text", path, line),
            **{key: field(target, key, path, line) for key in ("span1_index", "span2_index", "span1_text", "span2_text")},
            "idx": record.get("idx", index),
            "label": self.label_of(record, path, line),
        }
        for span in ("span1", "span2"):
            self.fix_span(row, span)
        return [row]

    @staticmethod
    def fix_span(row: dict, span: str) -> None:
        """The Hub's `wsc.fixed` repair (super_glue's `_fix_wst`) of a span text that is not in the
        text: its first letter cased as the text's word at the span index, trailing full stops
        dropped, newlines made spaces; and, as that loader does for a span holding "theyscold",
        span2_index set to 10 (its replacement in the text is a no-op). A span that stays outside
        the text is left as it is: the loader asserts it away (after skipping the two Kamenev spans
        no repair can place), so no released record reaches that case."""
        text, words, index = row[f"{span}_text"], row["text"].split(), row[f"{span}_index"]
        if text in row["text"] or not 0 <= index < len(words):
            return
        first = text[0].lower() if words[index][0].islower() else text[0].upper()
        fixed = (first + text[1:]).rstrip(".").replace("\n", " ")
        if fixed in row["text"]:
            row[f"{span}_text"] = fixed
            if "theyscold" in text:
                row["span2_index"] = 10

    @staticmethod
    def mark_span(text: str, span: str, word_index: int, mark: str) -> str:
        pattern = r"^((?:\S+\s){%d})(%s)" % (word_index, re.escape(span))
        return re.sub(pattern, r"\1{0} \2 {0}".format(mark), text)

    def source(self, row, protocol):
        text = self.mark_span(row["text"], row["span1_text"], row["span1_index"], "*")
        # the first marking added two words before the pronoun if it came first
        span2_index = row["span2_index"] + 2 * int(row["span1_index"] < row["span2_index"])
        text = self.mark_span(text, row["span2_text"], span2_index, "#")
        return self.join(("text", text))


class RecordTask(SuperGlueTask):
    """ReCoRD: one training row per gold answer; entity offsets are inclusive."""

    name, prefix, official_dir = "record", "superglue-record", "superglue/ReCoRD"
    hub = SuperGlueTask.hub_source("record")
    split_protocol = "large"
    labels = None
    metrics = ("squad_f1", "squad_em")

    def convert(self, record, path, index, line):
        passage = field(record, "passage", path, line)
        text = field(passage, "text", path, line)
        # as the Hub's loader: spans sorted by start (a stable sort); entities a set, which `format` sorts
        spans = sorted(((e["start"], e["end"]) for e in field(passage, "entities", path, line)), key=lambda s: s[0])
        entities = sorted({text[start : end + 1] for start, end in spans})
        rows = []
        for query in field(record, "qas", path, line):
            rows.append({
                "passage": text,
                "query": field(query, "query", path, line),
                "entities": entities,
                "entity_spans": {
                    "text": [text[s : e + 1] for s, e in spans],
                    "start": [s for s, _ in spans],
                    "end": [e + 1 for _, e in spans],
                },
                "answers": sorted({a["text"] for a in query.get("answers", [])}),
                "idx": {"passage": record.get("idx", index), "query": query.get("idx", len(rows))},
            })
        return rows

    def format(self, row, protocol, for_training):
        passage = re.sub(r"(\.|\?|\!|\"|\')\n@highlight\n", r"\1 ", row["passage"])
        passage = re.sub(r"\n@highlight\n", ". ", passage)
        # sorted: the Hub stores the entities in the set order of the process that converted it
        entities = ", ".join(sorted(row["entities"]))
        source = f"{self.prefix} record query: {row['query']} entities: {entities} passage: {passage}"
        answers = list(row["answers"])
        extra = {"answers": answers}
        if protocol.record_per_query and not for_training:
            return [Example(source, answers[0] if answers else "<unk>", self.name, extra)]
        return [Example(source, answer, self.name, extra) for answer in (answers or ["<unk>"])]


TASK_CLASSES = (BoolQ, CB, COPA, MultiRC, WiC, WSC, RecordTask)
