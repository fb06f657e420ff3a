"""SPoT-g and SPoT-t: similarity math against an independent computation on hand-made prompts,
initialisation from the chosen sources, parameter counts, and end-to-end smoke runs that reuse
the library."""
from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from bench.cli import main
from methods.base import MethodContext
from methods.registry import METHODS
from methods.spot import select_sources
from methods.spot.model import mean_similarity, token_similarity
from helpers import result_file

# Task embedding E and three sources (m = 2, d = 2). By the mean-pooled cosine X is closest;
# by the mean of the token-pair cosines Y is: the two definitions rank them differently.
E = [[1.0, 0.0], [0.0, 1.0]]
X = [[3.0, 3.0], [-1.0, 0.0]]
Y = [[1.0, 0.2], [1.0, 0.2]]
Z = [[-1.0, -2.0], [-2.0, -1.0]]


def cosine(u, v):
    return sum(a * b for a, b in zip(u, v)) / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v))


def oracle_mean(a, b):
    mean = lambda rows: [sum(col) / len(rows) for col in zip(*rows)]  # noqa: E731
    return cosine(mean(a), mean(b))


def oracle_tokens(a, b):
    return sum(cosine(u, v) for u in a for v in b) / (len(a) * len(b))


def tensors(**prompts):
    return {name: torch.tensor(rows) for name, rows in prompts.items()}


@pytest.mark.parametrize("source", [X, Y, Z, E])
def test_similarities_match_an_independent_computation(source):
    a, b = torch.tensor(source), torch.tensor(E)
    assert mean_similarity(a, b) == pytest.approx(oracle_mean(source, E), abs=1e-6)  # float32 inputs
    assert token_similarity(a, b) == pytest.approx(oracle_tokens(source, E), abs=1e-6)  # float32 inputs


def test_known_values_and_the_definitions_disagree():
    assert mean_similarity(torch.tensor(E) * 2, torch.tensor(E)) == pytest.approx(1.0)
    assert token_similarity(torch.tensor(E), torch.tensor(E)) == pytest.approx(0.5)  # (1 + 0 + 0 + 1) / 4
    assert token_similarity(torch.tensor(Y), torch.tensor(Y)) == pytest.approx(1.0)  # parallel rows
    assert mean_similarity(torch.tensor(Z), torch.tensor(E)) == pytest.approx(-1.0)
    sources = tensors(x=X, y=Y, z=Z)
    by_mean = select_sources(torch.tensor(E), sources, "mean")
    by_tokens = select_sources(torch.tensor(E), sources, "tokens")
    assert list(by_mean.weights) == ["x"] and list(by_tokens.weights) == ["y"]
    # both definitions are reported whichever ranks
    assert by_mean.similarities == by_tokens.similarities
    assert by_mean.similarities["mean"] == pytest.approx({n: oracle_mean(p, E) for n, p in zip("xyz", (X, Y, Z))})
    assert by_mean.similarities["tokens"] == pytest.approx({n: oracle_tokens(p, E) for n, p in zip("xyz", (X, Y, Z))})


def test_top1_initial_prompt_is_exactly_the_chosen_source():
    sources = {name: torch.randn(5, 8, generator=torch.Generator().manual_seed(i)) for i, name in enumerate("abcd")}
    embedding = sources["c"] + 0.01 * torch.randn(5, 8, generator=torch.Generator().manual_seed(9))
    for similarity in ("mean", "tokens"):
        selection = select_sources(embedding, sources, similarity)
        assert selection.weights == {"c": 1.0}
        assert torch.equal(selection.prompt, sources["c"]) and selection.prompt.data_ptr() != sources["c"].data_ptr()


@pytest.mark.parametrize("weighting", ["softmax", "normalised"])
def test_top_k_weighted_average(weighting):
    sources = tensors(x=X, y=Y, z=Z)
    selection = select_sources(torch.tensor(E), sources, "tokens", top_k=2, weighting=weighting)
    s = {n: oracle_tokens(p, E) for n, p in zip("xyz", (X, Y, Z))}
    assert list(selection.weights) == ["y", "x"]  # best first
    if weighting == "softmax":
        total = math.exp(s["y"]) + math.exp(s["x"])
        expected = {"y": math.exp(s["y"]) / total, "x": math.exp(s["x"]) / total}
    else:
        expected = {"y": s["y"] / (s["y"] + s["x"]), "x": s["x"] / (s["y"] + s["x"])}
    assert selection.weights == pytest.approx(expected)
    prompt = expected["y"] * torch.tensor(Y) + expected["x"] * torch.tensor(X)
    assert torch.allclose(selection.prompt, prompt, atol=1e-6)


def test_normalised_weights_clip_negative_similarities():
    selection = select_sources(torch.tensor(E), tensors(x=X, z=Z), "mean", top_k=2, weighting="normalised")
    assert selection.weights == {"x": 1.0, "z": 0.0}
    assert torch.equal(selection.prompt, torch.tensor(X))


class FakeStage:
    """Stands in for the runner: records each request and answers with hand-made prompts."""

    def __init__(self, prompts: dict[str, torch.Tensor], mixture: torch.Tensor | None = None):
        self.prompts, self.mixture, self.calls, self.rules = prompts, mixture, [], []

    def __call__(self, method, tasks, options, epochs=None, source=False, on_target=False, epoch_rule="task"):
        self.calls.append((method, list(tasks), options, epochs, source, on_target))
        self.rules.append(epoch_rule)
        prompt = self.prompts[tasks[0]] if len(tasks) == 1 else self.mixture
        return {"prompt": prompt}


def build(method, stage, options, task="cb"):
    spec = METHODS.get(method)
    context = MethodContext(d_model=2, embedding=None, tokenizer=None, task_names=[task], stage=stage)
    return spec.build(spec.make_config(options), context)


def test_spot_t_starts_from_the_best_source_and_reports_every_similarity():
    stage = FakeStage(tensors(cb=E, mnli=X, qnli=Y, sst2=Z))
    method = build("spot-t", stage, {"prompt_length": 2, "sources": "mnli,qnli,sst2", "embedding_epochs": 20})
    assert torch.equal(method.prompt.detach(), torch.tensor(X))
    # the task embedding: a PT stage on the target's own data (few-shot draw included)
    assert stage.calls[0] == ("pt", ["cb"], {"prompt_length": 2}, 20, False, True)
    assert stage.calls[1:] == [("pt", [t], {"prompt_length": 2}, None, True, False) for t in ("mnli", "qnli", "sst2")]
    assert stage.rules == ["task-embedding", "task", "task", "task"]
    report = method.report()
    json.dumps(report)
    assert report["chosen"] == ["mnli"] and report["weights"] == {"mnli": 1.0} and report["ranked_by"] == "mean"
    assert report["similarities"]["mean"] == pytest.approx({"mnli": oracle_mean(X, E), "qnli": oracle_mean(Y, E),
                                                            "sst2": oracle_mean(Z, E)})
    assert set(report["similarities"]["tokens"]) == {"mnli", "qnli", "sst2"}
    tokens = build("spot-t", FakeStage(stage.prompts), {"prompt_length": 2, "sources": "mnli,qnli,sst2",
                                                         "similarity": "tokens"})
    assert torch.equal(tokens.prompt.detach(), torch.tensor(Y)) and tokens.report()["chosen"] == ["qnli"]


def test_spot_g_starts_from_the_mixture_prompt():
    mixture = torch.tensor(X)
    stage = FakeStage({}, mixture)
    method = build("spot", stage, {"prompt_length": 2})
    assert stage.calls == [("pt", ["mnli", "qnli", "qqp", "sst2"], {"prompt_length": 2}, None, False, False)]
    assert torch.equal(method.prompt.detach(), mixture) and method.prompt.data_ptr() != mixture.data_ptr()
    assert method.report() == {"mixture": ["mnli", "qnli", "qqp", "sst2"]}
    assert [g.name for g in method.param_groups()] == ["prompt"] and method.param_groups()[0].lr == 0.3


def test_default_sources_are_the_source_suite():
    from tasks.registry import SUITES

    assert METHODS.get("spot-t").make_config().source_tasks == list(SUITES.get("source"))
    assert METHODS.get("spot-g").make_config().source_tasks == ["mnli", "qnli", "qqp", "sst2"]


@pytest.mark.parametrize("method", ["spot-g", "spot-t"])
def test_search_space_is_pts(method):
    import optuna

    assert METHODS.get(method).cls.search_space(optuna.trial.FixedTrial({"lr": 0.1})) == {"lr": 0.1}


@pytest.mark.parametrize("method", ["spot-g", "spot", "spot-t"])
@pytest.mark.parametrize("model,expected", [("t5-base", 76_800), ("t5-small", 51_200)])
def test_params_as_pt(capsys, method, model, expected):
    assert main(["params", "--method", method, "--model", model, "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["trainable"] == counts["per_task"] == counts["param_per_task"] == expected
    assert counts["shared"] == counts["frozen_extra"] == 0


@pytest.mark.parametrize("option,message", [
    ("similarity=cosine", "unknown similarity 'cosine'; valid: mean, tokens"),
    ("weighting=linear", "unknown weighting 'linear'"),
    ("top_k=7", "top_k 7 must lie between 1 and the 6 source tasks"),
    ("sources=mnli,qnlii", "unknown task 'qnlii' (did you mean 'qnli'?)"),
    ("sources=,", "SPoT needs at least one source task"),
])
def test_bad_options_are_one_line_exit_2(capsys, option, message):
    assert main(["run", "--method", "spot-t", "--tasks", "cb", "--profile", "smoke", "--option", option]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Both variants on CB with the default sources, into a fresh library."""
    output, library = tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("library")
    for method in ("spot-g", "spot-t"):
        assert main(["run", "--method", method, "--suite", "superglue", "--tasks", "cb", "--profile", "smoke",
                     "--quiet", "--output", str(output), "--library", str(library)]) == 0
    return output, library


def test_smoke_results_record_the_transfer(smoke):
    output, _ = smoke
    spot_t = json.loads(result_file(output, "spot-t", "cb").read_text())
    report = spot_t["method_report"]
    sources = ["mnli", "qnli", "qqp", "sst2", "squad", "record"]
    assert set(report["similarities"]) == {"mean", "tokens"}
    assert all(list(report["similarities"][d]) == sources for d in ("mean", "tokens"))
    mean = report["similarities"]["mean"]
    assert report["chosen"] == [max(sources, key=mean.get)] and list(report["weights"].values()) == [1.0]
    assert spot_t["params"]["trainable"] == 640 and spot_t["method_config"]["similarity"] == "mean"
    spot_g = json.loads(result_file(output, "spot-g", "cb").read_text())
    assert spot_g["method_report"] == {"mixture": ["mnli", "qnli", "qqp", "sst2"]}
    assert spot_g["params"]["trainable"] == 640


def test_smoke_library_holds_each_stage_once(smoke):
    _, library = smoke
    specs = [json.loads(p.read_text())["spec"] for p in library.glob("*/entry.json")]
    assert sorted("+".join(s["tasks"]) for s in specs) == sorted(
        ["mnli+qnli+qqp+sst2", "cb", "mnli", "qnli", "qqp", "sst2", "squad", "record"])
    epochs = {"+".join(s["tasks"]): s["train"]["epochs"] for s in specs}
    # source stages: the source schedule (1 epoch under smoke); SPoT-t's task embedding on CB: the target's (2)
    assert {s["method"] for s in specs} == {"pt"} and epochs.pop("cb") == 2 and set(epochs.values()) == {1}
    assert len({s["seed"] for s in specs}) == len(specs)  # each stage its own seed


@pytest.mark.parametrize("method", ["spot-g", "spot-t"])
def test_second_run_reuses_the_library(smoke, tmp_path, monkeypatch, method):
    output, library = smoke
    entries = sorted(p.parent.name for p in library.glob("*/entry.json"))
    real_train_one = __import__("bench.pipeline.runner", fromlist=["train_one"]).train_one
    trained = []

    def counting_train_one(config, *args, **kwargs):
        trained.append(config.method)
        return real_train_one(config, *args, **kwargs)

    monkeypatch.setattr("bench.pipeline.runner.train_one", counting_train_one)
    assert main(["run", "--method", method, "--tasks", "cb", "--profile", "smoke", "--quiet",
                 "--output", str(tmp_path), "--library", str(library)]) == 0
    assert trained == []  # no stage trained again
    assert sorted(p.parent.name for p in library.glob("*/entry.json")) == entries
    again = json.loads(result_file(tmp_path, method, "cb").read_text())
    first = json.loads(result_file(output, method, "cb").read_text())
    assert again["method_report"] == first["method_report"] and again["test"] == first["test"]
    # the first run trained its stages before its own training, the second found them: training
    # restarts from the seed after the stages, so both trained the same prompt
    trained_again = load_file(str(result_file(tmp_path, method, "cb", "seed0.safetensors")))["prompt"]
    trained_first = load_file(str(result_file(output, method, "cb", "seed0.safetensors")))["prompt"]
    assert torch.equal(trained_again, trained_first)


def test_an_unknown_epoch_rule_is_one_line(tmp_path, capsys):
    from bench.cli import main

    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--quiet", "--train",
                 "epoch_rule=long", "--output", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "bench: error: unknown epoch_rule 'long'; valid: task, task-embedding\n"


def test_spot_t_task_embedding_trains_on_attempts_schedule_unless_the_run_sets_epochs(tmp_path):
    """methods.md: ATTEMPT trained the task embedding 20 epochs under 10k training examples and 5
    above (the target's own schedule would give 10 there); explicit --epochs win."""
    from bench.cli import main
    from bench.pipeline.runner import default_epochs
    from methods.library import PromptLibrary
    from tasks.registry import TASKS

    mnli, cb = TASKS.get("mnli"), TASKS.get("cb")
    assert (default_epochs("task-embedding", mnli, 392_702), default_epochs("task", mnli, 392_702)) == (5, 10)
    assert (default_epochs("task-embedding", cb, 10_000), default_epochs("task-embedding", cb, 9_999)) == (5, 20)
    library = tmp_path / "library"
    for epochs in ("0", "2"):
        assert main(["run", "--method", "spot-t", "--tasks", "cb", "--profile", "smoke", "--quiet", "--epochs", epochs,
                     "--option", "sources=mnli", "--output", str(tmp_path / epochs), "--library", str(library)]) == 0
    stages = [entry for entry in PromptLibrary(library).entries() if entry["spec"]["tasks"] == ["cb"]]
    schedules = sorted((json.loads(open(e["results"]).read())["schedule"]["epochs_run"],
                        e["spec"]["train"].get("epoch_rule", "task")) for e in stages)
    assert schedules == [(2, "task"), (20, "task-embedding")]  # CB's fixture: 32 training examples
