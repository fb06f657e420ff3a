"""Prompt injection equals PEFT's prompt tuning on the same tiny T5 and prompt values."""
from __future__ import annotations

import copy

import pytest
import torch

peft = pytest.importorskip("peft")

from bench.backbone import load_backbone  # noqa: E402
from bench.data import Collator, encode  # noqa: E402
from bench.runner import PromptedModel  # noqa: E402
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
    mine = ours.generate(batch, max_new_tokens=6)
    their = theirs.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            max_new_tokens=6, do_sample=False, num_beams=1)
    assert mine.tolist() == their.tolist()
