"""Two-tower pair encoding (`--train pair_encoding`): each text of a pair task encoded alone with
the method's prompt, pooled, and combined as sentence encoders are trained; checked by hand and
against the frozen model run directly."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from bench.backbones.catalog import resolve_pair_encoding, sentence_encoder
from bench.backbones.model import CosineHead, PairHead
from bench.cli import build_parser, main, resolve_grid
from bench.core.config import RunConfig
from bench.core.registry import UsageError
from bench.pipeline.data import Collator, Encoded, encode
from helpers import result_file
from tasks.base import Example
from tasks.registry import TASKS


def test_pair_head_reads_u_v_their_distance_and_product():
    head = PairHead(2, 1, torch.Generator().manual_seed(0))
    with torch.no_grad():
        head.linear.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]]))
        head.linear.bias.fill_(0.5)
    u, v = torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0, 1.0]])
    # features (1, -2, 3, 1, |1 - 3| = 2, |-2 - 1| = 3, 1 * 3 = 3, -2 * 1 = -2)
    expected = 1 * 1 + 2 * -2 + 3 * 3 + 4 * 1 + 5 * 2 + 6 * 3 + 7 * 3 + 8 * -2 + 0.5
    assert head(u, v).item() == pytest.approx(expected)


def test_cosine_head_starts_at_the_top_target_times_the_cosine():
    """Standardised targets of mean 2.5 and std 1.25 on a 0-5 scale: the head's raw prediction,
    `pred * std + mean`, starts at 5 · cos(u, v), and its weight and bias train."""
    head = CosineHead(2.5, 1.25, 5.0)
    u, v = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    raw = head(u, v).squeeze(-1) * 1.25 + 2.5
    assert raw.tolist() == pytest.approx([5 / math.sqrt(2), 5.0])
    assert sorted(name for name, _ in head.named_parameters()) == ["bias", "weight"]


def test_the_collator_puts_second_texts_in_rows_of_their_own():
    batch = Collator(0, scalar_labels=True)([Encoded([1, 2], [1.0], 0, [7, 8, 9]), Encoded([3], [0.0], 1),
                                             Encoded([4, 5], [2.0], 0, [6])])
    assert batch["input_ids"].tolist() == [[1, 2, 0], [3, 0, 0], [4, 5, 0], [7, 8, 9], [6, 0, 0]]
    assert batch["task_ids"].tolist() == [0, 1, 0, 0, 0]  # a row's task: its example's
    assert batch["pairs"].tolist() == [[0, 3], [1, -1], [2, 4]]
    assert batch["labels"].tolist() == [1.0, 0.0, 2.0]  # one per example
    assert "pairs" not in Collator(0, scalar_labels=True)([Encoded([1], [1.0], 0)])


def test_encode_tokenises_each_text_alone(minilm):
    examples = [Example("rte sentence1: A cat sat. sentence2: A cat is sitting.", "0", "rte",
                        pair=("A cat sat.", "A cat is sitting."))]
    towers = encode(examples, minilm.tokenizer, 64, 4, 0, label_of=lambda e: 0.0, two_tower=True)
    joint = encode(examples, minilm.tokenizer, 64, 4, 0, label_of=lambda e: 0.0)
    assert towers[0].input_ids == minilm.tokenizer("A cat sat.").input_ids
    assert towers[0].pair_ids == minilm.tokenizer("A cat is sitting.").input_ids
    assert joint[0].input_ids == minilm.tokenizer(examples[0].source).input_ids and joint[0].pair_ids is None


def test_pair_tasks_and_their_texts(shared_data):
    from bench.core.presets import PRESETS
    from tasks.loading import DataSource, load_examples

    assert TASKS.get("rte").pair_fields == ("sentence1", "sentence2") and TASKS.get("cb").pair_fields == (
        "premise", "hypothesis")
    assert TASKS.get("sst2").pair_fields is None and TASKS.get("boolq").pair_fields is None
    [first] = load_examples(TASKS.get("rte"), "train", DataSource("dir", str(shared_data)), PRESETS.get("paper"), 42)[:1]
    assert first.source == f"rte sentence1: {first.pair[0]} sentence2: {first.pair[1]}"


def test_a_two_tower_pass_is_the_frozen_model_on_each_text_alone(minilm):
    """STS-B with a PT prompt: the prediction is the cosine head over each text's mean-pooled final
    states, the prompt after [CLS] and left out of the mean, computed here with the model itself."""
    view = minilm.for_tasks([TASKS.get("stsb")], seed=0, pooling="mean", train_targets=[["1.0", "4.0"]], two_tower=True)
    tokenizer, model = minilm.tokenizer, minilm.model
    texts = ["A man plays a guitar.", "Someone is playing an instrument."]
    prompt = torch.randn(3, minilm.d_model, generator=torch.Generator().manual_seed(1)) * 0.05

    def pooled(text: str) -> torch.Tensor:
        ids = torch.tensor([tokenizer(text).input_ids])
        embeds = model.embeddings.word_embeddings(ids)
        embeds = torch.cat([embeds[:, :1], prompt[None], embeds[:, 1:]], dim=1)
        states = model(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2])).last_hidden_state[0]
        return torch.cat([states[:1], states[4:]]).mean(0)  # [CLS] and the text's tokens, not the prompt's

    batch = Collator(tokenizer.pad_token_id, scalar_labels=True)(
        [Encoded(tokenizer(texts[0]).input_ids, [2.0], 0, tokenizer(texts[1]).input_ids)])
    with torch.no_grad():
        [prediction] = view.predict(batch["input_ids"], batch["attention_mask"], batch["task_ids"],
                                    prompt[None].expand(2, -1, -1), pairs=batch["pairs"])
        cosine = F.cosine_similarity(pooled(texts[0]), pooled(texts[1]), dim=0)
    assert float(prediction) == pytest.approx(4.0 * float(cosine), abs=1e-3)  # top target 4 times the cosine


def test_auto_is_two_tower_for_sentence_transformers_pairs_only(tmp_path):
    assert sentence_encoder("minilm") and resolve_pair_encoding("minilm", "auto", ["rte"]) == "two_tower"
    assert resolve_pair_encoding("minilm", "joint", ["rte"]) == "joint"
    # no pair task, nothing to read in two towers: joint, so such runs keep their keys
    assert resolve_pair_encoding("minilm", "auto", ["sst2"]) == "joint"
    assert resolve_pair_encoding("minilm", "two_tower", ["sst2", "boolq"]) == "joint"
    assert resolve_pair_encoding("minilm", "auto", ["sst2", "mrpc"]) == "two_tower"
    assert resolve_pair_encoding("tiny-t5", "auto", ["rte"]) == "joint"
    with pytest.raises(UsageError, match="pair_encoding=two_tower needs an encoder backbone"):
        resolve_pair_encoding("tiny-t5", "two_tower", ["rte"])
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert resolve_pair_encoding(str(bert), "auto", ["rte"]) == "joint"  # a plain BERT folder: PEFT's one segment
    (bert / "modules.json").write_text("[]")
    assert resolve_pair_encoding(str(bert), "auto", ["rte"]) == "two_tower"


def test_each_run_resolves_the_setting_for_its_own_tasks(capsys):
    """The config keeps what was asked (library stages resolve it for their tasks); a run's identity
    holds what it resolved to."""
    from bench.pipeline.runner import prepare_run

    [config] = resolve_grid(build_parser().parse_args(["run", "--method", "pt", "--tasks", "cb,boolq", "--model",
                                                       "minilm", "--fixtures"]))
    assert config.train.pair_encoding == "auto"
    assert prepare_run(config, ["cb"]).identity["train"]["pair_encoding"] == "two_tower"
    assert prepare_run(config, ["boolq"]).identity["train"]["pair_encoding"] == "joint"
    assert config.train.pair_encoding == "auto"  # not overwritten by the first run
    assert main(["run", "--method", "pt", "--tasks", "rte", "--profile", "smoke", "--train", "pair_encoding=two"]) == 2
    assert "unknown pair_encoding 'two'; valid: auto, joint, two_tower" in capsys.readouterr().err
    assert main(["run", "--method", "pt", "--tasks", "rte", "--profile", "smoke", "--train",
                 "pair_encoding=two_tower"]) == 2
    assert "needs an encoder backbone" in capsys.readouterr().err


def test_a_result_made_before_the_setting_reruns_joint():
    """A results file without `pair_encoding` ran one segment: read back, it says joint; a config
    file without it gets the default, auto."""
    old = {"config": {"train": {"epochs": 1}}}
    assert RunConfig.from_dict(old).train.pair_encoding == "joint"
    assert old == {"config": {"train": {"epochs": 1}}}  # read, not rewritten (bench floors --write saves it back)
    assert RunConfig.from_dict({"train": {"epochs": 1}}).train.pair_encoding == "auto"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Head-only on the shipped STS-B fixtures, joint and two-tower, one seed each."""
    output = tmp_path_factory.mktemp("runs")
    for encoding in ("joint", "two_tower"):
        assert main(["run", "--method", "head-only", "--model", "minilm", "--tasks", "stsb", "--fixtures", "--quiet",
                     "--seeds", "0", "--epochs", "1", "--max-train-examples", "16", "--max-eval-examples", "8",
                     "--train", f"pair_encoding={encoding}", "--output", str(output),
                     "--library", str(tmp_path_factory.mktemp("library"))]) == 0
    return output


def test_joint_and_two_tower_have_different_keys_and_both_rerun(two_runs, tmp_path):
    paths = sorted(two_runs.glob("head-only/stsb/*/seed0.json"))
    assert len(paths) == 2  # two configuration folders
    results = {json.loads(p.read_text())["identity"]["train"]["pair_encoding"]: p for p in paths}
    assert set(results) == {"joint", "two_tower"}
    joint_identity = json.loads(results["joint"].read_text())["identity"]["train"]
    assert joint_identity["pair_encoding"] == "joint"  # recorded; neutral, so keyed as before the setting
    for encoding, path in results.items():
        assert main(["run", "--config", str(path), "--output", str(tmp_path / encoding), "--quiet"]) == 0
        again = result_file(tmp_path / encoding, "head-only", "stsb")
        assert again.parent.name == path.parent.name  # the same configuration
        assert json.loads(again.read_text())["test"] == json.loads(path.read_text())["test"]


def test_a_two_tower_pair_result_does_not_export_to_peft(two_runs, capsys):
    pytest.importorskip("peft")
    [path] = [p for p in two_runs.glob("head-only/stsb/*/seed0.json")
              if json.loads(p.read_text())["identity"]["train"]["pair_encoding"] == "two_tower"]
    assert main(["export", str(path), "--peft", str(path.parent / "adapter")]) == 2
    assert "reads stsb's two texts with two towers (pair_encoding=two_tower)" in capsys.readouterr().err


def test_library_stages_are_keyed_by_the_encoding_they_resolve():
    """A stage's library key holds the pair encoding resolved for its own tasks: `auto` and an
    explicit two_tower key MiniLM's MRPC prompt alike, and an SST-2 prompt (no pair) is the same
    entry whatever the asking run said; joint MRPC is another entry."""
    import copy

    from bench.pipeline.stages import stage_spec
    from methods.library import entry_key

    [config] = resolve_grid(build_parser().parse_args(["run", "--method", "pt", "--tasks", "mrpc", "--model",
                                                       "minilm", "--fixtures"]))

    def key(tasks: list[str], encoding: str) -> str:
        stage = copy.deepcopy(config)
        stage.tasks, stage.train.pair_encoding = tasks, encoding
        return entry_key(stage_spec(stage, "sentence-transformers/all-MiniLM-L6-v2", {}, False))

    assert key(["mrpc"], "auto") == key(["mrpc"], "two_tower") != key(["mrpc"], "joint")
    assert key(["sst2"], "auto") == key(["sst2"], "two_tower") == key(["sst2"], "joint")


def test_a_library_entry_says_it_was_trained_with_two_towers():
    from bench.cli import trained_origin

    spec = {"method": "pt", "k_shot": 0,
            "train": {"epochs": 12, "early_stopping_patience": 2, "epoch_cap": 1000, "pair_encoding": "two_tower"}}
    assert trained_origin(spec) == "pt, ≤12 epochs (patience 2), 1000 rows/epoch, two-tower"
    assert trained_origin({"method": "pt", "k_shot": 16, "train": {"epochs": 1}}) == "pt, 1 epoch, 16-shot"


def test_a_row_is_what_was_asked_not_what_each_task_resolved():
    """The committed v2 head-only controls asked for `auto`: MRPC, QNLI, QQP and MNLI resolved two
    towers, SST-2 one segment, and they are one leaderboard row; a run that asked for joint is
    another row."""
    from pathlib import Path

    from bench.studies.report import configuration_rows

    folder = Path(__file__).resolve().parent.parent / "leaderboards" / "minilm-sources-v2" / "head-only"
    results = [json.loads(p.read_text()) for p in sorted(folder.rglob("seed0.json"))]
    assert {r["identity"]["train"].get("pair_encoding", "joint") for r in results} == {"two_tower", "joint"}
    assert len(configuration_rows(results)) == 1
    results[0]["config"]["train"]["pair_encoding"] = "joint"
    assert len(configuration_rows(results)) == 2


def test_the_meter_counts_examples_not_encoder_rows():
    """A two-tower batch of 3 examples is 5 encoder rows: examples per second count the 3."""
    from bench.pipeline.training import Meter

    meter = Meter()
    meter.batch(Collator(0, scalar_labels=True)([Encoded([1, 2], [1.0], 0, [7, 8, 9]), Encoded([3], [0.0], 1),
                                                 Encoded([4, 5], [2.0], 0, [6])]))
    assert (meter.examples, meter.tokens, meter.padded_tokens) == (3, 9, 15)
