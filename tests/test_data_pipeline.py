"""Few-shot draws, the tokenisation cache, data prepare/stats and bad-data errors."""
from __future__ import annotations

import json
import pytest
import torch

from bench.backbone import load_tokenizer
from bench.cli import main
from bench.data import Collator, cache_root, encode, training_plan
from bench.presets import PRESETS
from methods.base import Mixing
from tasks.base import Example
from tasks.loading import DataSource, load_examples
from tasks.registry import TASKS
from helpers import result_file

PAPER = PRESETS.get("paper")


def test_k_shot_draws_are_seeded_subsets_of_train():
    task, source = TASKS.get("cb"), DataSource("fixtures")
    full = load_examples(task, "train", source, PAPER)
    first = load_examples(task, "train", source, PAPER, k_shot=4, shot_seed=42)
    again = load_examples(task, "train", source, PAPER, k_shot=4, shot_seed=42)
    other = load_examples(task, "train", source, PAPER, k_shot=4, shot_seed=43)
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(42))[:4].tolist()
    assert first == again == [full[i] for i in order]
    assert other != first and len(other) == 4
    assert load_examples(task, "validation", source, PAPER, k_shot=4, shot_seed=42) == load_examples(task, "validation", source, PAPER)


def test_k_shot_larger_than_train_is_a_usage_error(capsys, tmp_path):
    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--k-shot", "500", "--quiet",
                 "--output", str(tmp_path)]) == 2
    assert "--k-shot 500 exceeds the 32 training rows available" in capsys.readouterr().err


def test_few_shot_runs_every_draw_and_seed(tmp_path):
    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--k-shot", "4", "--k-shot-draws", "2",
                 "--seeds", "0,1", "--epochs", "1", "--quiet", "--output", str(tmp_path)]) == 0
    names = sorted(p.relative_to(tmp_path / "pt" / "cb").parts[1] for p in (tmp_path / "pt" / "cb").glob("*/*.json"))
    assert names == ["k4-draw0-seed0.json", "k4-draw0-seed1.json", "k4-draw1-seed0.json", "k4-draw1-seed1.json"]
    result = json.loads(result_file(tmp_path, "pt", "cb", "k4-draw1-seed0.json").read_text())
    assert result["data"]["cb"]["sizes"]["train"] == 4 and result["run"]["draw"] == 1
    # one configuration for all draws: its identity holds the full train split, not a draw
    assert result["identity"]["data"]["cb"]["fingerprints"]["train"] != result["data"]["cb"]["fingerprints"]["train"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in (tmp_path / "leaderboard.md").read_text().splitlines()
            if line.startswith("| pt ")]
    assert [row[:5] for row in rows] == [["pt", "k=4", "paper", "tiny-t5 (smoke)", "4"]]


def test_tokenisation_cache_reuses_ids_and_keys_on_content(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    tokenizer = load_tokenizer("tiny-t5")
    examples = [Example("cb premise: a hypothesis: b", "0", "cb"), Example("cb premise: c", "2", "cb")]
    first = encode(examples, tokenizer, 16, 4, 3)
    files = list(cache_root().glob("*.npz"))
    assert len(files) == 1
    assert encode(examples, tokenizer, 16, 4, 3) == first and len(list(cache_root().glob("*.npz"))) == 1
    assert first[0].input_ids == tokenizer("cb premise: a hypothesis: b", max_length=16, truncation=True).input_ids
    assert first[0].labels == [51, 1] and first[1].task_id == 3  # "0" is byte 48 + 3 specials, then EOS
    encode(examples[:1], tokenizer, 16, 4, 3)
    assert len(list(cache_root().glob("*.npz"))) == 2
    assert not [p for p in cache_root().iterdir() if p.name.startswith(".")]  # no half-written files


def test_dynamic_padding_and_fixed_padding():
    tokenizer = load_tokenizer("tiny-t5")
    items = encode([Example("ab", "0", "t"), Example("abcd", "1", "t")], tokenizer, 32, 4, 0)
    dynamic = Collator(0)(items)
    fixed = Collator(0, pad_to=32)(items)
    assert dynamic["input_ids"].shape == (2, 5) and fixed["input_ids"].shape == (2, 32)
    assert dynamic["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]


def test_stochastic_task_sampling_batches_draw_between_2_and_kappa_tasks():
    per_task = [[Example(f"t{t}-{i}", "0", str(t)) for i in range(12)] for t in range(4)]
    plan = training_plan(per_task, 6, torch.Generator().manual_seed(0), Mixing(max_tasks_per_batch=3))
    used = [e.source for batch in plan for e in batch]
    assert sorted(used) == sorted(e.source for items in per_task for e in items)
    for batch in plan[:-2]:  # the last batches may hold one task when only one is left
        assert 2 <= len({e.task for e in batch}) <= 3


def test_mixing_cap_limits_examples_per_task():
    per_task = [[Example(f"a{i}", "0", "a") for i in range(10)], [Example(f"b{i}", "0", "b") for i in range(3)]]
    plan = training_plan(per_task, 4, torch.Generator().manual_seed(0), Mixing(cap=5))
    tasks = [e.task for batch in plan for e in batch]
    assert tasks.count("a") == 5 and tasks.count("b") == 3


def test_data_stats_counts_tokens_with_the_real_t5_tokenizer(capsys, shared_data):
    model = str(shared_data / "t5" / "spiece.model")
    assert main(["data", "stats", "--tasks", "cb", "--data-dir", str(shared_data), "--model", model, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["split"], r["n"]) for r in rows] == [("train", 32), ("validation", 28), ("test", 28)]
    assert rows[0]["target_tokens"]["max"] == 3  # "0"/"1"/"2" -> "▁", digit, EOS
    assert rows[0]["source_tokens"]["max"] >= rows[0]["source_tokens"]["p95"] >= rows[0]["source_tokens"]["p50"]


def test_data_prepare_fills_the_cache(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    assert main(["data", "prepare", "--tasks", "cb,rte", "--fixtures", "--model", "tiny-t5"]) == 0
    out = capsys.readouterr().out
    assert "cb: 32 train / 12 dev / 12 test, tokenised" in out
    assert len(list((tmp_path / "tokens").glob("*.npz"))) == 6


def test_unreadable_record_stops_with_one_line(capsys, tmp_path):
    folder = tmp_path / "superglue" / "WiC"
    folder.mkdir(parents=True)
    valid = {"word": "w", "sentence1": "a w", "sentence2": "b w", "start1": 2, "start2": 2, "end1": 3, "end2": 3, "label": True}
    (folder / "val.jsonl").write_text(json.dumps(valid) + "\n")
    (folder / "train.jsonl").write_text('{"word": "x"\n')
    code = main(["data", "show", "wic", "--split", "train", "--data-dir", str(tmp_path), "--json"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"{folder / 'train.jsonl'}: line 1: not valid JSON" in err


@pytest.mark.parametrize("processes,plan_length,expected", [
    (1, 5, [[0, 1, 2, 3, 4]]),
    (2, 5, [[0, 2], [1, 3]]),  # the remainder is dropped: equal step counts on every process
    (3, 2, [[0, 1], [0, 1], [0, 1]]),  # fewer batches than processes: all run them
])
def test_shard_gives_every_process_the_same_number_of_batches(processes, plan_length, expected):
    from bench.training import shard

    shares = [shard(list(range(plan_length)), processes, i) for i in range(processes)]
    assert shares == expected


def test_schedule_defaults_follow_the_papers_unless_set():
    from bench.config import TrainConfig
    from bench.runner import resolve_schedule

    assert resolve_schedule(TrainConfig(), TASKS.get("newsqa"), 74_000) == {"epochs": 5, "batch_size": 16, "grad_accum": 2}
    assert resolve_schedule(TrainConfig(), TASKS.get("cb"), 250) == {"epochs": 20, "batch_size": 32, "grad_accum": 1}
    assert resolve_schedule(TrainConfig(), TASKS.get("mnli"), 392_702) == {"epochs": 10, "batch_size": 32, "grad_accum": 1}
    assert resolve_schedule(TrainConfig(epochs=3, batch_size=8), TASKS.get("newsqa"), 10) == {
        "epochs": 3, "batch_size": 8, "grad_accum": 2}


def test_source_lengths_single_and_multi_task():
    from bench.config import RunConfig
    from bench.runner import source_length

    config = RunConfig()
    lengths = {name: (source_length(TASKS.get(name), config, False), source_length(TASKS.get(name), config, True))
               for name in ("boolq", "multirc", "record", "squad", "newsqa")}
    assert lengths == {"boolq": (256, 256), "multirc": (348, 256), "record": (256, 256), "squad": (512, 512),
                       "newsqa": (512, 512)}
    config.train.max_source_length = 100
    assert source_length(TASKS.get("multirc"), config, False) == 100
