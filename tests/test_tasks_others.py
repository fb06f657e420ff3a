"""WinoGrande, Yelp, SciTail, PAWS, IMDB, E2E and WebNLG against the real files in shared/data, and their metrics.

Expected strings are copied from the files by hand, not produced by the code
under test. Splits that need files shared/data does not have (train sets,
WinoGrande's dev.jsonl) are completed in tmp_path around links to the real
files. Metric values are computed by hand in the comments.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.core.presets import PRESETS
from bench.pipeline.evaluation import score
from tasks.base import DataError, Example
from tasks.loading import DataSource, folder_split, load_examples
from tasks.metrics import METRICS, generation_tokens, lcs_length
from tasks.registry import SUITES, TASKS

PAPER, CODE = PRESETS.get("paper"), PRESETS.get("attempt-code")


def examples(task: str, split: str, source: DataSource, protocol=PAPER) -> list[Example]:
    return load_examples(TASKS.get(task), split, source, protocol)


def link(data_dir: Path, relative: str, target: Path) -> None:
    path = data_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def write(data_dir: Path, relative: str, text: str) -> Path:
    path = data_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- registry ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task, prefix, protocol, metrics", [
    ("winogrande", "winogrande", "large", ("accuracy",)),
    ("yelp", "yelp_polarity", "large", ("accuracy",)),
    ("scitail", "scitail", "small", ("accuracy",)),
    ("paws", "paws", "own", ("accuracy",)),
    ("imdb", "imdb", "large", ("accuracy",)),
    ("e2e", "e2e", "own", ("bleu", "rouge_l", "cider", "chrf")),
    ("webnlg", "webnlg", "own", ("bleu", "ter")),
])
def test_declared(task, prefix, protocol, metrics):
    declared = TASKS.get(task)
    assert (declared.prefix, declared.split_protocol, declared.metrics) == (prefix, protocol, metrics)
    assert TASKS.get(prefix) is declared


def test_suites_resolve():
    assert [TASKS.get(t).name for t in SUITES.get("others")] == ["winogrande", "yelp", "scitail", "paws"]
    assert [TASKS.get(t).name for t in SUITES.get("nlg")] == ["e2e", "webnlg"]
    assert TASKS.get("yelp").max_train == 100_000 and TASKS.get("yelp").hub_test == "test"
    assert TASKS.get("imdb").hub_test == "test"
    # WebNLG's dev split: the release's xml_dev/, and on the Hub's parquet export a dev/ folder, which `datasets`
    # names validation (test_hub_loading.py reads one)
    webnlg = TASKS.get("webnlg")
    assert webnlg.official_splits[webnlg.hub_validation] == "xml_dev"
    assert folder_split(webnlg.hub_validation) == "validation"


# -- WinoGrande --------------------------------------------------------------------------------------------------------

def test_winogrande_formats_real_record_in_both_presets(shared_data):
    task = TASKS.get("winogrande")
    rows = task.read_official(shared_data, "train")
    assert [row["answer"] for row in rows] == ["1", "2", "2", "1"]
    sentence = "winogrande sentence: He never comes to my home, but I always go to his house because the _ is smaller."
    (paper,) = task.format(rows[0], PAPER, True)
    assert paper.source == f"{sentence} option0: home option1: house" and paper.target == "0"
    (code,) = task.format(rows[0], CODE, True)
    assert code.source == f"{sentence} option0: home option1: home" and code.target == "0"
    assert task.format(rows[1], PAPER, True)[0].target == "1"


def test_winogrande_test_file_is_unlabelled_like_the_hub(shared_data):
    rows = TASKS.get("winogrande").read_official(shared_data, "test")
    sentence = "There were more holes in the yard of Amy than Carrie because _ had less dogs at their home."
    assert rows[1] == {"sentence": sentence, "option1": "Amy", "option2": "Carrie", "answer": ""}


@pytest.fixture
def winogrande_dir(tmp_path, shared_data) -> Path:
    """Real train_xl.jsonl and dev-labels.lst, and a dev.jsonl of 1267 records without answers."""
    link(tmp_path, "winogrande/train_xl.jsonl", shared_data / "winogrande/train_xl.jsonl")
    link(tmp_path, "winogrande/dev-labels.lst", shared_data / "winogrande/dev-labels.lst")
    records = [{"qID": str(i), "sentence": f"Ada met Bo and _ smiled {i}.", "option1": "Ada", "option2": "Bo"}
               for i in range(1267)]
    write(tmp_path, "winogrande/dev.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    return tmp_path


def test_winogrande_dev_answers_come_from_the_labels_file(winogrande_dir):
    rows = TASKS.get("winogrande").read_official(winogrande_dir, "validation")
    answers = [row["answer"] for row in rows]
    assert answers[:5] == ["2", "1", "2", "1", "1"]
    assert (answers.count("1"), answers.count("2")) == (628, 639)


def test_winogrande_split_sizes(winogrande_dir):
    source = DataSource("dir", str(winogrande_dir))
    assert [len(examples("winogrande", s, source)) for s in ("train", "validation", "test")] == [2, 2, 1267]


# -- Yelp --------------------------------------------------------------------------------------------------------------

def test_yelp_classes_and_escapes_match_the_hub(shared_data):
    task = TASKS.get("yelp")
    rows = task.read_official(shared_data, "test")
    assert [row["label"] for row in rows] == [1, 0, 1, 0, 1, 1, 0, 0, 0]
    (friendly,) = task.format(rows[2], PAPER, False)
    assert friendly.source == ("yelp_polarity sentence: Friendly staff, same starbucks fair you get anywhere else.  "
                               "Sometimes the lines can get long.")
    assert friendly.target == "1"
    # the raw field between the quotes of line 2: quotes stay doubled, as the Hub's line slicing keeps them
    assert rows[1]["text"] == (
        "Last summer I had an appointment to get new tires and had to wait a super long time. I also went in this "
        "week for them to fix a minor problem with a tire they put on. They \\\"\"fixed\\\"\" it for free, and the "
        "very next morning I had the same issue. I called to complain, and the \\\"\"manager\\\"\" didn't even "
        "apologize!!! So frustrated. Never going back.  They seem overpriced, too.")
    # line 7 is unquoted in the file; line 6 keeps its newlines as a literal backslash-n
    assert rows[6]["text"].startswith("Mediocre service. COLD food!") and rows[6]["label"] == 0
    assert "found in Homestead.\\n\\nIf you're looking to grab a bite" in rows[5]["text"]
    assert "\n" not in "".join(row["text"] for row in rows)


def test_yelp_split_sizes(tmp_path, shared_data):
    for name in ("train.csv", "test.csv"):
        link(tmp_path, f"yelp/{name}", shared_data / "yelp" / name)
    source = DataSource("dir", str(tmp_path))
    assert [len(examples("yelp", s, source)) for s in ("train", "validation", "test")] == [3, 2, 9]


# -- SciTail -----------------------------------------------------------------------------------------------------------

def test_scitail_formats_real_records(shared_data):
    task = TASKS.get("scitail")
    rows = task.read_official(shared_data, "validation")
    assert [row["gold_label"] for row in rows] == ["neutral", "entailment", "entailment", "neutral"]
    assert set(rows[0]) == {"sentence1_binary_parse", "sentence1_parse", "sentence1", "sentence2_parse", "sentence2",
                            "annotator_labels", "gold_label"}
    (first,) = task.format(rows[2], PAPER, False)
    assert first.source == ("scitail premise: humans normally have 23 pairs of chromosomes. "
                            "hypothesis: Humans typically have 23 pairs pairs of chromosomes.")
    assert first.target == "0" and task.format(rows[0], CODE, False)[0].target == "1"


def test_scitail_split_sizes(tmp_path, shared_data):
    dev = shared_data / "scitail/snli_format/scitail_1.0_dev.txt"
    link(tmp_path, "scitail/snli_format/scitail_1.0_dev.txt", dev)
    link(tmp_path, "scitail/snli_format/scitail_1.0_train.txt", dev)
    source = DataSource("dir", str(tmp_path))
    assert [len(examples("scitail", s, source)) for s in ("train", "validation", "test")] == [4, 2, 2]


# -- PAWS --------------------------------------------------------------------------------------------------------------

def test_paws_split_sizes_and_record(shared_data):
    source = DataSource("dir", str(shared_data))
    assert [len(examples("paws", s, source)) for s in ("train", "validation", "test")] == [4, 4, 4]
    dev = examples("paws", "validation", source)
    assert dev[1].source == ("paws sentence1: They were there to enjoy us and they were there to pray for us . "
                             "sentence2: They were there for us to enjoy and they were there for us to pray .")
    assert dev[1].target == "1" and examples("paws", "validation", source, CODE)[1] == dev[1]
    assert TASKS.get("paws").read_official(shared_data, "test")[3]["id"] == 4


# -- IMDB --------------------------------------------------------------------------------------------------------------

def test_imdb_reads_the_release_layout(tmp_path):
    write(tmp_path, "aclImdb/train/neg/10_2.txt", "Dull.<br /><br />Very dull.")
    write(tmp_path, "aclImdb/train/neg/9_1.txt", "Awful.")
    write(tmp_path, "aclImdb/train/pos/3_9.txt", "Lovely.")
    rows = TASKS.get("imdb").read_official(tmp_path, "train")
    assert rows == [{"text": "Awful.", "label": 0}, {"text": "Dull.<br /><br />Very dull.", "label": 0},
                    {"text": "Lovely.", "label": 1}]
    (example,) = TASKS.get("imdb").format(rows[1], PAPER, True)
    assert (example.source, example.target) == ("imdb sentence: Dull.<br /><br />Very dull.", "0")


def test_imdb_truncation_at_the_default_source_length(shared_data):
    """The IMDB docstring's figure: about 45% of real reviews exceed 256 tokens (that file is only read for lengths)."""
    import sentencepiece

    model = sentencepiece.SentencePieceProcessor(model_file=str(shared_data / "t5" / "spiece.model"))
    reviews = json.loads((shared_data / "imdb" / "usb_format_test_1000.json").read_text(encoding="utf-8"))
    task = TASKS.get("imdb")
    lengths = np.array([len(model.encode(task.source({"text": r["ori"]}, PAPER))) + 1 for r in reviews.values()])
    assert task.max_source_length == 256 and np.median(lengths) == 240
    assert np.mean(lengths > 256) == pytest.approx(0.45, abs=0.01)


# -- E2E ---------------------------------------------------------------------------------------------------------------

ALIMENTUM = [
    "There is a place in the city centre, Alimentum, that is not family-friendly.",
    "In the city centre there is a venue name Alimentum, this is not a family-friendly venue.",
    "Alimentum is not a family-friendly place, located in city centre.",
    "Alimentum is not a family-friendly arena and is located in the city centre.",
    "Alimentum is not a family-friendly place in the city centre.",
    "Alimentum in city centre is not a family-friendly place.",
]


def test_e2e_trains_on_every_reference(shared_data):
    task = TASKS.get("e2e")
    rows = task.read_official(shared_data, "validation")
    assert len(rows) == 4672 and len({row["meaning_representation"] for row in rows}) == 547
    training = [e for row in rows[:7] for e in task.format(row, PAPER, True)]
    assert {e.source for e in training[:6]} == {"e2e name[Alimentum], area[city centre], familyFriendly[no]"}
    assert [e.target for e in training[:6]] == ALIMENTUM
    assert training[6].source == "e2e name[Alimentum], area[city centre], familyFriendly[no], near[Burger King]"


def test_e2e_evaluates_once_per_meaning_representation(shared_data):
    task = TASKS.get("e2e")
    merged = task.evaluation_rows(task.read_official(shared_data, "validation"))
    assert len(merged) == 547
    (first,) = task.format(merged[0], PAPER, False)
    assert first.source == "e2e name[Alimentum], area[city centre], familyFriendly[no]"
    assert first.target == ALIMENTUM[0] and first.extra == {"references": ALIMENTUM}


@pytest.fixture
def e2e_dir(tmp_path, shared_data) -> DataSource:
    for name in ("trainset.csv", "devset.csv", "testset_w_refs.csv"):
        link(tmp_path, f"e2e/{name}", shared_data / "e2e/devset.csv")
    return DataSource("dir", str(tmp_path))


def test_e2e_training_split_size(e2e_dir):
    assert len(examples("e2e", "train", e2e_dir)) == 4672


def test_e2e_evaluation_split_sizes(e2e_dir):
    dev = examples("e2e", "validation", e2e_dir)
    assert len(dev) == len(examples("e2e", "test", e2e_dir)) == 547
    assert dev[0].extra == {"references": ALIMENTUM}


# -- WebNLG ------------------------------------------------------------------------------------------------------------

def test_webnlg_real_dev_entries(shared_data):
    task = TASKS.get("webnlg")
    rows = task.read_official(shared_data, "dev")
    assert len(rows) == 226 and sum(len(row["lex"]["text"]) for row in rows) == 532
    assert rows[1]["modified_triple_sets"] == {"mtriple_set": [["Aarhus_Airport | runwayLength | 2702.0"]]}
    original = 'Aarhus_Airport | runwayLength | "2702.0"^^xsd:double'
    assert rows[1]["original_triple_sets"] == {"otriple_set": [[original]]}
    assert (rows[1]["category"], rows[1]["eid"], rows[1]["size"], rows[1]["test_category"]) == ("Airport", "Id2", 1, "")
    references = ["Aarhus Airport's runway length is 2702.0.", "The Aarhus Airport has a runway length of 2702.0."]
    assert rows[1]["lex"] == {"comment": ["good", "good"], "lid": ["Id1", "Id2"], "text": references, "lang": ["", ""]}
    (evaluated,) = task.format(rows[1], PAPER, False)
    assert evaluated.source == "webnlg Aarhus_Airport | runwayLength | 2702.0"
    assert (evaluated.target, evaluated.extra) == (references[0], {"references": references})
    assert [e.target for e in task.format(rows[1], CODE, True)] == references


TEST_XML = """<benchmark><entries>
<entry category="Astronaut" eid="Id1" size="2">
  <modifiedtripleset><mtriple>Alan_Bean | birthPlace | Wheeler,_Texas</mtriple>
  <mtriple>Alan_Bean | occupation | Test_pilot</mtriple></modifiedtripleset>
  <lex comment="good" lid="Id1">Alan Bean, born in Wheeler, Texas, was a test pilot.</lex>
</entry></entries></benchmark>"""


def test_webnlg_split_sizes_and_scored_test_file(tmp_path, shared_data):
    link(tmp_path, "webnlg/xml_train", shared_data / "webnlg/xml_dev")
    link(tmp_path, "webnlg/xml_dev", shared_data / "webnlg/xml_dev")
    write(tmp_path, "webnlg/xml_test/testdata_with_lex.xml", TEST_XML)
    write(tmp_path, "webnlg/xml_test/testdata_unseen_with_lex.xml", TEST_XML)
    source = DataSource("dir", str(tmp_path))
    assert [len(examples("webnlg", s, source)) for s in ("train", "validation", "test")] == [532, 226, 1]
    (test,) = examples("webnlg", "test", source)
    assert test.source == "webnlg Alan_Bean | birthPlace | Wheeler,_Texas || Alan_Bean | occupation | Test_pilot"


# -- bad files ---------------------------------------------------------------------------------------------------------

WINO = '{"sentence": "_ won.", "option1": "A", "option2": "B", "answer": "%s"}\n'


@pytest.mark.parametrize("task, relative, text, hub_split, message", [
    ("winogrande", "winogrande/train_xl.jsonl", WINO % "3", "train", "line 1: answer '3' is not"),
    ("winogrande", "winogrande/dev.jsonl", '{"sentence": "_ won.", "option1": "A", "option2": "B"}\n', "validation",
     "line 1: no answer"),
    ("winogrande", "winogrande/train_xl.jsonl", '{"sentence": "_ won.", "option1": "A", "answer": "1"}\n', "train",
     "line 1: missing field 'option2'"),
    ("yelp", "yelp/train.csv", '1,"fine"\n3,"what"\n', "train", "line 2: unknown label '3'"),
    ("yelp", "yelp/test.csv", '1,"a",b\n', "test", "line 1: 3 fields"),
    ("scitail", "scitail/snli_format/scitail_1.0_dev.txt",
     json.dumps({"sentence1_binary_parse": "", "sentence1_parse": "", "sentence1": "a", "sentence2_parse": "",
                 "sentence2": "b", "annotator_labels": [], "gold_label": "entails"}), "validation",
     "line 1: unknown label 'entails'"),
    ("paws", "paws/final/dev.tsv", "id\tsentence1\tsentence2\tlabel\n1\ta\tb\t2\n", "validation", "unknown label '2'"),
    ("paws", "paws/final/dev.tsv", "id\tsentence1\tsentence2\n1\ta\tb\n", "validation", "missing column 'label'"),
    ("paws", "paws/final/test.tsv", "id\tsentence1\tsentence2\tlabel\nx7\ta\tb\t1\n", "test",
     "id 'x7' is not an integer"),
    ("imdb", "aclImdb/train/neg/12_8.txt", "Great.", "train", "rating 8 does not belong in neg/"),
    ("imdb", "aclImdb/test/neg/review.txt", "Bad.", "test", "file name is not <id>_<rating>.txt"),
    ("imdb", "aclImdb/test/pos/1_9.txt", "Good.", "test", "neg: missing"),
    ("e2e", "e2e/testset_w_refs.csv", "MR\nname[X]\n", "test", "lacks the columns mr and ref"),
    ("e2e", "e2e/devset.csv", 'mr,ref\n"name[X]",\n', "validation", "line 2: empty mr or ref"),
    ("webnlg", "webnlg/xml_dev/1triples/a.xml", "<benchmark><entries><entry>", "dev", "not valid XML"),
    ("webnlg", "webnlg/xml_dev/1triples/a.xml", TEST_XML.replace(" | occupation |", " occupation"), "dev",
     "entry 0 (eid 'Id1'): triple 'Alan_Bean occupation Test_pilot' is not"),
    ("webnlg", "webnlg/xml_dev/notes.txt", "", "dev", "xml_dev: no WebNLG XML files"),
])
def test_bad_file_raises_one_line(tmp_path, task, relative, text, hub_split, message):
    path = write(tmp_path, relative, text)
    with pytest.raises(DataError) as error:
        TASKS.get(task).read_official(tmp_path, hub_split)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(tmp_path) in str(error.value) and (path.name in str(error.value) or path.parent.name in str(error.value))


@pytest.mark.parametrize("task, hub_split", [("winogrande", "train"), ("yelp", "test"), ("scitail", "train"),
                                             ("paws", "test"), ("imdb", "train"), ("e2e", "train"), ("webnlg", "test")])
def test_missing_release_file(tmp_path, task, hub_split):
    with pytest.raises(DataError, match="missing"):
        TASKS.get(task).read_official(tmp_path, hub_split)


def test_winogrande_labels_file_must_agree(tmp_path):
    write(tmp_path, "winogrande/dev.jsonl", WINO % "1" + WINO % "2")
    write(tmp_path, "winogrande/dev-labels.lst", "1\n1\n")
    with pytest.raises(DataError, match=r"line 2: answer '2' but dev-labels.lst says '1'"):
        TASKS.get("winogrande").read_official(tmp_path, "validation")
    write(tmp_path, "winogrande/dev-labels.lst", "1\n")
    with pytest.raises(DataError, match="1 labels for the 2 records of dev.jsonl"):
        TASKS.get("winogrande").read_official(tmp_path, "validation")


SCITAIL = {"sentence1_binary_parse": "", "sentence1_parse": "", "sentence1": "a", "sentence2_parse": "",
           "sentence2": "b", "annotator_labels": [], "gold_label": "entailment"}
PAWS_HEADER = "id\tsentence1\tsentence2\tlabel\n"


@pytest.mark.parametrize("task, relative, text, hub_split, message", [
    ("winogrande", "winogrande/train_xl.jsonl", WINO % "1" + "\n" + WINO % "3", "train",
     "line 3: answer '3' is not \"1\" or \"2\""),  # record 1, after the blank line 2
    ("winogrande", "winogrande/train_xl.jsonl",
     WINO % "1" + "\n" + '{"sentence": "_ won.", "option1": "A", "answer": "1"}\n', "train",
     "line 3: missing field 'option2'"),
    ("scitail", "scitail/snli_format/scitail_1.0_dev.txt",
     json.dumps(SCITAIL) + "\n\n" + json.dumps(SCITAIL | {"gold_label": "entails"}) + "\n", "validation",
     "line 3: unknown label 'entails' (valid: entailment, neutral)"),
    ("scitail", "scitail/snli_format/scitail_1.0_dev.txt",
     "\n" + json.dumps({key: value for key, value in SCITAIL.items() if key != "sentence2"}) + "\n", "validation",
     "line 2: missing field 'sentence2'"),
    ("paws", "paws/final/dev.tsv", PAWS_HEADER + "1\ta\tb\t0\n2\tc\td\t1\n3\te\tf\t2\n", "validation",
     "line 4: unknown label '2' (valid: 0, 1)"),  # the header is line 1
    ("paws", "paws/final/test.tsv", PAWS_HEADER + "1\ta\tb\t0\nx7\tc\td\t1\n", "test",
     "line 3: id 'x7' is not an integer"),
], ids=["winogrande-answer", "winogrande-field", "scitail-label", "scitail-field", "paws-label", "paws-id"])
def test_a_bad_record_is_named_by_its_line_in_the_file(tmp_path, task, relative, text, hub_split, message):
    """Counted by hand: from 1, header and blank lines included, as an editor shows them."""
    path = write(tmp_path, relative, text)
    with pytest.raises(DataError) as error:
        TASKS.get(task).read_official(tmp_path, hub_split)
    assert str(error.value) == f"{path}: {message}"


def test_winogrande_labels_file_goes_by_record_and_errors_by_line(tmp_path):
    """dev-labels.lst holds one label per record, so a blank line in dev.jsonl shifts no answer; an
    error names the line (3) of the record (1) whose answer disagrees."""
    record = '{"sentence": "_ won.", "option1": "A", "option2": "B"}\n'
    write(tmp_path, "winogrande/dev.jsonl", record + "\n" + record)
    write(tmp_path, "winogrande/dev-labels.lst", "2\n1\n")
    assert [row["answer"] for row in TASKS.get("winogrande").read_official(tmp_path, "validation")] == ["2", "1"]
    path = write(tmp_path, "winogrande/dev.jsonl", WINO % "2" + "\n" + WINO % "2")
    with pytest.raises(DataError) as error:
        TASKS.get("winogrande").read_official(tmp_path, "validation")
    assert str(error.value) == f"{path}: line 3: answer '2' but dev-labels.lst says '1'"


# -- fixtures ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task, sizes", [
    ("winogrande", (24, 24, 24)), ("yelp", (24, 24, 24)), ("imdb", (24, 24, 24)), ("scitail", (32, 12, 12)),
    ("paws", (32, 24, 8)),
])
def test_classification_fixtures_load(task, sizes):
    fixtures = DataSource("fixtures")
    for split, size in zip(("train", "validation", "test"), sizes):
        loaded = examples(task, split, fixtures)
        assert len(loaded) == size and all(TASKS.get(task).is_valid(e.target) for e in loaded)
        assert all(e.source.startswith(TASKS.get(task).prefix + " ") for e in loaded)


@pytest.mark.parametrize("task", ["e2e", "webnlg"])
def test_generation_fixtures_train_on_every_reference(task):
    train_file = Path(__file__).resolve().parent.parent / "tasks/fixtures" / task / "train.jsonl"
    hub_rows = [json.loads(line) for line in train_file.read_text().splitlines()]
    references = len(hub_rows) if task == "e2e" else sum(len(row["lex"]["text"]) for row in hub_rows)
    assert len(examples(task, "train", DataSource("fixtures"))) == references


@pytest.mark.parametrize("task", ["e2e", "webnlg"])
def test_generation_fixtures_evaluate_once_per_input(task):
    for split, inputs in (("validation", 24), ("test", 8)):
        loaded = examples(task, split, DataSource("fixtures"))
        assert len(loaded) == inputs and all(e.target == e.extra["references"][0] for e in loaded)


# -- metrics -----------------------------------------------------------------------------------------------------------

def refs(*references: list[str]) -> list[Example]:
    return [Example("s", texts[0], "t", {"references": texts}) for texts in references]


def m(name: str, predictions: list[str], examples_: list[Example]) -> float:
    return METRICS.get(name)(predictions, examples_, None)


def test_bleu_hand_computed():
    # precisions 3/4, 2/3, 1/2 and 4-grams 0/1 smoothed to 1/(2*1); BP 1: (1/8) ** (1/4)
    assert m("bleu", ["a b c d"], refs(["a b c e"])) == pytest.approx(100 * (1 / 8) ** 0.25)
    # BP uses the closest reference length: 4 words vs refs of 6 and 4 -> exact match; variable ref counts
    assert m("bleu", ["A B C D", "x y z w"], refs(["a b c d e f", "a b c d"], ["x y z w"])) == pytest.approx(100)
    # a single 5-word reference: BP = exp(1 - 5/4)
    assert m("bleu", ["a b c d"], refs(["a b c d e"])) == pytest.approx(100 * np.exp(-0.25))


def test_chrf_hand_computed():
    # "ab" vs "abc": 1-grams P 2/2 R 2/3, 2-grams P 1/1 R 1/2 (longer orders absent from the hypothesis);
    # mean P 1, mean R 7/12; F_beta=2 = 5 * 7/12 / (4 + 7/12) = 7/11; the better reference counts
    assert m("chrf", ["ab"], refs(["zzz", "abc"])) == pytest.approx(100 * 7 / 11)


def test_ter_hand_computed():
    # one substitution over 4 reference words
    assert m("ter", ["a b c d"], refs(["a b x d"])) == pytest.approx(25.0)
    # best edits over references (1 either way) over their average length (4 + 5) / 2
    assert m("ter", ["a b c d"], refs(["a b x d", "a b c d e"])) == pytest.approx(100 / 4.5)


def test_generation_tokens_and_lcs():
    assert generation_tokens("The cat, sat... (on) it!") == ["the", "cat", "sat", "on", "it"]
    assert lcs_length(["a", "b", "c", "d"], ["b", "x", "d"]) == 2 and lcs_length([], ["a"]) == 0


def test_rouge_l_hand_computed():
    # P and R are maximised over references separately (COCO): ref 1 gives P 4/4, ref 2 gives R 3/3 -> F 1
    assert m("rouge_l", ["a b c d"], refs(["a b c d e f g h", "b c d"])) == pytest.approx(100)
    # "a b c" vs "a c d e": LCS 2, P 2/3, R 1/2, beta 1.2; averaged with an exact match (punctuation and case dropped)
    f = (1 + 1.2**2) * (2 / 3) * (1 / 2) / (1 / 2 + 1.2**2 * 2 / 3)
    value = m("rouge_l", ["a b c", "The cat sat."], refs(["a c d e"], ["the cat sat"]))
    assert value == pytest.approx(100 * (f + 1) / 2)


def test_cider_d_hand_computed():
    # Two inputs, every n-gram in at most one input's references: idf = log 2 for all, so it cancels in the cosines.
    # Input 1, "a b x" vs "a b": 1-grams cos 2/sqrt(6), 2-grams cos 1/sqrt(2), 3-, 4-grams 0; bigram lengths 2 vs 1
    # -> penalty exp(-1/72); score 10 * mean over n. Input 2 shares nothing: 0.
    penalty = np.exp(-1 / 72)
    first = 10 * (2 / 6**0.5 + 1 / 2**0.5) / 4 * penalty
    assert m("cider", ["a b x", "c"], refs(["a b"], ["x"])) == pytest.approx(100 * first / 2)
    # Clipping and averaging over references: "a a" vs "a": min(2w, w) * w / (2w * w) = 1/2 on 1-grams, no
    # bigrams in the reference (norm 0), lengths 1 vs 0; vs "b": 0. (10 * (1/2)/4 * penalty + 0) / 2 references.
    first = 10 * 0.5 / 4 * penalty / 2
    assert m("cider", ["a a", "z"], refs(["a", "b"], ["c"])) == pytest.approx(100 * first / 2)


def test_generation_scores_of_perfect_predictions():
    e2e = TASKS.get("e2e")
    gold = refs(ALIMENTUM[:3], ALIMENTUM[3:])
    result = score(e2e, gold, [e.target for e in gold], PAPER)
    assert result.invalid == 0
    assert {k: result.metrics[k] for k in ("bleu", "rouge_l", "chrf")} == \
        {"bleu": pytest.approx(100), "rouge_l": pytest.approx(100), "chrf": pytest.approx(100)}
    webnlg = score(TASKS.get("webnlg"), gold, [e.target for e in gold], PAPER)
    assert webnlg.metrics == {"bleu": pytest.approx(100), "ter": 0.0}
