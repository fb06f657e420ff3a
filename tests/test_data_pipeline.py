"""Few-shot draws, the tokenisation cache, data prepare/stats and bad-data errors."""
from __future__ import annotations

import json
import pytest
import torch

from bench.backbones.catalog import load_tokenizer
from bench.cli import main
from bench.core.presets import PRESETS
from bench.pipeline.data import Collator, cache_root, encode, training_plan
from methods.base import Mixing
from tasks.base import Example
from tasks.loading import DataSource, load_examples
from tasks.registry import TASKS
from helpers import board_rows, result_file

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
    rows = [row for row in board_rows((tmp_path / "leaderboard.md").read_text()) if row["method"] == "pt"]
    assert [[row[c] for c in ("method", "setting", "backbone", "runs")] for row in rows] == [
        ["pt", "k=4", "tiny-t5 (profile smoke)", "4"]]


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


@pytest.mark.parametrize("processes,plan,expected", [
    (1, [[0, 1, 2], [3, 4]], [[[0, 1, 2], [3, 4]]]),
    (2, [[0, 1, 2, 3], [4, 5, 6], [7]], [[[0, 2], [4, 6], [7]], [[1, 3], [5], [7]]]),  # a lone example: run by both
    (3, [[0, 1, 2, 3, 4, 5]], [[[0, 3]], [[1, 4]], [[2, 5]]]),
])
def test_shard_splits_every_batch_so_the_steps_are_one_process(processes, plan, expected):
    from bench.pipeline.training import shard

    shares = [shard(plan, processes, i) for i in range(processes)]
    assert shares == expected
    assert {len(share) for share in shares} == {len(plan)}  # every process takes every step


def test_schedule_defaults_follow_the_papers_unless_set():
    from bench.core.config import TrainConfig
    from bench.pipeline.runner import resolve_schedule

    assert resolve_schedule(TrainConfig(), TASKS.get("newsqa"), 74_000) == {"epochs": 5, "batch_size": 16, "grad_accum": 2}
    assert resolve_schedule(TrainConfig(), TASKS.get("cb"), 250) == {"epochs": 20, "batch_size": 32, "grad_accum": 1}
    assert resolve_schedule(TrainConfig(), TASKS.get("mnli"), 392_702) == {"epochs": 10, "batch_size": 32, "grad_accum": 1}
    assert resolve_schedule(TrainConfig(epochs=3, batch_size=8), TASKS.get("newsqa"), 10) == {
        "epochs": 3, "batch_size": 8, "grad_accum": 2}


def test_source_lengths_single_and_multi_task():
    from bench.core.config import RunConfig
    from bench.pipeline.runner import source_length

    config = RunConfig()
    lengths = {name: (source_length(TASKS.get(name), config, False), source_length(TASKS.get(name), config, True))
               for name in ("boolq", "multirc", "record", "squad", "newsqa")}
    assert lengths == {"boolq": (256, 256), "multirc": (348, 256), "record": (256, 256), "squad": (512, 512),
                       "newsqa": (512, 512)}
    config.train.max_source_length = 100
    assert source_length(TASKS.get("multirc"), config, False) == 100


def lengths_of(plan) -> list[list[int]]:
    return [[len(item.input_ids) for item in batch] for batch in plan]


def items_of_lengths(lengths: list[int]):
    from bench.pipeline.data import Encoded

    return [Encoded([7] * n, [1], 0) for n in lengths]


def test_length_grouping_batches_neighbours_in_length_in_a_seeded_order():
    # 16 lengths, batch 4, one window (50 batches): whatever the shuffle, the batches are the
    # sorted quarters; only their order is drawn, and it is the seed's
    per_task = [items_of_lengths([5, 12, 1, 9, 16, 3, 7, 14, 2, 11, 6, 15, 8, 4, 13, 10])]
    plans = [training_plan(per_task, 4, torch.Generator().manual_seed(seed), Mixing(), group_by_length=True)
             for seed in (0, 0, 1, 2)]
    assert sorted(lengths_of(plans[0])) == [[4, 3, 2, 1], [8, 7, 6, 5], [12, 11, 10, 9], [16, 15, 14, 13]]
    assert lengths_of(plans[0]) == lengths_of(plans[1])
    assert len({tuple(map(tuple, lengths_of(plan))) for plan in plans[1:]}) > 1  # other seeds, other orders
    plain = training_plan(per_task, 4, torch.Generator().manual_seed(0), Mixing())
    assert sorted(lengths_of(plain)) != sorted(lengths_of(plans[0]))


def test_length_grouping_sorts_within_windows_of_the_shuffled_epoch(monkeypatch):
    # windows of one batch: each batch keeps the plain shuffle's examples, sorted longest first
    monkeypatch.setattr("bench.pipeline.data.GROUP_SPAN", 1)
    per_task = [items_of_lengths(list(range(1, 23)))]
    plain = training_plan(per_task, 4, torch.Generator().manual_seed(3), Mixing())
    grouped = training_plan(per_task, 4, torch.Generator().manual_seed(3), Mixing(), group_by_length=True)
    assert sorted(sorted(batch, reverse=True) for batch in lengths_of(plain)) == sorted(lengths_of(grouped))
    assert all(batch == sorted(batch, reverse=True) for batch in lengths_of(grouped))


def test_a_run_with_length_grouping_pads_less_and_records_it(tmp_path):
    """CB's 32 fixture examples in batches of 4: grouped, the 8 batches are the sorted eighths,
    so the real-token fraction is computable from the lengths alone."""
    def run(*extra) -> dict:
        output = tmp_path / ("grouped" if extra else "plain")
        assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--quiet", "--epochs", "1",
                     "--batch-size", "4", "--max-eval-examples", "4", "--output", str(output), *extra]) == 0
        return json.loads(next(output.rglob("seed0.json")).read_text())

    tokenizer = load_tokenizer("tiny-t5")
    sources = [json.loads(line)["source"] for line in _shown(["data", "show", "cb", "--split", "train", "--fixtures", "--json"])]
    lengths = sorted((len(tokenizer(s, max_length=128, truncation=True).input_ids) for s in sources), reverse=True)
    eighths = [lengths[i : i + 4] for i in range(0, 32, 4)]
    expected = sum(lengths) / sum(4 * max(batch) for batch in eighths)
    grouped, plain = run("--train", "group_by_length=true"), run()
    assert grouped["timing"]["real_token_fraction"] == pytest.approx(expected, abs=1e-12)
    assert plain["timing"]["real_token_fraction"] < expected
    assert grouped["config"]["train"]["group_by_length"] is True
    assert grouped["run"]["configuration"] != plain["run"]["configuration"]  # another configuration, not a rerun


def _shown(argv: list[str]) -> list[str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue().splitlines()


def test_evaluation_runs_longest_first_and_returns_predictions_in_the_splits_order():
    from types import SimpleNamespace

    from bench.core.config import RunConfig
    from bench.core.progress import Progress
    from bench.pipeline.runner import predict

    seen = []

    def echo_lengths(batch, max_new):  # a "model" that predicts each input's real length
        seen.append(batch["input_ids"].shape[1])
        return [str(int(n)) for n in batch["attention_mask"].sum(1)]

    model = SimpleNamespace(backbone=SimpleNamespace(model=SimpleNamespace(device=torch.device("cpu"))),
                            predict=echo_lengths)
    config = RunConfig()
    config.train.eval_batch_size = 2
    lengths = [3, 9, 1, 7, 5]
    predictions = predict(model, items_of_lengths(lengths), 4, config, Collator(0), 0, Progress())
    assert predictions == ["3", "9", "1", "7", "5"]
    assert seen == [9, 5, 1]  # batches (9, 7), (5, 3), (1): each padded to its own longest
