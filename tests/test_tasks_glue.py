"""GLUE tasks against the real official files in shared/data/glue, and their fixtures.

Expected strings are copied from the files by hand, not produced by the code
under test. Positions in dev/test follow the data-seed-42 permutation, so a
pinned (split, position) also pins which side of the split a record lands on.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.core.presets import PRESETS
from tasks.base import DataError
from tasks.glue import read_tsv
from tasks.loading import DataSource, load_examples
from tasks.registry import SUITES, TASKS

PAPER, CODE = PRESETS.get("paper"), PRESETS.get("attempt-code")
GLUE = SUITES.get("glue")


@pytest.fixture(scope="module")
def real(shared_data) -> DataSource:
    return DataSource("dir", str(shared_data))


def examples(task: str, split: str, source: DataSource, protocol=PAPER):
    return load_examples(TASKS.get(task), split, source, protocol)


def hub_rows(shared_data: Path, task: str, hub_split: str) -> list[dict]:
    return TASKS.get(task).read_official(shared_data, hub_split)


# -- registry --------------------------------------------------------------------


@pytest.mark.parametrize("task, protocol, metrics, report, labels", [
    ("mnli", "own", ("accuracy",), "accuracy", ("0", "1", "2")),
    ("qqp", "large", ("f1", "accuracy"), "accuracy", ("0", "1")),
    ("qnli", "large", ("accuracy",), "accuracy", ("0", "1")),
    ("sst2", "large", ("accuracy",), "accuracy", ("0", "1")),
    ("stsb", "small", ("pearson", "spearman"), "pearson", None),
    ("mrpc", "small", ("f1", "accuracy"), "accuracy", ("0", "1")),
    ("cola", "small", ("matthews",), "matthews", ("0", "1")),
    ("rte", "small", ("accuracy",), "accuracy", ("0", "1")),
])
def test_declared(task, protocol, metrics, report, labels):
    t = TASKS.get(task)
    assert (t.hub.path, t.hub.config) == ("nyu-mll/glue", task)
    assert (t.split_protocol, t.metrics, t.report_metric, t.labels, t.prefix) == (protocol, metrics, report, labels, task)


def test_mnli_dev_is_mismatched_and_test_matched():
    mnli = TASKS.get("mnli")
    assert (mnli.hub_train, mnli.hub_validation, mnli.hub_test) == ("train", "validation_mismatched", "validation_matched")


def test_stsb_predictions_are_floats():
    stsb = TASKS.get("stsb")
    assert stsb.is_valid("3.8") and stsb.is_valid("5") and stsb.is_valid("0.0")
    assert not stsb.is_valid("") and not stsb.is_valid("three")


def test_stsb_max_target_length_fits_every_target(shared_data):
    import sentencepiece

    model = sentencepiece.SentencePieceProcessor(model_file=str(shared_data / "t5" / "spiece.model"))
    longest = max(len(model.encode(f"{i / 10:.1f}")) + 1 for i in range(51))  # + EOS
    assert longest <= TASKS.get("stsb").max_target_length


# -- real files: sizes and formatted records ---------------------------------------


@pytest.mark.parametrize("task, train, dev, test", [
    ("mnli", 48, 2, 2),  # train sample; dev_mismatched / dev_matched hold their first 2 rows
    ("qqp", 16, 16, 2),  # large: dev carved from the 32-row train sample (half, below 2,000 rows)
    ("qnli", 16, 16, 40),
    ("sst2", 16, 16, 872),  # test = the complete SST-2 dev set
    ("stsb", 32, 20, 20),  # small: the 40 dev rows halved
    ("mrpc", 32, 204, 204),
    ("cola", 32, 20, 20),  # header-less: no row is lost to a header
    ("rte", 32, 138, 139),
])
def test_split_sizes(real, task, train, dev, test):
    assert [len(examples(task, split, real)) for split in ("train", "validation", "test")] == [train, dev, test]


PINNED = [
    # (task, split, position, source, paper target, attempt-code target)
    ("mnli", "train", 0, "mnli premise: That's all right. hypothesis: That's fine.", "0", "0"),
    ("mnli", "validation", 0,
     "mnli premise: Your contribution helped make it possible for us to provide our students with a quality "
     "education. hypothesis: Your contributions were of no help with our students' education.", "2", "2"),
    ("mnli", "test", 0,
     "mnli premise: The new rights are nice enough hypothesis: Everyone really likes the newest benefits ", "1", "1"),
    ("qqp", "train", 0,
     "qqp question1: I am bald on the right side above my ear because of an electric shock at the age of 1 and I "
     "don't have my right side log. Now I am 18. How can I style my hair? question2: I'm losing my hair from the "
     "front and sides and it almost looks bald.  Will I start losing hair from the middle of my head?", "0", "0"),
    ("qqp", "validation", 0,
     "qqp question1: What's your best birthday gift? question2: What are the best birthday gifts?", "1", "1"),
    ("qqp", "test", 0,
     "qqp question1: Why are African-Americans so beautiful? question2: Why are hispanics so beautiful?", "0", "0"),
    ("qnli", "train", 0,
     'qnli question: What does "open mouth operations" mean? sentence: Fractional deposit lending (changes in the '
     "reserve requirement); (iii) Moral suasion (cajoling certain market players to achieve specified outcomes); "
     '(iv) "Open mouth operations" (talking monetary policy with the market).', "0", "0"),
    ("qnli", "validation", 0,
     "qnli question: What are Afro-Spaniards? sentence: Today, there are an estimated 683,000 Afro-Spaniards in "
     "Spain.", "1", "1"),
    ("qnli", "test", 0,
     "qnli question: What came into force after the new constitution was herald? sentence: As of that day, the new "
     "constitution heralding the Second Republic came into force.", "0", "0"),
    ("sst2", "train", 0, "sst2 sentence: a classy , sprightly spin on film .", "1", "1"),
    ("sst2", "validation", 0,
     "sst2 sentence: the dialogue is very choppy and monosyllabic despite the fact that it is being dubbed .",
     "0", "0"),
    ("sst2", "test", 0, "sst2 sentence: it 's a charming and often affecting journey . ", "1", "1"),
    ("stsb", "train", 0,
     "stsb sentence1: More than 30 striking miners killed sentence2: More than 30 striking miners killed in South "
     "Africa", "3.8", "3.8"),
    ("stsb", "train", 1,  # 3.333: the grid rounds up, one decimal down
     "stsb sentence1: The songs are on offer for 99 cents each, or $9.99 for an album. sentence2: The company will "
     "offer songs for 99 cents and albums for $9.95.", "3.4", "3.3"),
    ("stsb", "train", 2,  # 3.500: on the grid 17.5 rounds half to even (as tf.round)
     'stsb sentence1: In a not-too-subtle swipe at Dean, he predicted Americans would not elect a Democrat "who '
     'sounds an uncertain trumpet in these dangerous times." sentence2: They will not elect as president a Democrat '
     'who sounds an uncertain trumpet in these dangerous times."', "3.6", "3.5"),
    ("stsb", "train", 31, "stsb sentence1: A man is talking with a woman. sentence2: A woman is walking with a dog.",
     "0.4", "0.5"),  # 0.500: 2.5 rounds half to even
    ("stsb", "validation", 0,
     "stsb sentence1: An animal is chewing on something. sentence2: An animal is chewing on a key chain.",
     "3.2", "3.2"),
    ("stsb", "test", 0, "stsb sentence1: A man is speaking. sentence2: A man is spitting.", "0.6", "0.6"),
    ("mrpc", "validation", 0,
     "mrpc sentence1: With these assets , Funny Cide has a solid chance to become the first Triple Crown winner "
     "since Affirmed in 1978 . sentence2: Funny Cide is looking to become horse racing 's first Triple Crown winner "
     "in a generation .", "0", "0"),
    ("mrpc", "test", 0,
     'mrpc sentence1: " Sanitation is poor ... there could be typhoid and cholera , " he said . sentence2: " '
     'Sanitation is poor , drinking water is generally left behind . . . there could be typhoid and cholera . "',
     "0", "0"),
    ("cola", "train", 16, "cola sentence: Jason arrived by Medea.", "0", "0"),
    ("cola", "validation", 0, "cola sentence: I said that never in my life had I seen a place like Bangor.", "1", "1"),
    ("cola", "test", 0, "cola sentence: He can not have been working.", "1", "1"),
    ("rte", "validation", 0,
     "rte sentence1: \"Bea Arthur and I first met when we did 'Mame' together in 1965. She became and has remained "
     "'My Bosom Buddy' ever since. I am deeply saddened by her passing, but also relieved that she is released from "
     "the pain. I spoke to Matt, her son, yesterday and I was aware that her time was imminent. She was a rare and "
     "unique performer and a dear, dear friend.\" Arthur passed away at her home on Saturday at the age of 86. "
     "Angela Lansbury is appearing in the current revival of Blithe Spirit which began preview performances on "
     "Thursday, February 26, 2009 and had an official opening on Sunday, March 15, 2009 at The Shubert Theatre "
     "(225 West 44th Street). sentence2: The actress Angela Lansbury is 86 years old.", "1", "1"),
    ("rte", "test", 0,
     "rte sentence1: Thus began the journey that led Hannam, a 29-year-old free-lance journalist, on an "
     "international quest to solve one of the greatest mysteries of Asia: What happened to Lin Piao, the Chinese "
     "Communist Party leader accused of a 1971 plot to overthrow Chairman Mao. sentence2: Lin Piao was the Chinese "
     "Communist Party leader.", "0", "0"),
]


@pytest.mark.parametrize("task, split, position, source, paper, code", PINNED)
def test_formatted_record(real, task, split, position, source, paper, code):
    for protocol, target in ((PAPER, paper), (CODE, code)):
        example = examples(task, split, real, protocol)[position]
        assert (example.source, example.target, example.task) == (source, target, task)


@pytest.mark.parametrize("task, source, split", [
    ("rte", "rte sentence1: Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, "
            "according to the Christopher Reeve Foundation. sentence2: Christopher Reeve had an accident.", "validation"),
    ("mrpc", "mrpc sentence1: He said the foodservice pie business doesn 't fit the company 's long-term growth "
             'strategy . sentence2: " The foodservice pie business does not fit our long-term growth strategy .', "test"),
    ("cola", "cola sentence: The sailors rode the breeze clear of the rocks.", "validation"),
    ("stsb", "stsb sentence1: A young child is riding a horse. sentence2: A child is riding a horse.", "test"),
    ("qnli", "qnli question: In what year did Robert Louis Stevenson die? sentence: Mission work in Samoa had begun "
             "in late 1830 by John Williams, of the London Missionary Society arriving in Sapapali'i from The Cook "
             "Islands and Tahiti.", "train"),
])
def test_membership(real, task, source, split):
    """A real record lands on exactly one side of the seeded split."""
    found = {s for s in ("train", "validation", "test") if source in [e.source for e in examples(task, s, real)]}
    assert found == {split}


# -- converter quirks ---------------------------------------------------------------


@pytest.mark.parametrize("task, hub_split, columns", [
    ("mnli", "train", ["premise", "hypothesis", "label", "idx"]),
    ("mnli", "validation_matched", ["premise", "hypothesis", "label", "idx"]),
    ("qqp", "validation", ["question1", "question2", "label", "idx"]),
    ("qnli", "validation", ["question", "sentence", "label", "idx"]),
    ("sst2", "validation", ["sentence", "label", "idx"]),
    ("stsb", "validation", ["sentence1", "sentence2", "label", "idx"]),
    ("mrpc", "validation", ["sentence1", "sentence2", "label", "idx"]),
    ("cola", "validation", ["sentence", "label", "idx"]),
])
def test_hub_schema(shared_data, task, hub_split, columns):
    rows = hub_rows(shared_data, task, hub_split)
    assert all(list(row) == columns for row in rows)
    assert [row["idx"] for row in rows] == list(range(len(rows)))


def test_mnli_selects_columns_by_header_name(shared_data):
    assert len(read_tsv(shared_data / "glue/MNLI/dev_matched.tsv")[0]) == 16
    assert len(read_tsv(shared_data / "glue/MNLI/train.tsv")[0]) == 12
    assert hub_rows(shared_data, "mnli", "validation_matched")[1] == {
        "premise": "This site includes a list of all award winners and a searchable database of Government "
                   "Executive articles.",
        "hypothesis": "The Government Executive articles housed on the website are not able to be searched.",
        "label": 2, "idx": 1}
    assert hub_rows(shared_data, "mnli", "train")[1]["premise"] == "and she's doing it i mean it's not like it's like"


def test_mrpc_bom_and_columns(shared_data):
    header = read_tsv(shared_data / "glue/MRPC/dev.tsv")[0]
    assert header == ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]  # BOM gone from "Quality"
    assert hub_rows(shared_data, "mrpc", "validation")[0] == {
        "sentence1": "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .",
        "sentence2": '" The foodservice pie business does not fit our long-term growth strategy .',
        "label": 1, "idx": 0}


def test_cola_is_header_less(shared_data):
    rows = hub_rows(shared_data, "cola", "validation")
    assert len(rows) == 40
    assert rows[0] == {"sentence": "The sailors rode the breeze clear of the rocks.", "label": 1, "idx": 0}


def test_sst2_keeps_the_trailing_space_like_the_hub(shared_data):
    assert hub_rows(shared_data, "sst2", "validation")[1]["sentence"] == "unflinchingly bleak and desperate "


def test_stsb_score_is_float32_like_the_hub(shared_data):
    rows = hub_rows(shared_data, "stsb", "train")
    assert [row["label"] for row in rows[:3]] == [float(np.float32(3.8)), float(np.float32(3.333)), 3.5]


def test_unbalanced_quotes_kept_verbatim(shared_data):
    rows = hub_rows(shared_data, "stsb", "train")
    assert rows[2]["sentence2"] == ("They will not elect as president a Democrat who sounds an uncertain trumpet in "
                                    'these dangerous times."')
    assert len(rows) == 32  # a quoted-CSV reader would merge lines here


# -- bad files ------------------------------------------------------------------------


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("task, relative, text, hub_split, message", [
    ("qnli", "glue/QNLI/dev.tsv", "index\tquestion\tsentence\tlabel\n0\tWho?\tNobody.\tmaybe\n", "validation",
     "line 2: unknown label 'maybe'"),
    ("sst2", "glue/SST-2/train.tsv", "sentence\tlabel\ngood .\t1\nno label here\n", "train",
     "line 3: 1 fields, expected 2"),
    ("cola", "glue/CoLA/dev.tsv", "gj04\t1\t\tFine.\ngj04\t1\tShort.\n", "validation", "line 2: 3 fields, expected 4"),
    ("mnli", "glue/MNLI/train.tsv", "index\tsentence1\tsentence2\tlabel1\n0\tA.\tB.\tneutral\n", "train",
     "header: missing column 'gold_label'"),
    ("mrpc", "glue/MRPC/dev.tsv", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n2\t1\t2\tA .\tB .\n",
     "validation", "line 2: unknown label '2'"),
    ("stsb", "glue/STS-B/dev.tsv", "sentence1\tsentence2\tscore\nA.\tB.\thigh\n", "validation",
     "line 2: score 'high' is not a number"),
    ("stsb", "glue/STS-B/dev.tsv", "sentence1\tsentence2\tscore\nA.\tB.\t7.5\n", "validation",
     "line 2: score '7.5' outside 0-5"),
    ("qqp", "glue/QQP/dev.tsv", "", "validation", "empty (expected a header line)"),
    ("qqp", "glue/QQP/train.tsv", None, "train", "missing"),
])
def test_bad_file_raises_one_line(tmp_path, task, relative, text, hub_split, message):
    if text is not None:
        write(tmp_path, relative, text)
    with pytest.raises(DataError) as error:
        TASKS.get(task).read_official(tmp_path, hub_split)
    assert str(error.value).startswith(str(tmp_path / relative) + ": ")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_test_files_need_no_label(tmp_path):
    write(tmp_path, "glue/CoLA/test.tsv", "index\tsentence\n0\tBill left.\n")
    assert TASKS.get("cola").read_official(tmp_path, "test") == [{"sentence": "Bill left.", "label": -1, "idx": 0}]


def test_rte_falls_back_to_superglue_jsonl(tmp_path):
    write(tmp_path, "superglue/RTE/val.jsonl",
          '{"premise": "A cat sat.", "hypothesis": "A cat exists.", "label": "entailment", "idx": 7}\n')
    assert TASKS.get("rte").read_official(tmp_path, "validation") == [
        {"sentence1": "A cat sat.", "sentence2": "A cat exists.", "label": 0, "idx": 7}]


# Lines in the official layouts, copied from shared/data (texts shortened).
QNLI_HEADER = "index\tquestion\tsentence\tlabel"
STSB_HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
RTE_JSONL = '{"premise": "Dana Reeve has died.", "hypothesis": "Christopher Reeve had an accident.", "label": "%s"}'


@pytest.mark.parametrize("task, relative, lines, hub_split, message", [
    ("qnli", "glue/QNLI/dev.tsv", [QNLI_HEADER, "0\tWhat came into force?\tThe constitution came into force.\tentailment",
                                   "1\tWhat is the first city?\tThe tributaries are the Ill.\tnot_entailment",
                                   "2\tWhat is required?\tA second degree is required.\tmaybe"], "validation",
     "line 4: unknown label 'maybe' (valid: entailment, not_entailment)"),  # header line 1, third record
    ("cola", "glue/CoLA/dev.tsv", ["gj04\t1\t\tThe sailors rode the breeze clear of the rocks.",
                                   "gj04\t1\t\tThe weights made the rope stretch over the pulley.",
                                   "gj04\t7\t\tThe mechanical doll wriggled itself loose."], "validation",
     "line 3: unknown label '7' (valid: 0, 1)"),  # no header: the third record is line 3
    ("stsb", "glue/STS-B/dev.tsv", [STSB_HEADER, "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man.\tA man.\t5.000",
                                    "1\tmain-captions\tMSRvid\t2012test\t0002\tnone\tnone\tA child.\tA kid.\thigh"],
     "validation", "line 3: score 'high' is not a number"),
    ("rte", "superglue/RTE/val.jsonl", [RTE_JSONL % "entailment", "", RTE_JSONL % "maybe"], "validation",
     "line 3: unknown label 'maybe' (valid: entailment, not_entailment)"),  # the blank line 2 counted
    ("rte", "superglue/RTE/val.jsonl", [RTE_JSONL % "entailment", "", "", '{"premise": "A cat sat."}'], "validation",
     "line 4: missing field 'hypothesis'"),
], ids=["qnli", "cola-header-less", "stsb", "rte-jsonl-label", "rte-jsonl-field"])
def test_a_bad_record_is_named_by_its_line_in_the_file(tmp_path, task, relative, lines, hub_split, message):
    """Counted by hand: from 1, the header line and blank lines included, as an editor shows them."""
    write(tmp_path, relative, "".join(line + "\n" for line in lines))
    with pytest.raises(DataError) as error:
        TASKS.get(task).read_official(tmp_path, hub_split)
    assert str(error.value) == f"{tmp_path / relative}: {message}"


def test_idx_stays_the_record_number_where_lines_are_skipped(tmp_path):
    """The Hub's `idx` counts records (0, 1), not lines: the blank line 2 changes error locations only."""
    write(tmp_path, "superglue/RTE/val.jsonl", RTE_JSONL % "entailment" + "\n\n" + RTE_JSONL % "not_entailment" + "\n")
    rows = TASKS.get("rte").read_official(tmp_path, "validation")
    assert [(row["idx"], row["label"]) for row in rows] == [(0, 0), (1, 1)]


# -- fixtures and CLI -------------------------------------------------------------------


@pytest.mark.parametrize("task", GLUE)
def test_fixtures_load(task):
    t = TASKS.get(task)
    fixtures = DataSource("fixtures")
    sizes = {"mnli": [32, 24, 24], "qqp": [24, 24, 24], "qnli": [24, 24, 24], "sst2": [24, 24, 24]}.get(task, [32, 12, 12])
    loaded = {split: examples(task, split, fixtures) for split in ("train", "validation", "test")}
    assert [len(loaded[split]) for split in loaded] == sizes
    for split_examples in loaded.values():
        assert all(e.source.startswith(f"{task} ") and t.is_valid(e.target) for e in split_examples)
    assert len({e.target for e in loaded["train"]}) > 1


def test_stsb_fixture_ties_differ_between_presets():
    paper = {e.target for e in examples("stsb", "train", DataSource("fixtures"), PAPER)}
    code = {e.target for e in examples("stsb", "train", DataSource("fixtures"), CODE)}
    assert "2.4" in paper and "2.5" in code  # label 2.5 on T5's grid vs one decimal


def test_cli_data_show_mnli(shared_data, capsys):
    code = main(["data", "show", "mnli", "--split", "test", "--data-dir", str(shared_data), "--limit", "1", "--json"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 1
    shown = json.loads(lines[0])
    assert shown["source"] == ("mnli premise: The new rights are nice enough hypothesis: Everyone really likes the "
                               "newest benefits ")
    assert (shown["target"], shown["task"]) == ("1", "mnli")

