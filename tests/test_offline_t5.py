"""T5's real tokenizer without the Hub: the shipped SentencePiece model, `bench data stats` and
`bench params` on the T5 v1.0 names, all with every Hub loader made to fail."""
from __future__ import annotations

import hashlib
import json
import statistics

import pytest
import sentencepiece
import transformers

from bench.backbones.catalog import T5_SPIECE, load_tokenizer, read_sentencepiece, t5_tokenizer
from bench.cli import main
from bench.core.registry import UsageError
from methods.registry import METHODS

SENTENCE = "The quick brown fox jumps over the lazy dog."
SENTENCE_IDS = [37, 1704, 4216, 3, 20400, 4418, 7, 147, 8, 19743, 1782, 5, 1]
"""T5's tokenisation of SENTENCE (the Hub tokenizer's ids, EOS = 1 last)."""
TRICKY = ["ﬁne  café   naïve", "Ｆｕｌｌｗｉｄｔｈ ①", "tab\there\nnewline", "  leading and trailing  ", "東京", "x"]
"""Unicode the normaliser must fold (NFKC ligatures, full width, circled digits) and whitespace it must collapse."""


@pytest.fixture
def no_hub(monkeypatch):
    """Every Hub loader fails the test, whatever the offline variables say."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"the Hub was asked for {args[:1]}")

    for loader in (transformers.AutoTokenizer, transformers.AutoConfig, transformers.AutoModelForSeq2SeqLM,
                   transformers.T5Tokenizer):
        monkeypatch.setattr(loader, "from_pretrained", refuse)


@pytest.fixture(scope="module")
def reference(shared_data):
    """SentencePiece's own tokenisation of T5's model (an implementation independent of ours)."""
    return sentencepiece.SentencePieceProcessor(model_file=str(shared_data / "t5" / "spiece.model"))


@pytest.mark.parametrize("name", ["t5-small", "t5-base", "t5-large", "t5-3b", "google-t5/t5-base"])
def test_t5_names_get_t5s_tokenizer_offline(no_hub, name):
    tokenizer = load_tokenizer(name)
    assert len(tokenizer) == 32_100
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert tokenizer(SENTENCE).input_ids == SENTENCE_IDS
    assert tokenizer.convert_tokens_to_ids(["<extra_id_0>", "<extra_id_99>"]) == [32_099, 32_000]
    assert tokenizer("Hello <extra_id_0> world").input_ids == [8774, 32_099, 296, 1]
    assert tokenizer.decode(SENTENCE_IDS, skip_special_tokens=True) == SENTENCE


def test_ids_are_sentencepieces_own_on_real_text(no_hub, shared_data, reference):
    texts = list(TRICKY)
    for name in ("CB", "BoolQ", "MultiRC", "WiC"):
        for line in (shared_data / "superglue" / name / "val.jsonl").read_text().splitlines():
            record = json.loads(line)
            texts += [value for value in record.values() if isinstance(value, str)]
            texts += [record["passage"]["text"]] if isinstance(record.get("passage"), dict) else []
    tokenizer = load_tokenizer("t5-base")
    assert len(texts) > 300
    assert [tokenizer(text).input_ids for text in texts] == [reference.encode(text) + [1] for text in texts]


NEEDS_NORMALISER = ["Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３", "ﬁne ﬂour", "① ②", "½ ™", "cafe\u0301"]
"""Text that only SentencePiece's nmt_nfkc normaliser (the model's precompiled charsmap) makes T5 pieces of:
full-width letters and digits, ligatures, circled digits, vulgar fractions, a decomposed accent."""


def test_t5_tokenizer_applies_the_models_normaliser():
    """transformers 5.0 to 5.2 build T5Tokenizer with no normaliser and drop `_spm_precompiled_charsmap`;
    the ids must be SentencePiece's own, which they are not without the charsmap (checked here too)."""
    reference = sentencepiece.SentencePieceProcessor(model_file=str(T5_SPIECE))
    expected = [reference.encode(text) + [1] for text in NEEDS_NORMALISER]
    assert [t5_tokenizer(T5_SPIECE)(text).input_ids for text in NEEDS_NORMALISER] == expected
    pieces, _ = read_sentencepiece(T5_SPIECE)
    bare = transformers.T5Tokenizer(vocab=pieces + [(f"<extra_id_{i}>", 0.0) for i in reversed(range(100))])
    assert all(bare(text).input_ids != ids for text, ids in zip(NEEDS_NORMALISER, expected))


def test_the_shipped_model_is_t5s_and_says_where_it_comes_from(shared_data):
    shipped = T5_SPIECE.read_bytes()
    assert shipped == (shared_data / "t5" / "spiece.model").read_bytes()
    notice = (T5_SPIECE.parent / "README.md").read_text()
    assert hashlib.sha256(shipped).hexdigest() in notice and "Apache License 2.0" in notice


def test_a_saved_tokenizer_and_a_spiece_only_folder_tokenise_the_same(tmp_path):
    saved = tmp_path / "saved"
    load_tokenizer("t5-base").save_pretrained(saved)
    assert transformers.AutoTokenizer.from_pretrained(saved)(SENTENCE).input_ids == SENTENCE_IDS
    folder = tmp_path / "checkpoint"  # as the Hub's snapshots of 2020 hold it: no tokenizer.json
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    (folder / "spiece.model").write_bytes(T5_SPIECE.read_bytes())
    assert load_tokenizer(str(folder))(SENTENCE).input_ids == SENTENCE_IDS


@pytest.mark.parametrize("content,problem", [
    (b"", "not a SentencePiece model (no pieces)"),
    (b"not a model", "not a readable SentencePiece model (ValueError)"),
    (T5_SPIECE.read_bytes()[:5000], "not a readable SentencePiece model (ValueError)"),
])
def test_a_model_file_that_is_not_sentencepiece_is_one_line(tmp_path, capsys, content, problem):
    path = tmp_path / "broken.model"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=r"broken\.model"):
        load_tokenizer(str(path))
    assert main(["data", "stats", "--tasks", "cb", "--fixtures", "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"bench: error: {str(path)!r} is {problem}\n"


def test_data_stats_counts_t5_tokens_offline(no_hub, shared_data, reference, capsys):
    assert main(["data", "stats", "--suite", "superglue", "--model", "t5-base", "--data-dir", str(shared_data),
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["task"], r["split"]) for r in rows] == [
        (task, split) for task in ("multirc", "boolq", "wic", "wsc", "cb") for split in ("train", "validation", "test")]
    cb = {r["split"]: r for r in rows if r["task"] == "cb"}
    assert [cb[split]["n"] for split in ("train", "validation", "test")] == [32, 28, 28]  # CB's 56 dev rows halved
    records = [json.loads(line) for line in (shared_data / "superglue/CB/train.jsonl").read_text().splitlines()]
    sources = [len(reference.encode(f"superglue-cb premise: {r['premise']} hypothesis: {r['hypothesis']}")) + 1
               for r in records]
    label = {"entailment": "0", "contradiction": "1", "neutral": "2"}
    targets = [len(reference.encode(label[r["label"]])) + 1 for r in records]
    train = cb["train"]
    assert (train["source_tokens"]["mean"], train["source_tokens"]["max"]) == (round(statistics.mean(sources), 1),
                                                                               max(sources))
    assert train["source_tokens"]["truncated_pct"] == round(100 * sum(n > 256 for n in sources) / len(sources), 1)
    assert (train["target_tokens"]["mean"], train["target_tokens"]["max"]) == (round(statistics.mean(targets), 1),
                                                                               max(targets))


def test_params_table_offline(no_hub, capsys):
    assert main(["params", "--method", "pt", "--model", "t5-base"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "pt on t5-base, 1 task, prompt length 100 (profile paper):"
    shown = {line.split(":")[0].strip(): line.split(":", 1)[1].split()[0] for line in lines[1:]}
    assert (shown["trainable"], shown["backbone"]) == ("76,800", "222,903,552")


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_counts_offline(no_hub, capsys, method):
    assert main(["params", "--method", method, "--model", "t5-small", "--num-tasks", "2", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["backbone"] == 60_506_624  # t5-small, embedding tied
    assert counts["trainable"] == counts["shared"] + counts["num_tasks"] * counts["per_task"]
    assert (counts["trainable"] == 0) == (method == "head-only")  # on T5 it has no head to train


@pytest.mark.parametrize("options", [["init=text", "init_text=a great movie"], ["init=vocab"], ["init=uniform"]])
def test_every_prompt_init_counts_offline(no_hub, capsys, options):
    argv = [part for option in options for part in ("--option", option)]
    assert main(["params", "--method", "pt", "--model", "t5-base", *argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trainable"] == 100 * 768


@pytest.mark.parametrize("argv,message", [
    (["--method", "pt", "--option", "init=text"], "init 'text' needs init_text (method option init_text=...)"),
    (["--method", "pt", "--option", "init=checkpoint", "--option", "init_checkpoint=/nonexistent.safetensors"],
     "prompt file '/nonexistent.safetensors' does not exist"),
    (["--method", "spot-t", "--option", "init=text"], "unknown option 'init' for SpotTConfig; valid: prompt_length"),
    (["--method", "attempt-m", "--num-tasks", "0"], "argument --num-tasks: takes a positive integer, not '0'"),
    (["--method", "pt", "--num-tasks", "two"], "argument --num-tasks: takes a positive integer, not 'two'"),
])
def test_params_bad_options_are_one_line(no_hub, capsys, argv, message):
    assert main(["params", *argv, "--model", "t5-base"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: ") and err.count("\n") == 1 and message in err
