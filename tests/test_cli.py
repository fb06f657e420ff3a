"""The command-line contract: bad input is one line and exit 2; listings; params."""
from __future__ import annotations

import json

import pytest

from bench.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv,message", [
    (["run", "--method", "ptt", "--suite", "superglue"], "unknown method 'ptt' (did you mean 'pt'?); valid: amp, amp-maxpool, attempt"),
    (["run", "--method", "pt", "--suite", "superglu"], "unknown suite 'superglu' (did you mean 'superglue'?)"),
    (["run", "--method", "pt", "--tasks", "boolk"], "unknown task 'boolk' (did you mean 'boolq'?)"),
    (["run", "--method", "pt", "--suite", "superglue", "--preset", "papr"], "unknown preset 'papr' (did you mean 'paper'?)"),
    (["run", "--method", "pt", "--suite", "superglue", "--model", "t5-bas"], "unknown backbone 't5-bas' (did you mean 't5-base'?)"),
    (["run", "--method", "pt", "--suite", "superglue", "--profile", "smok"], "unknown profile 'smok' (did you mean 'smoke'?)"),
    (["run", "--method", "pt", "--suite", "superglue", "--set", "copa_questions=false"], "unknown protocol switch 'copa_questions'"),
    (["run", "--method", "pt", "--suite", "superglue", "--option", "prompt_len=5"], "unknown option 'prompt_len' for PTConfig"),
    (["run", "--method", "pt", "--suite", "superglue", "--tasks", "rte"], "task 'rte' is not in suite 'superglue'"),
    (["data", "show", "boolq", "--split", "dev", "--fixtures"], "unknown split 'dev'; valid: train, validation, test"),
    (["params", "--method", "pt", "--model", "t5-bse", "--json"], "unknown backbone 't5-bse' (did you mean 't5-base'?)"),
    (["leaderboard", "/nonexistent/results"], "results directory '/nonexistent/results' does not exist"),
    (["run", "--method", "pt", "--suite", "superglue", "--set", "copa_question=maybe"],
     "switch copa_question takes true or false, not 'maybe'"),
    (["run", "--method", "pt", "--suite", "superglue", "--option", "prompt_length=ten"],
     "option prompt_length takes an integer, not 'ten'"),
    (["run", "--method", "pt", "--suite", "superglue", "--option", "lr=fast"], "option lr takes a number, not 'fast'"),
    (["run", "--method", "pt", "--suite", "superglue", "--train", "adam_betas=0.9"],
     "training setting adam_betas takes numbers separated by commas, not '0.9'"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("bench: error: ")
    assert message in err
    assert "Traceback" not in err


def test_hub_unreachable_names_the_id_and_the_offline_alternatives(capsys):
    code, _, err = run_cli(capsys, "data", "show", "boolq", "--split", "train", "--json")
    assert code == 2
    assert "aps/super_glue (boolq)" in err and "--data-dir" in err and "--profile smoke" in err


def test_backbone_unreachable_names_tiny_t5(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--method", "pt", "--tasks", "boolq", "--fixtures", "--quiet",
                           "--model", "someone/not-a-model", "--output", str(tmp_path))
    assert code == 2
    assert "'someone/not-a-model'" in err and "tiny-t5" in err


@pytest.mark.parametrize("model,expected", [("t5-base", 76_800), ("t5-small", 51_200), ("t5-large", 102_400)])
def test_params_pt(capsys, model, expected):
    code, out, _ = run_cli(capsys, "params", "--method", "pt", "--model", model, "--json")
    counts = json.loads(out)
    assert code == 0
    assert counts["trainable"] == counts["per_task"] == counts["param_per_task"] == expected
    assert counts["shared"] == counts["frozen_extra"] == 0


def test_params_backbone_counts_are_exact_without_download(capsys):
    _, out, _ = run_cli(capsys, "params", "--method", "pt", "--model", "google-t5/t5-base", "--json")
    assert json.loads(out)["backbone"] == 222_903_552


def test_tasks_and_methods_listings(capsys):
    _, out, _ = run_cli(capsys, "tasks", "--suite", "superglue", "--json")
    tasks = json.loads(out)
    assert [t["name"] for t in tasks] == ["multirc", "boolq", "wic", "wsc", "cb"]
    boolq = tasks[1]
    assert boolq["hub"]["path"] == "aps/super_glue" and boolq["split_protocol"] == "small"
    assert "superglue" in boolq["suites"] and boolq["metrics"] == ["accuracy"]
    _, out, _ = run_cli(capsys, "methods", "--json")
    assert "pt" in [m["name"] for m in json.loads(out)]


def test_data_show_json_lines_in_split_order(capsys, shared_data):
    code, out, _ = run_cli(capsys, "data", "show", "copa", "--split", "train", "--data-dir", str(shared_data),
                           "--preset", "attempt-code", "--limit", "2", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 2
    first = json.loads((shared_data / "superglue/COPA/train.jsonl").read_text().splitlines()[0])
    assert lines[0]["source"] == (f"superglue-copa premise: {first['premise']} choice1: {first['choice1']} "
                                  f"choice2: {first['choice2']}")
    assert lines[0]["target"] == str(first["label"])


def test_method_options_are_listed_with_defaults_and_meaning(capsys):
    code, out, _ = run_cli(capsys, "methods", "attempt-token", "--json")
    described = json.loads(out)
    options = {o["name"]: o for o in described["options"]}
    assert code == 0 and described["name"] == "attempt-token"
    assert options["attention"]["default"] == "token" and options["prompt_length"]["default"] == 100
    assert "d·e" in options["temperature"]["doc"]


def test_every_option_of_every_method_is_documented():
    from methods.registry import METHODS

    undocumented = {name: [o["name"] for o in spec.options() if not o["doc"]] for name, spec in METHODS.items()}
    assert {name: fields for name, fields in undocumented.items() if fields} == {}


NO_CONFIG, NO_WEIGHTS = "no config.json", "no weights (model.safetensors or pytorch_model.bin)"
NO_TOKENIZER = "no tokenizer (tokenizer.json, spiece.model or vocab.txt)"


@pytest.mark.parametrize("files,missing", [
    ((), f"{NO_CONFIG}, {NO_WEIGHTS}, {NO_TOKENIZER}"),
    (("config.json",), f"{NO_WEIGHTS}, {NO_TOKENIZER}"),
    (("config.json", "model.safetensors"), NO_TOKENIZER),
    (("model.safetensors", "tokenizer.json"), NO_CONFIG),
])
@pytest.mark.parametrize("command", [
    ["run", "--fixtures", "--quiet", "--tasks", "cb", "--output", "{tmp}/out"],
    ["data", "stats", "--fixtures", "--tasks", "cb"],
    ["params", "--method", "pt"],
])
def test_a_folder_that_is_not_a_checkpoint_says_what_it_lacks(capsys, tmp_path, files, missing, command):
    folder = tmp_path / "my-t5"
    folder.mkdir()
    for name in files:
        (folder / name).write_text("{}")
    code, _, err = run_cli(capsys, *[part.format(tmp=tmp_path) for part in command], "--model", str(folder))
    assert code == 2
    assert err == f"bench: error: --model folder {str(folder)!r} is not a checkpoint: it has {missing}\n"


def test_tasks_table_has_a_header_and_says_why_a_task_is_in_no_suite(capsys):
    from tasks.registry import OUTSIDE_SUITES, TASKS, suites_of

    code, out, _ = run_cli(capsys, "tasks")
    lines = out.splitlines()
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    assert code == 0 and cells[0] == ["task", "prefix", "suites", "split", "metrics", "pair (two towers)"]
    rows = {row[0]: row for row in cells[2:]}
    assert len(rows) == 27 and list(rows) == TASKS.names()
    assert rows["copa"] == ["copa", "superglue-copa", "–", "small", "accuracy", "–"]
    assert rows["boolq"][2] == "superglue,amp,fewshot" and rows["boolq"][5] == "–"
    assert rows["rte"][5] == "sentence1 + sentence2" and rows["cb"][5] == "premise + hypothesis"
    assert {name for name, row in rows.items() if row[5] != "–"} == {
        "mnli", "qqp", "qnli", "stsb", "mrpc", "rte", "cb", "scitail", "paws"}
    assert lines[-1] == ("copa: in no suite: no paper reports it; kept for the presets' format comparison "
                         "(switch copa_question)")
    assert {name for name in TASKS.names() if not suites_of(name)} == set(OUTSIDE_SUITES) == {"copa"}


def test_tasks_json_notes_only_the_task_in_no_suite(capsys):
    _, out, _ = run_cli(capsys, "tasks", "--json")
    described = json.loads(out)
    assert len(described) == 27
    assert {d["name"]: d["note"] for d in described if "note" in d} == {
        "copa": "in no suite: no paper reports it; kept for the presets' format comparison (switch copa_question)"}
    assert set(described[0]) == {"name", "prefix", "suites", "hub", "official_files", "split_protocol", "labels",
                                 "metrics", "max_source_length", "pair"}
    assert described[0]["name"] == "mnli" and described[0]["pair"] == ["premise", "hypothesis"]


def test_a_checkpoint_folder_that_fails_to_load_is_blamed_not_the_hub(capsys, tmp_path):
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (tmp_path / name).write_text("{}")
    code, _, err = run_cli(capsys, "params", "--method", "pt", "--model", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "Hub" not in err
    assert err.startswith(f"bench: error: cannot load checkpoint folder {str(tmp_path)!r} (ValueError: Unrecognized model")


def test_typed_settings_reach_the_config():
    from bench.cli import build_parser, resolve_run_config

    args = build_parser().parse_args(["run", "--method", "attempt", "--suite", "superglue", "--profile", "smoke",
                                      "--train", "adam_betas=0.8,0.99", "--train", "grad_accum=2",
                                      "--set", "attempt_weight_decay=none", "--set", "copa_question=off",
                                      "--option", "pretrain_g=true", "--option", "g_lr=0.05"])
    config = resolve_run_config(args)
    assert config.train.adam_betas == (0.8, 0.99) and config.train.grad_accum == 2
    assert config.protocol.attempt_weight_decay is None and config.protocol.copa_question is False
    from methods.registry import METHODS

    method_config = METHODS.get("attempt").make_config(config.method_options)
    assert method_config.pretrain_g is True and method_config.g_lr == 0.05 and method_config.prompt_length == 10
