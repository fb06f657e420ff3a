"""QA tasks (SQuAD, MRQA) and ReCoRD on the real official files, plus the SQuAD metrics.

Expected strings are the files' text with T5's punctuation padding written out
by hand, never produced by the code under test.
"""
from __future__ import annotations

import gzip
import json

import pytest

from bench.core.presets import PRESETS
from bench.pipeline.evaluation import score
from tasks.base import DataError, Example
from tasks.loading import FIXTURES, DataSource, load_examples, read_rows
from tasks.metrics import METRICS
from tasks.registry import TASKS, resolve_tasks

PAPER, CODE = PRESETS.get("paper"), PRESETS.get("attempt-code")
SPLITS = ("train", "validation", "test")
MRQA = ("nq", "hotpotqa", "searchqa", "newsqa")


def examples(task, split, source, protocol=PAPER):
    return load_examples(TASKS.get(task), split, source, protocol)


def only(found: list[Example]) -> Example:
    assert len(found) == 1, f"found {len(found)} examples"
    return found[0]


def asking(task, splits, source, question, protocol=PAPER) -> Example:
    """The one example of `splits` whose source holds `question` (where a seeded split put it)."""
    needle = f"question: {question} context:"
    return only([e for s in splits for e in examples(task, s, source, protocol) if needle in e.source])


@pytest.fixture(scope="module")
def shared(shared_data):
    return DataSource("dir", str(shared_data))


# -- registry and defaults -----------------------------------------------------

@pytest.mark.parametrize("task,epochs", [("squad", 10), *((name, 5) for name in MRQA)])
def test_defaults(task, epochs):
    t = TASKS.get(task)
    assert (t.split_protocol, t.max_source_length, t.labels) == ("large", 512, None)
    assert t.metrics == ("squad_f1", "squad_em") and t.report_metric == "squad_f1"
    assert t.default_max_target_length(tokenizer=None) == 128
    assert t.default_epochs(87_599) == epochs


def test_squad_epochs_follow_the_generic_rule_and_suites_resolve():
    assert TASKS.get("squad").default_epochs(5_000) == 20
    assert resolve_tasks("mrqa", None) == list(MRQA)
    assert "squad" in resolve_tasks("source", None)


def test_hub_sources():
    assert (TASKS.get("squad").hub.path, TASKS.get("squad").hub.config) == ("rajpurkar/squad", "plain_text")
    for name, subset in zip(MRQA, ("NaturalQuestionsShort", "HotpotQA", "SearchQA", "NewsQA")):
        task = TASKS.get(name)
        assert (task.hub.path, task.hub.config, task.hub.revision, task.subset) == (
            "mrqa-workshop/mrqa", "plain_text", "f3178d9888471dfb2b67c93de14f0ddf499a8d9f", subset)


def test_a_row_of_another_mrqa_subset_is_refused():
    row = json.loads((FIXTURES / "newsqa" / "train.jsonl").read_text().splitlines()[0])
    with pytest.raises(ValueError, match="subset 'NewsQA', expected 'HotpotQA'"):
        TASKS.get("hotpotqa").format(row, PAPER, for_training=True)


# -- fixtures --------------------------------------------------------------------


@pytest.mark.parametrize("task", ["squad", *MRQA])
@pytest.mark.parametrize("protocol", [PAPER, CODE], ids=["paper", "attempt-code"])
def test_fixtures_load_through_the_large_protocol(task, protocol):
    loaded = {s: examples(task, s, DataSource("fixtures"), protocol) for s in SPLITS}
    assert [len(loaded[s]) for s in SPLITS] == [24, 24, 24]  # 48 train rows: 24 carved as dev
    prefix = task if protocol.mrqa_own_data else "squad"
    for example in (e for split in loaded.values() for e in split):
        assert example.source.startswith(f"{prefix} question: ") and " context: " in example.source
        assert example.target == example.extra["answers"][0]
        assert f" {example.target} " in example.source


# -- SQuAD v1.1 ----------------------------------------------------------------------

SUPER_BOWL = (
    "Super Bowl 50 was an American football game to determine the champion of the National Football League "
    "( NFL ) for the 2015 season . The American Football Conference ( AFC ) champion Denver Broncos defeated "
    "the National Football Conference ( NFC ) champion Carolina Panthers 24 – 10 to earn their third Super Bowl "
    "title . The game was played on February 7 , 2016 , at Levi ' s Stadium in the San Francisco Bay Area at "
    "Santa Clara , California . As this was the 50th Super Bowl , the league emphasized the \" golden "
    "anniversary \" with various gold - themed initiatives , as well as temporarily suspending the tradition of "
    "naming each Super Bowl game with Roman numerals ( under which the game would have been known as \" Super "
    "Bowl L \" ) , so that the logo could prominently feature the Arabic numerals 50 ."
)
HESBURGH = (
    "The Rev . Theodore Hesburgh , C . S . C . , ( 1917 – 2015 ) served as president for 35 years ( 1952 – 87 ) "
    "of dramatic transformations . In that time the annual operating budget rose by a factor of 18 from $ 9 . 7 "
    "million to $ 176 . 6 million , and the endowment by a factor of 40 from $ 9 million to $ 350 million , and "
    "research funding by a factor of 20 from $ 735 , 000 to $ 15 million . Enrollment nearly doubled from 4 , 979 "
    "to 9 , 600 , faculty more than doubled 389 to 950 , and degrees awarded annually doubled from 1 , 212 to "
    "2 , 500 ."
)


def test_squad_split_sizes(shared):
    # train-v1.1.json: 269 questions (Notre Dame) -> 134 dev + 135 train; dev-v1.1.json: 810 (Super Bowl 50) = test
    assert [len(examples("squad", s, shared)) for s in SPLITS] == [135, 134, 810]


@pytest.mark.parametrize("protocol", [PAPER, CODE], ids=["paper", "attempt-code"])
def test_squad_dev_file_record_is_padded_and_keeps_all_answers(shared, protocol):
    found = asking("squad", ["test"], shared, "Where did Super Bowl 50 take place ?", protocol)
    assert found.source == f"squad question: Where did Super Bowl 50 take place ? context: {SUPER_BOWL}"
    assert found.target == "Santa Clara , California"
    assert found.extra == {"answers": [
        "Santa Clara , California", "Levi ' s Stadium",
        "Levi ' s Stadium in the San Francisco Bay Area at Santa Clara , California .",
    ]}


def test_squad_train_file_record(shared):
    found = asking("squad", ["train", "validation"], shared, "What was the lifespan of Theodore Hesburgh ?")
    assert found.source == f"squad question: What was the lifespan of Theodore Hesburgh ? context: {HESBURGH}"
    assert (found.target, found.extra) == ("1917 – 2015", {"answers": ["1917 – 2015"]})
    dollars = asking("squad", ["train", "validation"], shared,
                     "What was the size of the Notre Dame endowment when Theodore Hesburgh became president ?")
    assert dollars.target == "$ 9 million"


def test_squad_rows_have_the_hub_schema(shared):
    row = read_rows(TASKS.get("squad"), "validation", shared)[0]
    assert row == {
        "id": "56be4db0acb8001400a502ec", "title": "Super_Bowl_50", "context": row["context"],
        "question": "Which NFL team represented the AFC at Super Bowl 50?",
        "answers": {"text": ["Denver Broncos"] * 3, "answer_start": [177] * 3},
    }
    assert row["context"].startswith("Super Bowl 50 was an American football game")


# -- MRQA (the release's NewsQA sample) -------------------------------------------------------

NEWSQA_FORD = " ".join([
    "( CNN ) - - What could be more powerful than the tears of a Native American Indian ?",
    "Wax on , wax off : Does it make you want to save the rainforests ?",
    "Iron Eyes Cody was the face of the Keep American Beautiful campaign of 1971 whose tears marked the plight of "
    "the environment , but more importantly kept the problems of pollution in the minds of millions .",
    "From teary Native Americans to witty skits or doom - ladened eco - horror scenarios , the environmental "
    "campaign video then has long been a powerful tool for environmental groups to spread their message and raise "
    "pubic attention .",
    "The rise of YouTube and other video sharing web sites has now meant that individuals can broadcast their own "
    "eco - awareness messages and form their own social action networks .",
    "But what makes a good video and how much impact do they have ? Is it better to be funny or shocking ? When you "
    "see Harrison Ford getting his chest waxed , do you immediately think about saving the rainforests ?",
    "Or does the sight of celebrity pontificating about the plight of the environment make you want to watch their "
    "next film rather calculate your carbon footprint .",
    "We ' ve featured three different videos that we like and want to know which ones you think are the best . "
    "Watch the featured videos »",
    "Let us know which eco videos have got you going by using the Sound Off box below . Or , e - mail us at "
    "ecosolutions @ cnn . com .",
    "We also want to feature your own environmental videos here on CNN ' s Eco Solutions . Use the iReport form to "
    "send in your film and you could find your environmental efforts make even more impact than Harrison Ford ' s "
    "chest .",
])


@pytest.fixture
def newsqa(tmp_path, shared_data):
    """The release layout (`mrqa/{train,dev}/NewsQA.jsonl`, uncompressed, no header line),
    both splits linked to the sample file in place."""
    for folder in ("train", "dev"):
        (tmp_path / "mrqa" / folder).mkdir(parents=True)
        (tmp_path / "mrqa" / folder / "NewsQA.jsonl").symlink_to(shared_data / "mrqa" / "NewsQA_sample.jsonl")
    return DataSource("dir", str(tmp_path))


def test_newsqa_split_sizes(newsqa):
    # 17 questions: 8 carved as dev, 9 train; the dev file (the same 17) is the test split
    assert [len(examples("newsqa", s, newsqa)) for s in SPLITS] == [9, 8, 17]


@pytest.mark.parametrize("protocol,prefix", [(PAPER, "newsqa"), (CODE, "squad")], ids=["paper", "attempt-code"])
def test_newsqa_record_exact_strings_and_prefix(newsqa, protocol, prefix):
    found = asking("newsqa", ["test"], newsqa, "What does the Harrison Ford video feature ?", protocol)
    assert found.source == f"{prefix} question: What does the Harrison Ford video feature ? context: {NEWSQA_FORD}"
    assert (found.task, found.target) == ("newsqa", "getting his chest waxed ,")
    assert found.extra == {"answers": ["getting his chest waxed ,"]}
    troops = asking("newsqa", ["test"], newsqa, "How many troops does Canada have in Afghanistan ?", protocol)
    assert (troops.target, troops.extra) == ("35 , 000 .", {"answers": ["35 , 000 ."]})


def test_newsqa_rows_have_the_hub_schema(newsqa):
    row = read_rows(TASKS.get("newsqa"), "validation", newsqa)[0]
    assert {k: row[k] for k in ("subset", "qid", "question", "answers", "detected_answers")} == {
        "subset": "NewsQA", "qid": "849240180c584f71bc56c0c92c5df5fd", "question": "What will be nominated?",
        "answers": ["three different videos"],
        "detected_answers": {"text": ["three different videos"], "char_spans": [{"start": [1152], "end": [1173]}],
                             "token_spans": [{"start": [213], "end": [215]}]},
    }
    assert row["context"].startswith("(CNN) -- What could be more powerful") and row["context"].endswith("Ford's chest.")
    assert (row["context_tokens"]["tokens"][:3], row["context_tokens"]["offsets"][:3]) == (["(", "CNN", ")"], [0, 1, 4])
    assert row["question_tokens"]["tokens"] == ["What", "will", "be", "nominated", "?"]


def mrqa_line(question="What is the capital of France? ", answers=("Paris",)) -> dict:
    return {"context": " Paris is the capital of France.",
            "context_tokens": [["Paris", 1], ["is", 7], ["the", 10], ["capital", 14], ["of", 22], ["France", 25], [".", 31]],
            "qas": [{"qid": "q1", "question": question, "question_tokens": [["What", 0], ["is", 5]],
                     "answers": list(answers),
                     "detected_answers": [{"text": "Paris", "char_spans": [[1, 5]], "token_spans": [[0, 0]]}]}]}


def write_gz(path, lines: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(line) + "\n" for line in lines)


def test_mrqa_jsonl_gz_with_a_header_line(tmp_path):
    for folder in ("train", "dev"):
        write_gz(tmp_path / "mrqa" / folder / "HotpotQA.jsonl.gz",
                 [{"header": {"dataset": "HotpotQA", "split": folder}}, mrqa_line()])
    source = DataSource("dir", str(tmp_path))
    assert read_rows(TASKS.get("hotpotqa"), "validation", source) == [{
        "subset": "HotpotQA", "context": "Paris is the capital of France.",
        "context_tokens": {"tokens": ["Paris", "is", "the", "capital", "of", "France", "."],
                           "offsets": [1, 7, 10, 14, 22, 25, 31]},
        "qid": "q1", "question": "What is the capital of France?",
        "question_tokens": {"tokens": ["What", "is"], "offsets": [0, 5]},
        "detected_answers": {"text": ["Paris"], "char_spans": [{"start": [1], "end": [5]}],
                             "token_spans": [{"start": [0], "end": [0]}]},
        "answers": ["Paris"],
    }]
    assert examples("hotpotqa", "test", source) == [Example(
        "hotpotqa question: What is the capital of France ? context: Paris is the capital of France .",
        "Paris", "hotpotqa", {"answers": ["Paris"]})]


BROKEN = {
    "mrqa field": ("newsqa", "mrqa/dev/NewsQA.jsonl", json.dumps(mrqa_line()).replace('"question": ', '"query": '),
                   r"NewsQA\.jsonl: line 1 question 0: missing field 'question'"),
    "mrqa no answers": ("newsqa", "mrqa/dev/NewsQA.jsonl", json.dumps(mrqa_line(answers=())),
                        r"NewsQA\.jsonl: line 1 question 0: no answers"),
    "mrqa json": ("newsqa", "mrqa/dev/NewsQA.jsonl", '{"header": {"dataset": "NewsQA"}}\n{"context": ',
                  r"NewsQA\.jsonl: line 2: not valid JSON"),
    "mrqa header": ("newsqa", "mrqa/dev/NewsQA.jsonl", '{"header": {"dataset": "SearchQA"}}',
                    r"NewsQA\.jsonl: header: dataset 'SearchQA', expected 'NewsQA'"),
    "mrqa gzip": ("newsqa", "mrqa/dev/NewsQA.jsonl.gz", "not gzip", r"NewsQA\.jsonl\.gz: cannot read"),
    "squad json": ("squad", "squad/dev-v1.1.json", '{"data": [', r"dev-v1\.1\.json: line 2: not valid JSON"),
    "squad field": ("squad", "squad/dev-v1.1.json",
                    json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q"}]}]}]}),
                    r"dev-v1\.1\.json: article 0 paragraph 0 question 0: missing field 'answers'"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_malformed_official_files_name_file_record_and_problem(tmp_path, case):
    task, name, text, message = BROKEN[case]
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_text(text + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        TASKS.get(task).read_official(tmp_path, "validation")


@pytest.mark.parametrize("task,missing", [("squad", r"squad/train-v1\.1\.json: missing"),
                                          ("nq", r"NaturalQuestionsShort\.jsonl\.gz: missing")])
def test_missing_official_files(tmp_path, task, missing):
    with pytest.raises(DataError, match=missing):
        TASKS.get(task).read_official(tmp_path, "train")


# -- ReCoRD ------------------------------------------------------------------------------------

RECORD_0 = (
    "superglue-record record query: On October 10, acclaimed comedian and star of the summer box office hit "
    "Trainwreck Amy Schumer will make her SNL debut, followed by @placeholder a week later. entities: Amy Schumer, "
    "James, Jimmy Mack, McNair, Miley Cyrus, Morgan, NBC, New Jersey, New Jersey Turnpike, Night Live, SNL, "
    "Season 41, Tracy Morgan, Twitter passage: Tracy Morgan hasn't appeared on stage since the devastating New "
    "Jersey crash that nearly ended his life last summer, but all that will change this fall when he returns to "
    "host Saturday Night Live. NBC announced on Twitter Monday that Morgan, an SNL alum with seven seasons as a "
    "cast member under his belt, will headline the third episode of Season 41 airing October 17. For Morgan, 46, "
    "it will be a second time hosting the long-running variety show, the first since the June 2014 pileup on the "
    "New Jersey Turnpike that killed his friend and mentor James 'Jimmy Mack' McNair. Morgan, 46, will host third "
    "episode of season 41 of SNL airing October 17. He tweeted to his fans: 'Stoked to be going home...#SNL' For "
    "the SNL alum who had spent seven years as cast member, it will be a second time hosting the show. Morgan has "
    "been sidelined by severe head trauma suffered in deadly June 2014 crash on New Jersey Turnpike that killed "
    "his friend. First episode of new SNL season will be hosted by Miley Cyrus, followed by Amy Schumer"
)
RECORD_1 = (
    "superglue-record record query: Under the terms of the agreement any cubs will return to @placeholder at the "
    "age of two, the age at which they would normally leave their mother in the wild. entities: China, Edinburgh "
    "Zoo, Sweetie, Tian Tian, UK, Yang Guang passage: For four years we have waited expectantly for the pitter "
    "patter of tiny paws. Soon, that wait could finally be over. Tian Tian, the UK's only female giant panda, has "
    "conceived and could give birth to a cub as early as August. However Edinburgh Zoo, where the pandas live, "
    "have warned people 'not to get too excited' as the process is 'extremely complex'. Moreover, on the two "
    "previous occasions keepers inseminated Tian Tian - whose name means 'Sweetie' - she has failed to produce a "
    "panda cub. She was artificially inseminated again in March this year, but keepers at the zoo say "
    "implantation - when a fertilised egg attaches to the uterus - has not yet occurred. Tian Tian has conceived "
    "and could give birth to a cub as early as August. She has been inseminated twice before but so far failed to "
    "produce a cub. Tian Tian and Yang Guang arrived in 2011 from China to great fanfare. On loan at £600k a year, "
    "became first giant pandas to live in UK for 17 years"
)


@pytest.fixture(scope="module")
def record_rows(shared):
    return read_rows(TASKS.get("record"), "validation", shared)


def test_record_paper_eval_has_one_row_per_query(shared):
    test = examples("record", "test", shared, PAPER)
    assert [(e.source, e.target, e.extra) for e in test] == [
        (RECORD_0, "Morgan", {"answers": ["Morgan", "Tracy Morgan"]}),
        (RECORD_1, "China", {"answers": ["China"]}),
    ]
    assert len(examples("record", "validation", shared, PAPER)) == 16  # 32 train queries: half carved as dev


def test_record_attempt_code_eval_has_one_row_per_answer(shared):
    test = examples("record", "test", shared, CODE)
    assert [(e.source, e.target) for e in test] == [(RECORD_0, "Morgan"), (RECORD_0, "Tracy Morgan"), (RECORD_1, "China")]


@pytest.mark.parametrize("protocol", [PAPER, CODE], ids=["paper", "attempt-code"])
def test_record_training_has_one_row_per_gold_answer(record_rows, protocol):
    rows = TASKS.get("record").format(record_rows[0], protocol, for_training=True)
    assert [(e.source, e.target) for e in rows] == [(RECORD_0, "Morgan"), (RECORD_0, "Tracy Morgan")]


def test_record_entity_ends_are_inclusive(record_rows):
    spans = record_rows[0]["entity_spans"]
    # file: {start 0, end 11}, {60, 69}, {185, 194}; an exclusive reading would give "Tracy Morga", "Night Liv"
    assert spans["text"][:3] == ["Tracy Morgan", "New Jersey", "Night Live"]
    assert (spans["start"][:3], spans["end"][:3]) == ([0, 60, 185], [12, 70, 195])  # the Hub's ends are exclusive
    assert record_rows[1]["entities"] == ["China", "Edinburgh Zoo", "Sweetie", "Tian Tian", "UK", "Yang Guang"]


def test_record_entity_spans_are_in_passage_order_as_on_the_hub(tmp_path, shared_data, record_rows):
    """The real first record with its entity list reversed (the Hub's loader sorts spans by start)."""
    record = json.loads((shared_data / "superglue/ReCoRD/val.jsonl").read_text().splitlines()[0])
    record["passage"]["entities"].reverse()
    (tmp_path / "superglue/ReCoRD").mkdir(parents=True)
    (tmp_path / "superglue/ReCoRD/val.jsonl").write_text(json.dumps(record) + "\n")
    (row,) = read_rows(TASKS.get("record"), "validation", DataSource("dir", str(tmp_path)))
    assert row["entity_spans"]["start"][:4] == [0, 60, 185, 197]
    assert row == record_rows[0]


def test_record_highlights_become_sentences(record_rows):
    source = TASKS.get("record").format(record_rows[0], PAPER, for_training=False)[0].source
    assert "@highlight" not in source and "\n" not in source
    assert "McNair. Morgan, 46," in source  # after a full stop: only a space
    assert "#SNL' For the SNL alum" in source  # after a quote: only a space
    assert "October 17. He tweeted" in source  # otherwise: ". "


def test_record_query_without_answers_targets_unk():
    row = {"passage": "A text.", "query": "@placeholder", "entities": ["A"], "answers": []}
    for protocol in (PAPER, CODE):
        for for_training in (True, False):
            assert [e.target for e in TASKS.get("record").format(row, protocol, for_training)] == ["<unk>"]


# -- SQuAD metrics -------------------------------------------------------------------------------

def qa_example(*answers: str) -> Example:
    return Example("q", answers[0], "squad", {"answers": list(answers)})


def metric(name, predictions, examples_):
    return METRICS.get(name)(predictions, examples_, None)


@pytest.mark.parametrize("prediction,gold,f1,em", [
    ("The  Denver Broncos!", "denver broncos", 100.0, 100.0),  # case, punctuation, article, spaces
    ("a cat", "the cat", 100.0, 100.0),
    ("Denver Broncos team", "the Denver Broncos", 80.0, 0.0),  # P 2/3, R 1
    ("Broncos", "Denver Broncos", 100 * 2 / 3, 0.0),  # P 1, R 1/2
    ("Carolina", "Denver Broncos", 0.0, 0.0),
    ("35 , 000 .", "35,000.", 0.0, 0.0),  # "35 000" vs "35000": why gold answers are padded too
])
def test_squad_normalisation(prediction, gold, f1, em):
    assert metric("squad_f1", [prediction], [qa_example(gold)]) == pytest.approx(f1)
    assert metric("squad_em", [prediction], [qa_example(gold)]) == pytest.approx(em)


def test_squad_takes_the_best_gold_answer_and_the_mean_over_questions():
    golds = [qa_example("Santa Clara , California", "Levi ' s Stadium"), qa_example("Denver Broncos")]
    predictions = ["Santa Clara", "denver broncos"]
    # "santa clara" vs "santa clara california": P 1, R 2/3 -> 0.8; vs "levi s stadium": 0; then 1.0
    assert metric("squad_f1", predictions, golds) == pytest.approx(90.0)
    assert metric("squad_em", predictions, golds) == pytest.approx(50.0)
    result = score(TASKS.get("squad"), golds, [" Santa Clara ", "Denver Broncos"], PAPER)
    assert result.metrics == pytest.approx({"squad_f1": 90.0, "squad_em": 50.0}) and result.invalid == 0


def test_squad_scores_against_the_target_without_answers():
    assert metric("squad_em", ["paris"], [Example("q", "Paris", "squad", {})]) == 100.0
