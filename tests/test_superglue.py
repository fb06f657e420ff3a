"""SuperGLUE (and RTE) on the real official files: converters, splits, exact strings."""
from __future__ import annotations

import json

import pytest
import torch

from bench.core.presets import PRESETS
from tasks.base import DataError
from tasks.loading import DataSource, load_examples, read_rows
from tasks.registry import TASKS
from tasks.splits import halve

PAPER, CODE = PRESETS.get("paper"), PRESETS.get("attempt-code")


@pytest.fixture(scope="module")
def source(shared_data):
    return DataSource("dir", str(shared_data))


def examples(task, split, source, protocol=PAPER):
    return load_examples(TASKS.get(task), split, source, protocol)


def oracle_dev_indices(n: int) -> set[int]:
    """The official code's split call, written out independently."""
    return set(torch.randperm(n, generator=torch.Generator().manual_seed(42))[: n // 2].tolist())


def test_boolq_validation_halves_into_1635_and_1635():
    rows = [{"i": i} for i in range(3270)]
    dev, test = halve(rows, 42, None)
    assert (len(dev), len(test)) == (1635, 1635)
    assert {r["i"] for r in dev} == oracle_dev_indices(3270)
    assert {r["i"] for r in dev}.isdisjoint(r["i"] for r in test)


@pytest.mark.parametrize("task,train,dev,test", [
    ("boolq", 32, 20, 20), ("cb", 32, 28, 28), ("copa", 32, 20, 20), ("wic", 32, 20, 20),
    ("wsc", 32, 20, 20), ("rte", 32, 138, 139),
])
def test_split_sizes_from_official_files(source, task, train, dev, test):
    assert [len(examples(task, s, source)) for s in ("train", "validation", "test")] == [train, dev, test]


def test_cb_membership_follows_the_seeded_permutation(source):
    rows = read_rows(TASKS.get("cb"), "validation", source)
    assert len(rows) == 56
    dev_ids = {e.source for e in examples("cb", "validation", source)}
    expected = {f"superglue-cb premise: {rows[i]['premise']} hypothesis: {rows[i]['hypothesis']}" for i in oracle_dev_indices(56)}
    assert dev_ids == expected


def find(task, source, needle, protocol=PAPER):
    found = [e for s in ("train", "validation", "test") for e in examples(task, s, source, protocol) if needle in e.source]
    assert len(found) == 1, f"{needle!r} found {len(found)} times"
    return found[0]


def test_cb_string_and_label(source):
    e = find("cb", source, "Valence the void-brain")
    assert e.source == (
        "superglue-cb premise: Valence the void-brain, Valence the virtuous valet. Why couldn't the figger choose "
        "his own portion of titanic anatomy to shaft? Did he think he was helping? hypothesis: Valence was helping"
    )
    assert e.target == "1"  # contradiction is id 1 in the Hub schema


def test_wic_string(source):
    e = find("wic", source, "An emerging professional class.")
    assert e.source == (
        "superglue-wic sentence1: An emerging professional class. sentence2: Apologizing for losing your temper, "
        "even though you were badly provoked, showed real class. word: class"
    )
    assert e.target == "0"


def test_copa_question_only_in_paper_preset(source):
    paper = find("copa", source, "The man turned on the faucet.")
    code = find("copa", source, "The man turned on the faucet.", CODE)
    assert code.source == ("superglue-copa premise: The man turned on the faucet. choice1: The toilet filled with water. "
                           "choice2: Water flowed from the spout.")
    assert paper.source == code.source + " question: effect"
    assert paper.target == code.target == "1"


def test_wsc_span_marking(source):
    e = find("wsc", source, "Bernard , who had not told")
    assert e.source == (
        "superglue-wsc.fixed text: Bernard , who had not told the government official that he was less than 21 when "
        "he filed for a homestead claim, did not consider that he had done anything dishonest. Still, * anyone * who "
        "knew that he was 19 years old could take his claim away from # him # ."
    )
    assert e.target == "0"


def test_wsc_span_texts_are_fixed_as_the_hubs_wsc_fixed_fixes_them(source):
    rows = read_rows(TASKS.get("wsc"), "train", source) + read_rows(TASKS.get("wsc"), "validation", source)
    assert len(rows) == 72  # 10 of them with a span text not in the text as the files give it ("The table")
    assert all(row["span1_text"] in row["text"] and row["span2_text"] in row["text"] for row in rows)
    e = find("wsc", source, "made of styrofoam")  # record 23 is the same sentence "made of steel"
    assert e.source == ("superglue-wsc.fixed text: The large ball crashed right through * the table * because # it # "
                        "was made of styrofoam.")
    assert e.target == "1"


VAL_5 = {"text": "The large ball crashed right through the table because it was made of styrofoam.",
         "target": {"span2_index": 9, "span1_index": 6, "span1_text": "The table", "span2_text": "it"},
         "idx": 5, "label": True}
"""superglue/WSC/val.jsonl's record 5, as the file has it."""


@pytest.mark.parametrize("span1_text,span1_index,fixed", [
    ("The table", 6, "the table"),  # the file's own
    ("The table.", 6, "the table"),
    ("The\ntable", 6, "the table"),
    ("the large ball", 0, "The large ball"),
    ("The chair", 6, "The chair"),  # no repair places it: left as it is, as the Hub's loader cannot have met it
    ("The table", 14, "The table"),  # an index past the last word
])
def test_wsc_fix_on_records_built_from_a_real_one(tmp_path, span1_text, span1_index, fixed):
    record = {**VAL_5, "target": {**VAL_5["target"], "span1_text": span1_text, "span1_index": span1_index}}
    (tmp_path / "superglue/WSC").mkdir(parents=True)
    (tmp_path / "superglue/WSC/val.jsonl").write_text(json.dumps(record) + "\n")
    (row,) = read_rows(TASKS.get("wsc"), "validation", DataSource("dir", str(tmp_path)))
    spans = (row["span1_text"], row["span1_index"], row["span2_text"], row["span2_index"])
    assert spans == (fixed, span1_index, "it", 9)


def test_wsc_theyscold_span_moves_the_pronoun_index_as_on_the_hub(tmp_path):
    """A constructed record (shared/data has none) for the Hub loader's one special case."""
    record = {"text": "They are happy to have them back, but theyscold them just the same.",
              "target": {"span1_index": 5, "span1_text": "them", "span2_index": 8, "span2_text": "theyscold."},
              "idx": 0, "label": False}
    (tmp_path / "superglue/WSC").mkdir(parents=True)
    (tmp_path / "superglue/WSC/val.jsonl").write_text(json.dumps(record) + "\n")
    (row,) = read_rows(TASKS.get("wsc"), "validation", DataSource("dir", str(tmp_path)))
    spans = (row["span1_text"], row["span1_index"], row["span2_text"], row["span2_index"])
    assert spans == ("them", 5, "theyscold", 10)


def test_boolq_label_is_the_boolean_as_id(source):
    e = find("boolq", source, "question: does ethanol take more energy make that produces passage:")
    assert e.source.startswith("superglue-boolq question: does ethanol take more energy make that produces passage: "
                               "Ethanol fuel -- All biomass goes through at least some of these steps")
    assert e.target == "0"


def test_rte_reads_glue_tsv_with_sentence_columns(source):
    e = find("rte", source, "Dana Reeve, the widow")
    assert e.source == ("rte sentence1: Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer "
                        "at age 44, according to the Christopher Reeve Foundation. sentence2: Christopher Reeve had an accident.")
    assert e.target == "1"


def test_rte_falls_back_to_superglue_jsonl(tmp_path, shared_data):
    (tmp_path / "superglue" / "RTE").mkdir(parents=True)
    (tmp_path / "superglue" / "RTE" / "val.jsonl").write_text((shared_data / "superglue/RTE/val.jsonl").read_text())
    rows = read_rows(TASKS.get("rte"), "validation", DataSource("dir", str(tmp_path)))
    assert len(rows) == 277
    assert rows[0] == {"sentence1": rows[0]["sentence1"], "sentence2": "Christopher Reeve had an accident.", "label": 1, "idx": 0}


def test_multirc_flattens_one_row_per_answer_option(source):
    rows = read_rows(TASKS.get("multirc"), "validation", source)
    assert len(rows) == 341 and len({r["idx"]["question"] for r in rows}) == 76
    first = rows[0]
    assert first["question"] == "Would the mass of a baseball affect how much force you have to use to pick it up?"
    assert (first["answer"], first["label"], first["idx"]) == ("No", 0, {"paragraph": 0, "question": 0, "answer": 0})


def test_multirc_split_by_question_in_paper_preset_by_row_in_code(source):
    paper = [examples("multirc", s, source) for s in ("validation", "test")]
    code = [examples("multirc", s, source, CODE) for s in ("validation", "test")]
    assert [len(x) for x in paper] == [167, 174]  # 38 of the 76 questions go to dev
    assert len({e.extra["group"] for e in paper[0]}) == 38
    assert {e.extra["group"] for e in paper[0]}.isdisjoint(e.extra["group"] for e in paper[1])
    assert [len(x) for x in code] == [170, 171]  # 341 rows // 2
    assert not {e.extra["group"] for e in code[0]}.isdisjoint(e.extra["group"] for e in code[1])


def test_multirc_markup_removed():
    task = TASKS.get("multirc")
    row = {"question": "Who <b>won</b>?", "answer": "Ada", "paragraph": "<b>Sent 1: </b>Ada won.<br>Bo lost.",
           "idx": {"paragraph": 0, "question": 5, "answer": 9}, "label": 1}
    (e,) = task.format(row, PAPER, for_training=False)
    assert e.source == "superglue-multirc question: Who won? answer: Ada paragraph: Sent 1: Ada won. Bo lost."
    assert e.extra == {"group": 5}


def test_bad_label_names_file_record_and_value(tmp_path):
    folder = tmp_path / "superglue" / "CB"
    folder.mkdir(parents=True)
    (folder / "val.jsonl").write_text(json.dumps({"premise": "a", "hypothesis": "b", "label": "maybe"}) + "\n")
    with pytest.raises(DataError, match=r"val\.jsonl: line 1: unknown label 'maybe' \(valid: entailment, contradiction, neutral\)"):
        read_rows(TASKS.get("cb"), "validation", DataSource("dir", str(tmp_path)))


def test_missing_field_is_named(tmp_path):
    folder = tmp_path / "superglue" / "BoolQ"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text(json.dumps({"question": "q", "label": True}) + "\n")
    with pytest.raises(DataError, match=r"train\.jsonl: line 1: missing field 'passage'"):
        read_rows(TASKS.get("boolq"), "train", DataSource("dir", str(tmp_path)))


@pytest.mark.parametrize("task, folder, record, problem", [
    ("boolq", "BoolQ", {"question": "q", "passage": "p", "label": "maybe"}, "unknown label 'maybe' (valid: False, True)"),
    ("cb", "CB", {"premise": "a", "hypothesis": "b", "label": "maybe"},
     "unknown label 'maybe' (valid: entailment, contradiction, neutral)"),
    ("copa", "COPA", {"premise": "p", "choice1": "a", "choice2": "b", "question": "effect", "label": 2},
     "unknown label 2 (valid: 0, 1)"),
    ("multirc", "MultiRC", {"idx": 0, "passage": {"text": "t", "questions": [
        {"question": "q", "idx": 0, "answers": [{"text": "a", "idx": 0, "label": 3}]}]}},
     "unknown label 3 (valid: False, True)"),
    ("wic", "WiC", {"word": "w", "sentence1": "a w"}, "missing field 'sentence2'"),
    ("wsc", "WSC", {"text": "t", "target": {"span1_index": 0}}, "missing field 'span2_index'"),
    ("record", "ReCoRD", {"passage": {"text": "t", "entities": []}, "qas": [{"idx": 0}]}, "missing field 'query'"),
])
def test_a_bad_record_is_named_by_its_line_in_the_file(tmp_path, task, folder, record, problem):
    """Two blank lines, then the bad record: line 3 (record 0), counted by hand as an editor shows it."""
    path = tmp_path / "superglue" / folder / "val.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n\n" + json.dumps(record) + "\n")
    with pytest.raises(DataError) as error:
        TASKS.get(task).read_official(tmp_path, "validation")
    assert str(error.value) == f"{path}: line 3: {problem}"


def test_idx_stays_the_record_number_where_lines_are_skipped(tmp_path):
    """Records without `idx` get their place among the records (the Hub's), whatever lines lie between."""
    path = tmp_path / "superglue" / "BoolQ" / "val.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"question": "q1", "passage": "p", "label": true}\n\n{"question": "q2", "passage": "p", "label": false}\n')
    rows = TASKS.get("boolq").read_official(tmp_path, "validation")
    assert [(row["question"], row["idx"], row["label"]) for row in rows] == [("q1", 0, 1), ("q2", 1, 0)]


@pytest.mark.parametrize("task", ["boolq", "cb", "copa", "multirc", "wic", "wsc", "rte", "record"])
def test_fixtures_load_in_both_presets(task):
    for protocol in (PAPER, CODE):
        sizes = [len(load_examples(TASKS.get(task), s, DataSource("fixtures"), protocol)) for s in ("train", "validation", "test")]
        assert all(sizes), sizes
