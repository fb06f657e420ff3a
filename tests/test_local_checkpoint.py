"""A local T5 checkpoint folder (`--model PATH`) with the real T5 SentencePiece tokenizer."""
from __future__ import annotations

import json

import pytest
import sentencepiece
import torch
from transformers import T5ForConditionalGeneration

from bench.cli import main
from helpers import result_file


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, shared_data):
    """A small random T5 with T5's real 32,128-row vocabulary, saved as `save_pretrained` writes it."""
    from transformers import T5Config

    from bench.backbones.catalog import load_tokenizer

    folder = tmp_path_factory.mktemp("t5-local")
    torch.manual_seed(0)
    config = T5Config(vocab_size=32128, d_model=16, d_ff=32, d_kv=8, num_heads=2, num_layers=1,
                      num_decoder_layers=1, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    load_tokenizer(str(shared_data / "t5" / "spiece.model")).save_pretrained(folder)
    return folder


def test_run_with_a_local_checkpoint_and_sentencepiece(checkpoint, tmp_path, capsys, shared_data):
    assert main(["run", "--method", "pt", "--tasks", "cb", "--model", str(checkpoint), "--fixtures", "--epochs", "1",
                 "--batch-size", "8", "--max-train-examples", "8", "--max-eval-examples", "4", "--seeds", "0",
                 "--option", "prompt_length=4", "--quiet", "--output", str(tmp_path)]) == 0
    result = json.loads(result_file(tmp_path, "pt", "cb").read_text())
    assert result["run"]["backbone"] == str(checkpoint)
    assert result["params"]["trainable"] == 4 * 16
    model = T5ForConditionalGeneration.from_pretrained(checkpoint)
    assert result["params"]["backbone"] == sum(p.numel() for p in model.parameters())  # tied embedding once
    # SentencePiece writes "0" as two pieces ("▁", "0") and "1", "2" as one: the budget is the longest
    # gold target of each split (+ EOS) plus the margin of 5
    sp = sentencepiece.SentencePieceProcessor(model_file=str(shared_data / "t5" / "spiece.model"))
    expected = {split: max(len(sp.encode(e["target"])) for e in examples(split)) + 1 + 5 for split in ("validation", "test")}
    assert result["data"]["cb"]["max_new_tokens"] == expected


def examples(split: str) -> list[dict]:
    """The first 4 examples of a CB fixture split, as the run above saw them."""
    from bench.core.presets import PRESETS
    from tasks.loading import DataSource, load_examples
    from tasks.registry import TASKS

    return [{"target": e.target} for e in load_examples(TASKS.get("cb"), split, DataSource("fixtures"), PRESETS.get("paper"))[:4]]


def test_params_and_stats_read_the_local_folder(checkpoint, capsys):
    assert main(["params", "--method", "pt", "--model", str(checkpoint), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trainable"] == 100 * 16
    assert main(["data", "stats", "--tasks", "cb", "--fixtures", "--model", str(checkpoint), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["n"] for r in rows] == [32, 12, 12] and rows[0]["target_tokens"]["max"] == 3
