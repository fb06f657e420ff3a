"""Metrics on decoded strings, all reported x100, none fetched from the Hub.

Every function takes the stripped predictions, the examples (targets and
scoring context) and the task's label set. An invalid prediction (outside the
label set) always counts as wrong: for the F1 family it becomes the opposite of
the gold label, as the official code does; for correlations an unparsable or
non-finite float becomes -1. Where the official code differs (Matthews), the
protocol picks a variant: `metric_function`.
"""
from __future__ import annotations

import importlib.util
import math
import re
import shutil
import string
import subprocess
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bench.core.presets import Protocol
from bench.core.registry import Registry
from tasks.base import Example

def _sklearn():
    """sklearn.metrics, imported at the first score (half a second; not on every command's path)."""
    from sklearn import metrics

    return metrics


MetricFn = Callable[[Sequence[str], Sequence[Example], tuple[str, ...] | None], float]
METRICS: Registry[MetricFn] = Registry("metric")


def metric(name: str):
    return METRICS.decorator(name)


SIGNED_METRICS = frozenset({"matthews", "pearson", "spearman"})
"""Metrics in [-100, 100] (correlations); every other is at least 0."""
UNBOUNDED_METRICS = frozenset({"cider", "ter"})
"""Metrics with no upper bound: CIDEr-D x100 (a perfect score is 1000), TER (edits can outnumber words)."""


def metric_range(name: str) -> tuple[float, float]:
    """The values `name` can take, x100 as bench reports it: what an interval of its mean is clipped to."""
    return (-100.0 if name in SIGNED_METRICS else 0.0, math.inf if name in UNBOUNDED_METRICS else 100.0)


def binary_ids(predictions, examples) -> tuple[np.ndarray, np.ndarray]:
    """Gold and predicted 0/1 ids; an invalid prediction flips the gold label."""
    gold = np.array([int(e.target) for e in examples])
    pred = np.array([int(p) if p in ("0", "1") else 1 - g for p, g in zip(predictions, gold)])
    return gold, pred


def to_float(text: str) -> float:
    """The prediction as a number, -1 where it is none or not finite ("nan", "inf"):
    a single NaN would make the whole correlation NaN, and with it checkpoint selection."""
    try:
        value = float(text)
    except ValueError:
        return -1.0
    return value if math.isfinite(value) else -1.0


@metric("accuracy")
def accuracy(predictions, examples, labels=None) -> float:
    return 100 * float(np.mean([p == e.target for p, e in zip(predictions, examples)]))


@metric("f1")
def binary_f1(predictions, examples, labels=None) -> float:
    """F1 of the positive class "1" (MRPC, QQP)."""
    gold, pred = binary_ids(predictions, examples)
    return 100 * _sklearn().f1_score(gold, pred, zero_division=0.0)


@metric("f1a")
def multirc_f1a(predictions, examples, labels=None) -> float:
    """MultiRC F1a: binary F1 pooled over every answer option of every question."""
    return binary_f1(predictions, examples)


@metric("macro_f1")
def macro_f1(predictions, examples, labels) -> float:
    """Unweighted mean of the per-class F1 over all label classes (CB: 3)."""
    gold = [labels.index(e.target) for e in examples]
    pred = [labels.index(p) if p in labels else -1 for p in predictions]
    return 100 * _sklearn().f1_score(gold, pred, labels=list(range(len(labels))), average="macro", zero_division=0.0)


@metric("matthews")
def matthews(predictions, examples, labels=None) -> float:
    """Binary MCC with an invalid prediction flipped to the opposite of the gold label.

    The official code only flips for F1 (`f1_score_with_invalid`); flipping here
    too keeps "invalid counts as wrong" uniform (the `paper` preset).
    """
    gold, pred = binary_ids(predictions, examples)
    return 100 * _sklearn().matthews_corrcoef(gold, pred)


def matthews_invalid_class(predictions, examples, labels=None) -> float:
    """MCC on the decoded strings, an invalid string being a class of its own.

    What the official ATTEMPT code computes: `sklearn.metrics.matthews_corrcoef`
    on the stripped target and prediction strings, nothing flipped.
    """
    return 100 * _sklearn().matthews_corrcoef([e.target for e in examples], list(predictions))


PROTOCOL_VARIANTS: dict[str, tuple[str, MetricFn]] = {
    "matthews": ("matthews_invalid_class", matthews_invalid_class),
}
"""Metric name -> (Protocol switch, the function used when it is on); results keep the name."""


def metric_function(name: str, protocol: Protocol) -> MetricFn:
    """The registered metric, or the variant its protocol switch selects."""
    switch, variant = PROTOCOL_VARIANTS.get(name, (None, None))
    return variant if switch and getattr(protocol, switch) else METRICS.get(name)


def _correlation(name: str, predictions, examples) -> float:
    """scipy.stats' `name` correlation (scipy imported here: a second at startup otherwise)."""
    from scipy import stats

    gold = np.array([float(e.target) for e in examples])
    pred = np.array([to_float(p) for p in predictions])
    if np.all(pred == pred[0]) or np.all(gold == gold[0]):
        return 0.0  # undefined for a constant input; scipy would return nan
    return 100 * float(getattr(stats, name)(gold, pred)[0])


@metric("pearson")
def pearson(predictions, examples, labels=None) -> float:
    return _correlation("pearsonr", predictions, examples)


@metric("spearman")
def spearman(predictions, examples, labels=None) -> float:
    return _correlation("spearmanr", predictions, examples)


@metric("em")
def grouped_exact_match(predictions, examples, labels=None) -> float:
    """MultiRC EM: the share of questions whose answer options are all right."""
    groups: dict[object, list[bool]] = defaultdict(list)
    for p, e in zip(predictions, examples):
        groups[e.extra["group"]].append(p == e.target)
    return 100 * float(np.mean([all(right) for right in groups.values()]))


PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower, drop punctuation, drop a/an/the, fold spaces."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _best_over_answers(fn, predictions, examples) -> float:
    scores = [max(fn(p, gold) for gold in (e.extra.get("answers") or [e.target])) for p, e in zip(predictions, examples)]
    return 100 * float(np.mean(scores))


@metric("squad_f1")
def squad_f1(predictions, examples, labels=None) -> float:
    return _best_over_answers(token_f1, predictions, examples)


@metric("squad_em")
def squad_em(predictions, examples, labels=None) -> float:
    return _best_over_answers(lambda p, g: float(normalize_answer(p) == normalize_answer(g)), predictions, examples)


# -- text generation (E2E, WebNLG) ----------------------------------------------
# Scored against `extra["references"]`, every reference of an input. Included:
# corpus BLEU, chrF and TER (sacrebleu), and ROUGE-L and CIDEr-D implemented
# below after the MS-COCO caption code that the E2E challenge scored with, on
# that code's Stanford PTB tokens where Java and pycocoevalcap (the `nlg`
# extra, which ships the jar) are installed, else on a 13a stand-in.
# Left out, because they cannot be computed here offline *correctly*: NIST
# (sacrebleu has none, and a reimplementation could not be checked against
# mteval-v13a) and METEOR (it needs WordNet and the METEOR 1.5 paraphrase
# tables: downloads and Java). sacrebleu is imported where used so that
# classification runs never load it.

GENERATION_PUNCTUATION = frozenset(".,;:!?'\"`-()[]{}")
ROUGE_L_BETA = 1.2
CIDER_SIGMA = 6.0
CIDER_MAX_N = 4


def reference_streams(examples: Sequence[Example]) -> list[list[str | None]]:
    """sacrebleu's layout: stream k holds every input's k-th reference, None where an input has fewer."""
    references = [e.extra["references"] for e in examples]
    width = max(len(texts) for texts in references)
    return [[texts[k] if k < len(texts) else None for texts in references] for k in range(width)]


@metric("bleu")
def corpus_bleu(predictions, examples, labels=None) -> float:
    """Corpus BLEU-4, multi-reference (sacrebleu, 13a tokens), case-insensitive as mteval-v13a scored E2E."""
    from sacrebleu.metrics import BLEU

    return float(BLEU(lowercase=True).corpus_score(list(predictions), reference_streams(examples)).score)


@metric("chrf")
def corpus_chrf(predictions, examples, labels=None) -> float:
    """Corpus chrF, multi-reference (sacrebleu defaults: character 6-grams, beta 2)."""
    from sacrebleu.metrics import CHRF

    return float(CHRF().corpus_score(list(predictions), reference_streams(examples)).score)


@metric("ter")
def corpus_ter(predictions, examples, labels=None) -> float:
    """Corpus TER in percent, multi-reference (sacrebleu defaults, case-insensitive).

    Lower is better, unlike every other metric: it is reported as is and left
    out of checkpoint selection (the generation tasks' `selection_metrics`).
    """
    from sacrebleu.metrics import TER

    return float(TER().corpus_score(list(predictions), reference_streams(examples)).score)


TOKENIZED_METRICS = frozenset({"rouge_l", "cider"})
"""The metrics whose value depends on `generation_tokenizer()`."""


def ptb_available() -> bool:
    """Whether the COCO caption code's PTB tokenizer can run: pycocoevalcap (it ships the jar) and java."""
    return importlib.util.find_spec("pycocoevalcap") is not None and shutil.which("java") is not None


def generation_tokenizer() -> str:
    """Which tokenizer ROUGE-L and CIDEr-D use here: "ptb" (the E2E scorer's) or the "13a" stand-in.

    Recorded with the scores (`Score.details`), since the two give different values.
    """
    return "ptb" if ptb_available() else "13a"


def generation_tokens(text: str) -> list[str]:
    """Lower-cased 13a tokens minus punctuation-only ones.

    The stand-in for the Stanford PTB tokenizer where Java or pycocoevalcap is
    missing: it also lower-cases and drops punctuation, but keeps "isn't" whole
    (PTB: "is n't"), among other differences.
    """
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return [t for t in Tokenizer13a()(text.lower()).split() if not set(t) <= GENERATION_PUNCTUATION]


def ptb_tokens(texts: list[str]) -> list[list[str]]:
    """Every text through the Stanford PTB tokenizer in ONE Java process (JVM start-up is the cost).

    The jar, flags and dropped punctuation tokens of pycocoevalcap's
    `PTBTokenizer` (same tokens on all 4,672 E2E dev references), run directly
    because that wrapper writes a temporary file into its (possibly read-only)
    package folder and ignores Java's exit status.
    Whitespace is folded first: `-preserveLines` also ends a line at \\r, \\f
    or U+2028, which would shift every later text onto another text's tokens.
    """
    from pycocoevalcap.tokenizer import ptbtokenizer as ptb

    jar = Path(ptb.__file__).with_name(ptb.STANFORD_CORENLP_3_4_1_JAR)
    command = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase"]
    lines = "\n".join(" ".join(text.split()) for text in texts)
    result = subprocess.run(command, input=lines, capture_output=True, encoding="utf-8")
    if result.returncode:
        raise RuntimeError(f"PTB tokenizer (java) failed: {(result.stderr.strip() or 'no message').splitlines()[0]}")
    output = result.stdout.split("\n")
    if len(output) != len(texts):
        raise RuntimeError(f"PTB tokenizer returned {len(output)} lines for {len(texts)} texts")
    return [[token for token in line.split() if token not in ptb.PUNCTUATIONS] for line in output]


def tokenized_for_generation(predictions, examples) -> tuple[list[list[str]], list[list[list[str]]]]:
    """Hypothesis tokens and each input's reference tokens, all in one tokenizer pass."""
    references = [e.extra["references"] for e in examples]
    texts = [*predictions, *(reference for group in references for reference in group)]
    tokens = ptb_tokens(texts) if generation_tokenizer() == "ptb" else [generation_tokens(t) for t in texts]
    rest = iter(tokens[len(predictions):])
    return tokens[: len(predictions)], [[next(rest) for _ in group] for group in references]


def lcs_length(first: Sequence[str], second: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, one row at a time)."""
    previous = [0] * (len(second) + 1)
    for token in first:
        current = [0]
        for j, other in enumerate(second):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l_segment(hypothesis: list[str], references: list[list[str]]) -> float:
    lcs = [lcs_length(hypothesis, reference) for reference in references]
    precision = max(length / len(hypothesis) if hypothesis else 0.0 for length in lcs)
    recall = max(length / len(reference) if reference else 0.0 for length, reference in zip(lcs, references))
    if precision == 0 or recall == 0:
        return 0.0
    return (1 + ROUGE_L_BETA**2) * precision * recall / (recall + ROUGE_L_BETA**2 * precision)


@metric("rouge_l")
def rouge_l(predictions, examples, labels=None) -> float:
    """Sentence-level ROUGE-L as the COCO caption code (the E2E scorer) computes it, averaged over inputs.

    Per input, with LCS the longest common subsequence of the tokens
    (`tokenized_for_generation`):
    P = max over references of LCS / |hypothesis|, R = max over references of
    LCS / |reference| (each maximised on its own, not the F of the best
    reference), F = (1 + beta^2) P R / (R + beta^2 P) with beta = 1.2, and 0
    when P or R is 0. Reported as the mean F x 100.
    """
    hypotheses, references = tokenized_for_generation(predictions, examples)
    return 100 * float(np.mean([rouge_l_segment(h, r) for h, r in zip(hypotheses, references)]))


def ngram_counts(tokens: list[str]) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for n in range(1, CIDER_MAX_N + 1) for i in range(len(tokens) - n + 1))


@metric("cider")
def cider_d(predictions, examples, labels=None) -> float:
    """CIDEr-D as the COCO caption code (`Cider`, the E2E scorer) computes it, x100.

    n-grams n = 1..4 of the tokens (`tokenized_for_generation`). Document frequency df(g) = the
    number of inputs whose references contain g, over the scored set itself;
    weight of g with count tf: tf * (log(#inputs) - log(max(1, df(g)))). Per
    reference and n: the hypothesis weights clipped at the reference's, dotted
    with the reference's, over the two norms (0 where a norm is 0), times
    exp(-(l_h - l_r)^2 / (2 * 6^2)), where l counts *bigrams* (the COCO code's
    length). An input's score is 10 x the mean over n, summed over its
    references and divided by their number; the metric is the mean over
    inputs x 100 (papers print it unscaled: their 2.3 is 230 here).
    """
    hypothesis_tokens, reference_tokens = tokenized_for_generation(predictions, examples)
    hypotheses = [ngram_counts(tokens) for tokens in hypothesis_tokens]
    references = [[ngram_counts(tokens) for tokens in texts] for texts in reference_tokens]
    document_frequency = Counter(g for counts in references for g in set().union(*counts))
    log_inputs = np.log(len(references))

    def weights(counts: Counter):
        vector: list[dict] = [{} for _ in range(CIDER_MAX_N)]
        for gram, tf in counts.items():
            vector[len(gram) - 1][gram] = tf * (log_inputs - np.log(max(1, document_frequency[gram])))
        norms = [np.sqrt(sum(w * w for w in v.values())) for v in vector]
        return vector, norms, sum(tf for gram, tf in counts.items() if len(gram) == 2)

    scores = []
    for hypothesis, counts_of_references in zip(hypotheses, references):
        vector, norms, length = weights(hypothesis)
        total = np.zeros(CIDER_MAX_N)
        for counts in counts_of_references:
            ref_vector, ref_norms, ref_length = weights(counts)
            penalty = np.exp(-((length - ref_length) ** 2) / (2 * CIDER_SIGMA**2))
            for n in range(CIDER_MAX_N):
                dot = sum(min(w, ref_vector[n].get(g, 0.0)) * ref_vector[n].get(g, 0.0) for g, w in vector[n].items())
                if norms[n] and ref_norms[n]:
                    total[n] += dot / (norms[n] * ref_norms[n]) * penalty
        scores.append(10 * total.mean() / len(counts_of_references))
    return 100 * float(np.mean(scores))
