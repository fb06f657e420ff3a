"""`--eval-mode rank`: greedy decoding restricted to the label set, in one teacher-forced pass per
label. Checked against Hugging Face's own greedy `generate` restricted to the labels' token trie
on the same (random tiny-t5) weights, prompt and inputs, and through real runs. (Where plain
greedy decoding emits a label, restricting it changes nothing at any step, so rank answers that
label too; a random model never ends a label with EOS, so that case is argued, not run.)"""
from __future__ import annotations

import json

import pytest
import torch

from bench.backbones.catalog import T5_SPIECE, t5_tokenizer
from bench.backbones.model import Backbone, load_backbone
from bench.cli import main
from helpers import result_file


@pytest.fixture(scope="module")
def t5():
    torch.manual_seed(0)
    backbone = load_backbone("tiny-t5")
    backbone.model.eval()  # as evaluation runs it: no dropout
    return backbone


def batch_of(t5, texts: list[str]):
    encoded = t5.tokenizer(texts, return_tensors="pt", padding=True)
    prompt = torch.randn(len(texts), 4, t5.d_model, generator=torch.Generator().manual_seed(1))
    return encoded.input_ids, encoded.attention_mask, prompt


TEXTS = ["rte sentence1: A cat sat. sentence2: An animal sat.", "cb premise: It rained. hypothesis: Wet.",
         "boolq question: is it? passage: yes it is, long ago and far away", "wic word: bank", "copa"]


def constrained_greedy(t5, input_ids, mask, prompt, labels) -> list[str]:
    """Hugging Face's greedy `generate`, each step restricted to the tokens that continue some label
    (`prefix_allowed_tokens_fn` over the labels' token trie): what rank mode must answer."""
    sequences = [t5.tokenizer(label).input_ids for label in labels]
    pad = t5.tokenizer.pad_token_id

    def allowed(_, prefix):
        done = prefix.tolist()[1:]  # after the decoder's start token
        following = {seq[len(done)] for seq in sequences if seq[: len(done)] == done and len(seq) > len(done)}
        return sorted(following) or [pad]

    embeds, full_mask = t5.with_prompt(prompt, input_ids, mask)
    with torch.no_grad():
        out = t5.model.generate(inputs_embeds=embeds, attention_mask=full_mask, do_sample=False, num_beams=1,
                                max_new_tokens=max(map(len, sequences)), prefix_allowed_tokens_fn=allowed)
    return t5.tokenizer.batch_decode(out, skip_special_tokens=True)


@pytest.mark.parametrize("labels", [("0", "1", "2"), ("entailment", "not_entailment"), ("yes", "no"),
                                    ("1", "10", "100", "2"), ("True", "False"), ("unacceptable", "acceptable")])
def test_rank_is_greedy_decoding_restricted_to_the_labels(t5, labels):
    input_ids, mask, prompt = batch_of(t5, TEXTS)
    assert t5.rank(input_ids, mask, prompt, labels) == constrained_greedy(t5, input_ids, mask, prompt, labels)


@pytest.fixture(scope="module")
def real_vocab_t5():
    """A random 2-layer T5 over the real T5 vocabulary and tokenizer: SentencePiece splits "0" into
    3 pieces and "1", "2" into 2, which tiny-t5's byte tokenizer (every digit 2 ids) never shows."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    config = T5Config(vocab_size=32128, d_model=64, d_ff=128, d_kv=16, num_heads=4, num_layers=2,
                      num_decoder_layers=2, feed_forward_proj="relu", decoder_start_token_id=0, pad_token_id=0,
                      eos_token_id=1)
    backbone = Backbone(T5ForConditionalGeneration(config), t5_tokenizer(T5_SPIECE), "random-t5")
    backbone.model.eval()
    return backbone


SIXTEEN = [f"{text} ({i})" for i in range(4) for text in TEXTS[:4]]


@pytest.mark.parametrize("seed", range(10))
def test_batched_rank_equals_per_example_rank_when_labels_end_at_different_positions(real_vocab_t5, seed):
    """The reproduction: once a row's label had ended, later positions offered it no live candidate,
    argmax over all -inf answered label 0, so batched rank differed from per-example rank for 10 of
    10 prompt seeds. Batched, per example and HF's trie-constrained greedy `generate` must agree."""
    t5, labels = real_vocab_t5, ("0", "1", "2")
    assert [len(t5.tokenizer(label).input_ids) for label in labels] == [3, 2, 2]
    encoded = t5.tokenizer(SIXTEEN, return_tensors="pt", padding=True)
    prompt = torch.randn(len(SIXTEEN), 4, t5.d_model, generator=torch.Generator().manual_seed(seed)) * 5
    batched = t5.rank(encoded.input_ids, encoded.attention_mask, prompt, labels)
    alone = [t5.rank(encoded.input_ids[i:i + 1], encoded.attention_mask[i:i + 1], prompt[i:i + 1], labels)[0]
             for i in range(len(SIXTEEN))]
    assert batched == alone == constrained_greedy(t5, encoded.input_ids, encoded.attention_mask, prompt, labels)


def test_rank_always_answers_a_label(t5):
    input_ids, mask, prompt = batch_of(t5, TEXTS)
    labels = ("entailment", "not_entailment")
    generated = t5.tokenizer.batch_decode(t5.generate(input_ids, mask, prompt, max_new_tokens=6),
                                          skip_special_tokens=True)
    assert not set(generated) & set(labels)  # a random model strays: generation would be invalid
    assert set(t5.rank(input_ids, mask, prompt, labels)) <= set(labels)


def test_rank_of_one_label_by_hand(t5):
    """Two labels that differ in their first token: the one whose first token's logit is higher."""
    input_ids, mask, prompt = batch_of(t5, TEXTS[:2])
    labels = ("yes", "no")
    ids = [t5.tokenizer(label).input_ids for label in labels]
    assert ids[0][0] != ids[1][0]
    embeds, full_mask = t5.with_prompt(prompt, input_ids, mask)
    start = torch.full((2, 1), t5.model.config.decoder_start_token_id)
    with torch.no_grad():
        first = t5.model(inputs_embeds=embeds, attention_mask=full_mask, decoder_input_ids=start).logits[:, 0]
    expected = [labels[0] if row[ids[0][0]] > row[ids[1][0]] else labels[1] for row in first]
    assert t5.rank(input_ids, mask, prompt, labels) == expected


def run(tmp_path, *extra) -> dict:
    output = tmp_path / ("rank" if extra else "generate")
    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--quiet", "--epochs", "1",
                 "--output", str(output), *extra]) == 0
    return json.loads(result_file(output, "pt", "cb").read_text())


def test_a_run_in_rank_mode_predicts_labels_where_generation_strays(tmp_path):
    generated, ranked = run(tmp_path), run(tmp_path, "--eval-mode", "rank")
    # CB's fixture test split has 12 examples; tiny-t5 is random: generation never emits "0", "1" or "2"
    assert generated["test"]["cb"]["invalid"] == 12 and set(generated["predictions"]["cb"]) == {""}
    assert ranked["test"]["cb"]["invalid"] == 0 and set(ranked["predictions"]["cb"]) <= {"0", "1", "2"}
    assert ranked["config"]["train"]["eval_mode"] == "rank"
    assert ranked["run"]["configuration"] != generated["run"]["configuration"]


def test_an_unknown_eval_mode_is_one_line(tmp_path, capsys):
    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--quiet", "--train",
                 "eval_mode=beam", "--output", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "bench: error: unknown eval_mode 'beam'; valid: generate, rank\n"
