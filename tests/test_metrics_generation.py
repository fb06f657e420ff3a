"""E2E/WebNLG metrics: the PTB-or-13a tokenizer of ROUGE-L and CIDEr-D, and sacrebleu's reference streams.

Expected tokens were read off one hand run of the Stanford PTB tokenizer
(pycocoevalcap's jar, `-preserveLines -lowerCase`); metric values are computed
by hand in the comments. Tests of the Java path skip where Java,
pycocoevalcap (`pip install -e '.[nlg]'`) or ../shared is missing, and start at
most one Java process each.
"""
from __future__ import annotations

import csv
import importlib.util
import shutil

import numpy as np
import pytest

from bench.core.presets import PRESETS
from bench.pipeline.evaluation import score
from tasks import metrics
from tasks.base import Example
from tasks.metrics import METRICS, generation_tokenizer, generation_tokens, ptb_tokens, reference_streams
from tasks.registry import TASKS

PAPER = PRESETS.get("paper")


def refs(*references: list[str]) -> list[Example]:
    return [Example("s", texts[0], "e2e", {"references": texts}) for texts in references]


def m(name: str, predictions: list[str], examples: list[Example]) -> float:
    return METRICS.get(name)(predictions, examples, None)


@pytest.fixture(scope="module")
def ptb() -> None:
    """The real Java path; skipped with the reason where it cannot run."""
    if importlib.util.find_spec("pycocoevalcap") is None:
        pytest.skip("pycocoevalcap not installed (pip install -e '.[nlg]'): PTB tokenizer path untested")
    if shutil.which("java") is None:
        pytest.skip("no `java` on PATH: PTB tokenizer path untested")
    assert generation_tokenizer() == "ptb"


@pytest.fixture
def use_13a(monkeypatch) -> None:
    """Pin the 13a stand-in, whatever this machine has installed."""
    monkeypatch.setattr(metrics, "ptb_available", lambda: False)


@pytest.fixture
def fake_java(tmp_path, monkeypatch):
    """Put a shell script named `java` first on PATH (pycocoevalcap must still be importable for the jar path)."""
    if importlib.util.find_spec("pycocoevalcap") is None:
        pytest.skip("pycocoevalcap not installed (pip install -e '.[nlg]')")

    def install(script: str) -> None:
        java = tmp_path / "java"
        java.write_text(f"#!/bin/sh\n{script}\n")
        java.chmod(0o755)
        monkeypatch.setenv("PATH", str(tmp_path))

    return install


def fake_availability(monkeypatch, installed: bool, java: str | None) -> None:
    find_spec, which = importlib.util.find_spec, shutil.which
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if installed else None) if name == "pycocoevalcap" else find_spec(name, *a))
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: java if cmd == "java" else which(cmd, *a, **k))


@pytest.mark.parametrize("installed, java, expected", [
    (True, "/usr/bin/java", "ptb"), (True, None, "13a"), (False, "/usr/bin/java", "13a"),
])
def test_ptb_needs_both_pycocoevalcap_and_java(monkeypatch, installed, java, expected):
    fake_availability(monkeypatch, installed, java)
    assert generation_tokenizer() == expected


def test_ptb_tokens_of_real_e2e_references(shared_data, ptb):
    rows = list(csv.DictReader((shared_data / "e2e" / "devset.csv").open(encoding="utf-8")))
    cafe = next(r["ref"] for r in rows if r["ref"].startswith("Browns Cambridge is a coffee shop near the Crowne Plaza Hotel. It's"))
    assert cafe == ("Browns Cambridge is a coffee shop near the Crowne Plaza Hotel. It's a good Café for family . "
                    "It  doesn't located on the  centre of city . It's a good place for eating breakfast.")
    hyphen = next(r["ref"] for r in rows if r["ref"].startswith("With a customer rating of 5 out of 5, coffee shop Browns"))
    # one Java process for all five; \r and U+2028 would end a line in Java and shift the texts after them
    tokens = ptb_tokens([cafe, hyphen, "a\rb", "c\u2028d", "It's £20 (yes)."])
    assert tokens[0] == ["browns", "cambridge", "is", "a", "coffee", "shop", "near", "the", "crowne", "plaza", "hotel",
                         "it", "'s", "a", "good", "café", "for", "family", "it", "does", "n't", "located", "on", "the",
                         "centre", "of", "city", "it", "'s", "a", "good", "place", "for", "eating", "breakfast"]
    assert tokens[1][-7:] == ["offers", "chinese", "food-however", "is", "n't", "family", "friendly"]
    assert tokens[2:4] == [["a", "b"], ["c", "d"]]
    # lower-casing turns -LRB- into -lrb-, which the COCO code's punctuation list no longer drops; £ becomes #
    assert tokens[4] == ["it", "'s", "#", "20", "-lrb-", "yes", "-rrb-"]
    assert "doesn't" in generation_tokens(cafe)  # the 13a stand-in keeps contractions whole


def test_ptb_tokens_reports_a_failing_java(fake_java):
    # right number of lines, so only the exit status tells
    fake_java("printf 'a\\nb'; printf 'Exception in thread main java.lang.OutOfMemoryError\\n\\tat Foo\\n' >&2; exit 1")
    with pytest.raises(RuntimeError, match=r"^PTB tokenizer \(java\) failed: Exception in thread main java.lang.OutOfMemoryError$"):
        ptb_tokens(["a", "b"])


def test_ptb_tokens_refuses_a_wrong_number_of_lines(fake_java):
    fake_java("printf 'a b'; echo 'PTBTokenizer tokenized 2 tokens' >&2")  # one line for two texts
    with pytest.raises(RuntimeError, match=r"^PTB tokenizer returned 1 lines for 2 texts$"):
        ptb_tokens(["a", "b"])


# "It isn't." vs "It is not.": 13a ["it", "isn't"] vs ["it", "is", "not"]: LCS 1, P 1/2, R 1/3;
# PTB ["it", "is", "n't"] vs ["it", "is", "not"]: LCS 2, P = R = 2/3. F = (1 + 1.2^2) P R / (R + 1.2^2 P).
ROUGE_CASE = (["It isn't."], refs(["It is not."]))


def test_rouge_l_under_13a(use_13a):
    f = (1 + 1.44) * (1 / 2) * (1 / 3) / (1 / 3 + 1.44 * (1 / 2))
    assert m("rouge_l", *ROUGE_CASE) == pytest.approx(100 * f)


def test_rouge_l_under_ptb(ptb):
    assert m("rouge_l", *ROUGE_CASE) == pytest.approx(100 * 2 / 3)  # P = R = F


# Two inputs: "isn't" vs "isn't", and "x" vs "is"; log(#inputs) = log 2.
# 13a: input 1 is one 1-gram "isn't" (df 1, weight log 2) on both sides: cos 1 at n = 1, no 2-grams (norm 0),
#   bigram lengths 0 = 0 -> 10 * (1 + 0 + 0 + 0) / 4 = 2.5. Input 2: "x" never meets "is": 0. Mean 1.25.
# PTB: "is n't" both sides; "is" is in both inputs' references (df 2, weight log 2 - log 2 = 0), "n't" and
#   "is n't" in one (log 2): cos 1 at n = 1 and 2, lengths 1 = 1 -> 10 * 2 / 4 = 5. Input 2: its reference's
#   only weight is 0 (norm 0): 0. Mean 2.5.
CIDER_CASE = (["isn't", "x"], refs(["isn't"], ["is"]))


def test_cider_d_under_13a(use_13a):
    assert m("cider", *CIDER_CASE) == pytest.approx(100 * 1.25)


def test_cider_d_under_ptb(ptb):
    assert m("cider", *CIDER_CASE) == pytest.approx(100 * 2.5)


def test_score_records_the_tokenizer_only_for_tokenized_metrics(use_13a):
    e2e, (predictions, examples) = TASKS.get("e2e"), CIDER_CASE
    result = score(e2e, examples, predictions, PAPER)
    assert result.details == {"tokenizer": "13a"} and result.as_dict()["details"] == {"tokenizer": "13a"}
    assert result.metrics["cider"] == pytest.approx(125.0)
    plain = score(e2e, examples, predictions, PAPER, metric_names=("bleu", "chrf"))
    assert plain.details == {} and "details" not in plain.as_dict()


def test_reference_streams_pad_with_none_never_empty_strings():
    examples = refs(["a1", "a2"], ["b1"], ["c1", "c2", "c3"])
    assert reference_streams(examples) == [["a1", "b1", "c1"], ["a2", None, "c2"], [None, None, "c3"]]


def test_bleu_leaves_a_missing_reference_out():
    from sacrebleu.metrics import BLEU

    first, second = ["the cat sat on the mat", "A cat was on the mat"], ["a dog ran fast today"]
    hypotheses = ["The cat sat on the mat", "a dog"]
    bleu = BLEU(lowercase=True)
    # each input scored on its own references only, then the corpus statistics summed
    alone = [bleu.corpus_score([hypotheses[0]], [[first[0]], [first[1]]]), bleu.corpus_score([hypotheses[1]], [second])]
    expected = BLEU.compute_bleu(
        [sum(c) for c in zip(*(s.counts for s in alone))], [sum(t) for t in zip(*(s.totals for s in alone))],
        sum(s.sys_len for s in alone), sum(s.ref_len for s in alone), smooth_method="exp",
    ).score
    # by hand: every n-gram matches; hypothesis 6 + 2 words, closest references 6 + 5 -> BP = exp(1 - 11/8)
    assert expected == pytest.approx(100 * np.exp(1 - 11 / 8))
    # an "" pad would be the second input's closest reference (0 words from 2) and lift BLEU to 100
    assert m("bleu", hypotheses, refs(first, second)) == pytest.approx(expected)
