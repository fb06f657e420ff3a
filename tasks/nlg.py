"""Data-to-text generation (MPT's Table 5): E2E and WebNLG 2017.

Both use their own train / dev / test. Training sees one example per
reference text; evaluation sees one example per input, scored against all its
references (`extra["references"]`), as the E2E and WebNLG evaluations do.
Hub schemas: `tuetschek/e2e_nlg` (the original E2E release, one row per
reference) and `webnlg-challenge/web_nlg` config `webnlg_challenge_2017` (one
row per triple set, its texts in `lex`). Both are read from the Hub's parquet
export (`refs/convert/parquet`), which exists whether or not a main branch
still holds a loading script (web_nlg's does). Both read the branch, not a commit: no commit of
either repository's parquet export could be found in the stored public sources searched (the Hub
itself was out of reach), so a later run may read other rows; the results' data fingerprints tell.
"""
from __future__ import annotations

import csv
from pathlib import Path
from xml.etree import ElementTree

from tasks.base import PARQUET_BRANCH, DataError, Example, HubSource, Task
from tasks.others import release_file


class GenerationTask(Task):
    """Source = prefix and the linearised input, with no `field:` label (the spec's table gives none).

    Evaluation examples carry every reference in `extra["references"]`; their
    target is the first, which only serves as the example's display text.
    """

    split_protocol = "own"
    hub_test = "test"
    selection_metrics = ("bleu",)
    """Checkpoint selection on BLEU alone: WebNLG's TER is lower-is-better and E2E's CIDEr (x100, about 200)
    would outweigh the rest of a mean."""

    def format(self, row, protocol, for_training):
        source = f"{self.prefix} {self.input_text(row)}"
        references = self.references(row, for_training)
        if not references:
            raise ValueError("no reference text")
        if for_training:
            return [Example(source, reference, self.name) for reference in references]
        return [Example(source, references[0], self.name, {"references": references})]

    def input_text(self, row: dict) -> str:
        raise NotImplementedError

    def references(self, row: dict, for_training: bool) -> list[str]:
        raise NotImplementedError


class E2E(GenerationTask):
    """E2E NLG: meaning representation (`name[...], food[...]`) -> restaurant description.

    The Hub and the CSVs hold one row per reference, so `evaluation_rows`
    merges a dev/test split's rows into one per meaning representation
    (first-appearance order) before formatting. The test file is
    `testset_w_refs.csv`, as on the Hub: the release's `testset.csv` has no
    references.

    Metrics: MPT's Table 5 reports BLEU, NIST, METEOR, ROUGE-L and CIDEr; NIST
    and METEOR cannot be computed offline (tasks/metrics.py), chrF is added.
    TER is left out: not reported for E2E, and sacrebleu's TER takes about 50 s
    on the 4,672 dev references, at every evaluation.
    """

    name, prefix, official_dir = "e2e", "e2e", "e2e"
    hub = HubSource("tuetschek/e2e_nlg", None, PARQUET_BRANCH, PARQUET_BRANCH)
    official_splits = {"train": "trainset.csv", "validation": "devset.csv", "test": "testset_w_refs.csv"}
    metrics = ("bleu", "rouge_l", "cider", "chrf")

    def read_official(self, data_dir, hub_split):
        path = release_file(self, data_dir, hub_split)
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            if not {"mr", "ref"} <= set(reader.fieldnames or ()):
                raise DataError(f"{path}: header {reader.fieldnames} lacks the columns mr and ref")
            rows = []
            for record in reader:
                if not record["mr"] or not record["ref"]:
                    raise DataError(f"{path}: line {reader.line_num}: empty mr or ref")
                rows.append({"meaning_representation": record["mr"], "human_reference": record["ref"]})
        return rows

    def evaluation_rows(self, rows: list[dict]) -> list[dict]:
        references: dict[str, list[str]] = {}
        for row in rows:
            references.setdefault(row["meaning_representation"], []).append(row["human_reference"])
        return [{"meaning_representation": mr, "references": texts} for mr, texts in references.items()]

    def input_text(self, row):
        return row["meaning_representation"]

    def references(self, row, for_training):
        return [row["human_reference"]] if for_training else row["references"]


class WebNLG(GenerationTask):
    """WebNLG challenge 2017: DBpedia triples -> text.

    Source: the modified triples as written (`subject | predicate | object`)
    joined by ` || `, which never occurs inside a triple, so the triple
    boundaries stay recoverable (all three are in T5's vocabulary). The Hub's
    test split stacks three files (`test_category`): only `testdata_with_lex`
    (all 1,862 test inputs with references) is scored; the unseen-category
    subset repeats part of it and `testdata_no_lex` has no references.
    Official files: `webnlg/xml_{train,dev}/<N>triples/*.xml` and
    `webnlg/xml_test/*.xml` (the challenge's test files).
    """

    name, prefix, official_dir = "webnlg", "webnlg", "webnlg"
    hub = HubSource("webnlg-challenge/web_nlg", "webnlg_challenge_2017", PARQUET_BRANCH, PARQUET_BRANCH)
    hub_validation = "dev"
    official_splits = {"train": "xml_train", "dev": "xml_dev", "test": "xml_test"}
    metrics = ("bleu", "ter")
    TRIPLE_JOINER = " || "
    SCORED_TEST_FILE = "testdata_with_lex"

    def read_official(self, data_dir, hub_split):
        """Hub-schema rows of every XML file under the split's folder, in the Hub loader's order."""
        folder = release_file(self, data_dir, hub_split)
        files = sorted(folder.rglob("*.xml"))
        if not files:
            raise DataError(f"{folder}: no WebNLG XML files")
        rows = []
        for path in files:
            rows += self.read_xml(path, path.stem if hub_split == "test" else "")
        return rows

    @staticmethod
    def read_xml(path: Path, test_category: str) -> list[dict]:
        try:
            entries = ElementTree.parse(path).getroot().iter("entry")
        except ElementTree.ParseError as error:
            raise DataError(f"{path}: not valid XML ({error})") from None
        rows = []
        for index, entry in enumerate(entries):
            where = f"{path}: entry {index} (eid {entry.get('eid')!r})"
            triple_sets = [[(t.text or "").strip() for t in s.iter("mtriple")] for s in entry.iter("modifiedtripleset")]
            if not triple_sets or not triple_sets[0]:
                raise DataError(f"{where}: no modifiedtripleset/mtriple")
            for triple in triple_sets[0]:
                if len(triple.split(" | ")) != 3:
                    raise DataError(f"{where}: triple {triple!r} is not 'subject | predicate | object'")
            if not (entry.get("size") or "").isdigit():
                raise DataError(f"{where}: size {entry.get('size')!r} is not an integer")
            lex = entry.findall("lex")
            rows.append({
                "category": entry.get("category", ""),
                "size": int(entry.get("size")),
                "eid": entry.get("eid", ""),
                "original_triple_sets": {"otriple_set": [[(t.text or "").strip() for t in s.iter("otriple")]
                                                         for s in entry.iter("originaltripleset")]},
                "modified_triple_sets": {"mtriple_set": triple_sets},
                "shape": entry.get("shape", ""),
                "shape_type": entry.get("shape_type", ""),
                "lex": {"comment": [x.get("comment", "") for x in lex], "lid": [x.get("lid", "") for x in lex],
                        "text": [(x.text or "").strip() for x in lex], "lang": [x.get("lang", "") for x in lex]},
                "test_category": test_category,
                "dbpedia_links": [(x.text or "").strip() for x in entry.iter("dbpedialink")],
                "links": [(x.text or "").strip() for x in entry.iter("link")],
            })
        return rows

    def format(self, row, protocol, for_training):
        if row["test_category"] not in ("", self.SCORED_TEST_FILE):
            return []
        return super().format(row, protocol, for_training)

    def input_text(self, row):
        return self.TRIPLE_JOINER.join(row["modified_triple_sets"]["mtriple_set"][0])

    def references(self, row, for_training):
        return row["lex"]["text"]


TASK_CLASSES = (E2E, WebNLG)
