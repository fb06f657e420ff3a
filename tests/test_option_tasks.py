"""A method option (default ones included) naming tasks the backbone cannot run is refused before
any stage trains, in one line naming the option, the tasks and what to pass instead."""
from __future__ import annotations

import time

import pytest

from bench.cli import build_parser, main, resolve_grid

ENCODER_CANNOT = "which minilm cannot run (an encoder classifies with a head and cannot generate)"


def refused(capsys, tmp_path, *argv) -> str:
    """Runs `bench run ...` on MiniLM; asserts exit 2, one line, nothing trained; returns the line."""
    library = tmp_path / "library"
    started = time.perf_counter()
    assert main(["run", "--model", "minilm", "--profile", "cpu", "--quiet", "--output", str(tmp_path / "runs"),
                 "--library", str(library), *argv]) == 2
    assert time.perf_counter() - started < 10
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bench: error: ")
    assert not (library.exists() and any(library.iterdir())) and not (tmp_path / "runs").exists()
    return err.removeprefix("bench: error: ").strip()


def test_attempts_default_sources_on_superglue(capsys, tmp_path):
    """The README's main job on an encoder: refused at once, where it used to train four source
    prompts and then fail on SQuAD."""
    line = refused(capsys, tmp_path, "--method", "attempt", "--suite", "superglue")
    assert line == (f"attempt's option sources (default: mnli,qnli,qqp,sst2,squad,record) names squad, record, "
                    f"{ENCODER_CANNOT}: pass --option sources=mnli,qnli,qqp,sst2, or the shipped set's tasks: "
                    f"--sources shipped --option sources=mnli,mrpc,qnli,qqp,sst2 (minilm-cpu-v2)")


def test_the_shipped_alternative_leaves_the_target_out(capsys, tmp_path):
    line = refused(capsys, tmp_path, "--method", "spot-t", "--tasks", "rte", "--option", "sources=qnli,squad")
    assert line == (f"spot-t's option sources=qnli,squad names squad, {ENCODER_CANNOT}: pass --option sources=qnli, "
                    f"or the shipped set's tasks: --sources shipped --option sources=mnli,mrpc,qnli,qqp,sst2 (minilm-cpu-v2)")


def test_methods_that_take_no_shipped_prompts_are_not_offered_them(capsys, tmp_path):
    line = refused(capsys, tmp_path, "--method", "spot-g", "--tasks", "rte", "--option", "sources=squad,record")
    assert line == (f"spot-g's option sources=squad,record names squad, record, {ENCODER_CANNOT}: pass --option "
                    f"sources=mnli,qnli,qqp,sst2")  # none of its own can run: the source suite's label-set tasks


def test_mpts_source_suite_and_attempts_init_source(capsys, tmp_path):
    mpt = refused(capsys, tmp_path, "--method", "mpt", "--tasks", "mrpc")
    assert mpt.startswith("mpt's option source_tasks (default: mnli,qnli,qqp,sst2,squad,record) names squad, record")
    start = refused(capsys, tmp_path, "--method", "attempt", "--tasks", "rte", "--option", "sources=qnli",
                    "--option", "init_source=squad")
    assert start == f"attempt's option init_source=squad names squad, {ENCODER_CANNOT}: pass --option init_source=mnli"


def test_options_that_fit_pass_and_t5_runs_any_source():
    fits = build_parser().parse_args(["run", "--method", "attempt", "--tasks", "rte", "--model", "minilm",
                                      "--option", "sources=qnli,sst2", "--option", "init_source=qnli"])
    assert resolve_grid(fits)[0].method_options["sources"] == "qnli,sst2"
    t5 = build_parser().parse_args(["run", "--method", "attempt", "--tasks", "rte", "--profile", "smoke",
                                    "--option", "sources=squad,record"])
    assert resolve_grid(t5)[0].model == "tiny-t5"  # T5 generates: SQuAD and ReCoRD prompts are fine


def test_what_each_method_names():
    from methods.registry import METHODS

    attempt = METHODS.get("attempt").make_config({"sources": "auto"})
    assert attempt.option_tasks(["rte"]) == {"sources": ["mnli"], "init_source": ["mnli"]}
    assert attempt.option_tasks(["squad"]) == {"sources": ["squad"], "init_source": ["squad"]}
    fresh = METHODS.get("attempt").make_config({"sources": "qnli,sst2", "target_init": "vocab"})
    assert fresh.option_tasks(["rte"]) == {"sources": ["qnli", "sst2"]}  # a fresh target starts from no source
    multi = METHODS.get("attempt-m").make_config({"sources": "qnli"})
    assert multi.option_tasks(["rte"])["pretrain_g"] == ["mnli", "sst2", "qqp", "qnli"]
    assert METHODS.get("mpt").make_config({"source_tasks": "qnli,mrpc"}).option_tasks(["rte"]) == {
        "source_tasks": ["qnli", "mrpc"]}
    assert METHODS.get("spot-g").make_config().option_tasks(["rte"]) == {"sources": ["mnli", "qnli", "qqp", "sst2"]}
    assert not hasattr(METHODS.get("pt").make_config(), "option_tasks")
