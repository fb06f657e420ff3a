"""ATTEMPT: the math against hand-written loops, variants, training hygiene, counts,
the attention report and plot, and end-to-end smoke runs of every entry."""
from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bench.cli import main
from bench.core.presets import PRESETS, Protocol
from bench.core.registry import UsageError
from bench.studies.plots import plot_attention, plot_attention_command
from methods.base import MethodContext
from methods.library import PromptLibrary
from methods.pooling import max_pool
from methods.registry import METHODS
from helpers import result_file

D, M = 8, 3
SOURCES = ("mnli", "qnli", "qqp", "sst2", "squad", "record")
CODE = PRESETS.get("attempt-code")
PAD_IN_MAX = Protocol(maxpool_mask_padding=False)
"""attempt-code's max-pool over padding alone (its T = 2087 would flatten the weights of a d = 8 toy)."""
G_TENSORS = {"g.down.weight": torch.full((4, D), 0.5), "g.up.weight": torch.full((D, 4), -0.5),
             "g.norm.weight": torch.full((D,), 2.0), "g.norm.bias": torch.full((D,), 0.1),
             "target.weight": torch.zeros(4, M, D)}
"""What an `attempt-m` stage answers in the fake context: G with bottleneck 4, and a target prompt."""


def fake_context(tasks=("cb",), protocol=Protocol(), d=D, m=M, embedding=None, g_tensors=None, calls=None):
    """Source prompts drawn once per task name; `attempt-m` stages answer with `g_tensors`."""
    generator = torch.Generator().manual_seed(1)
    prompts = {name: torch.randn(m, d, generator=generator) for name in SOURCES}

    def stage(method, names, options, **request):
        if calls is not None:
            calls.append((method, list(names), dict(options), request.get("source", False)))
        return {"prompt": prompts[names[0]]} if method == "pt" else g_tensors

    return MethodContext(d_model=d, embedding=embedding, tokenizer=None, task_names=list(tasks), protocol=protocol,
                         stage=stage), prompts


def build(name="attempt", tasks=("cb",), protocol=Protocol(), sharpen=True, **options):
    context, prompts = fake_context(tasks, protocol)
    spec = METHODS.get(name)
    method = spec.build(spec.make_config({"prompt_length": M, "pretrain_g": False, **options}), context)
    if sharpen and method.g is not None:  # far from its near-uniform init, so the weights matter
        generator = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for p in method.g.parameters():
                p.copy_(torch.randn(p.shape, generator=generator))
    method.eval()
    return method, prompts


# -- independent computation ------------------------------------------------------
def reference(method, prompts: list[torch.Tensor], embeds: torch.Tensor, mask: list[int] | None, token: bool):
    """One example by loops: input max-pool, G, scores, softmax, mixture (target last in `prompts`)."""
    g, T = method.g, method.temperature
    n, d = embeds.shape
    rows = [i for i in range(n) if mask is None or mask[i]]
    x = [max(embeds[i, k].item() for i in rows) for k in range(d)]
    down = [sum(g.down.weight[j, k].item() * x[k] for k in range(d)) for j in range(g.down.out_features)]
    down = [v / (1 + math.exp(-v)) for v in down]
    up = [sum(g.up.weight[k, j].item() * down[j] for j in range(len(down))) for k in range(d)]
    mean = sum(up) / d
    var = sum((v - mean) ** 2 for v in up) / d
    h = [(v - mean) / math.sqrt(var + g.norm.eps) * g.norm.weight[k].item() + g.norm.bias[k].item()
         for k, v in enumerate(up)]
    m = prompts[0].shape[0]

    def softmax(scores):
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        return [e / sum(exps) for e in exps]

    if token:
        weights = [softmax([sum(P[l, k].item() * h[k] for k in range(d)) / T for P in prompts]) for l in range(m)]
    else:
        pooled = [[max(P[l, k].item() for l in range(m)) for k in range(d)] for P in prompts]
        weights = [softmax([sum(p[k] * h[k] for k in range(d)) / T for p in pooled])] * m
    target = prompts[-1] if method.target is not None else None
    out = torch.zeros(m, d, dtype=torch.float64)
    for l in range(m):
        for k in range(d):
            out[l, k] = (target[l, k].item() if target is not None else 0.0) + sum(
                weights[l][j] * P[l, k].item() for j, P in enumerate(prompts))
    return out, torch.tensor(weights, dtype=torch.float64)


def inputs(pad_spike: float = 0.0):
    """Two examples of 5 positions; the second has 2 padding positions whose embedding can spike."""
    generator = torch.Generator().manual_seed(3)
    embeds = torch.randn(2, 5, D, generator=generator)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    embeds[1, 3:] = pad_spike  # the pad token's embedding (one vector at every pad position)
    return embeds, mask


def source_list(method, prompts):
    return [prompts[name] for name in method.source_names]


@pytest.mark.parametrize("attention", ["prompt", "token"])
@pytest.mark.parametrize("protocol", [Protocol(), PAD_IN_MAX], ids=["masked", "pad-in-max"])
def test_instance_prompt_matches_loops(attention, protocol):
    method, prompts = build(attention=attention, protocol=protocol)
    embeds, mask = inputs(pad_spike=4.0)
    out = method.prompts(embeds, mask, torch.zeros(2, dtype=torch.long))
    target = method.target.weight[0].detach()
    for b in range(2):
        keep = mask[b].tolist() if protocol.maxpool_mask_padding else None
        expected, weights = reference(method, [*source_list(method, prompts), target], embeds[b], keep, attention == "token")
        torch.testing.assert_close(out[b].double(), expected, rtol=1e-5, atol=1e-5)
        got = method.attention_weights(embeds[b:b + 1], mask[b:b + 1], target[None])[0]
        torch.testing.assert_close(got.double(), weights, rtol=1e-5, atol=1e-6)


def test_padding_embedding_changes_the_result_only_when_not_masked():
    embeds, mask = inputs(pad_spike=4.0)
    ids = torch.zeros(2, dtype=torch.long)
    masked, _ = build()
    unmasked, _ = build(protocol=PAD_IN_MAX)
    a, b = masked.prompts(embeds, mask, ids), unmasked.prompts(embeds, mask, ids)
    torch.testing.assert_close(a[0], b[0])  # no padding in the first example
    assert (a[1] - b[1]).abs().max() > 1e-3
    quiet, _ = inputs(pad_spike=0.0)
    torch.testing.assert_close(masked.prompts(quiet, mask, ids)[1], a[1])  # masked: the pad value is irrelevant


def test_max_pool_excludes_masked_rows():
    rows = torch.tensor([[[1.0, -5.0], [3.0, -1.0], [9.0, 9.0]]])
    assert max_pool(rows).tolist() == [[9.0, 9.0]]
    assert max_pool(rows, torch.tensor([[1, 1, 0]])).tolist() == [[3.0, -1.0]]


@pytest.mark.parametrize("protocol,preset_t", [(Protocol(), D * math.e), (CODE, 2087.0)], ids=["paper", "attempt-code"])
def test_temperature_is_the_options_else_the_presets_else_d_times_e(protocol, preset_t):
    method, _ = build(protocol=protocol)
    assert method.temperature == pytest.approx(preset_t) and method.report()["temperature"] == pytest.approx(preset_t)
    chosen, _ = build(protocol=protocol, temperature=50.0)  # the option wins under every preset
    assert chosen.temperature == 50.0 and chosen.report()["temperature"] == 50.0
    assert build("attempt-const", protocol=protocol)[0].report()["temperature"] is None  # no G, no scores


def test_g_pretraining_gets_the_runs_temperature_option():
    """The option itself, which the stage resolves as the run does (see the attempt-code runs below)."""
    calls = []
    context, _ = fake_context(protocol=CODE, g_tensors=G_TENSORS, calls=calls)
    spec = METHODS.get("attempt")
    spec.build(spec.make_config({"prompt_length": M, "bottleneck": 4, "pretrain_g": "true", "temperature": "50"}),
               context)
    assert [c[2]["temperature"] for c in calls if c[0] == "attempt-m"] == [50.0]


# -- ablations and variants -------------------------------------------------------------
def test_no_target_mixes_sources_only_and_trains_g_only():
    method, prompts = build("attempt-no-target")
    embeds, mask = inputs()
    out = method.prompts(embeds, mask, torch.zeros(2, dtype=torch.long))
    assert method.target is None and [g.name for g in method.param_groups()] == ["attention", "attention_no_decay"]
    expected, weights = reference(method, source_list(method, prompts), embeds[0], mask[0].tolist(), False)
    assert weights.shape == (M, len(SOURCES))
    torch.testing.assert_close(out[0].double(), expected, rtol=1e-5, atol=1e-5)
    assert "target.weight" not in method.state_dict()


def test_constant_weights_average_all_prompts_and_train_the_target_only():
    method, prompts = build("attempt-const")
    embeds, mask = inputs()
    weights = method.attention_weights(embeds, mask, method.target(torch.zeros(2, dtype=torch.long)))
    assert method.g is None and weights.shape == (2, M, len(SOURCES) + 1)
    assert torch.all(weights == 1 / (len(SOURCES) + 1))
    target = method.target.weight[0].detach()
    expected = target + (torch.stack(source_list(method, prompts)).sum(0) + target) / (len(SOURCES) + 1)
    torch.testing.assert_close(method.prompts(embeds, mask, torch.zeros(2, dtype=torch.long))[0], expected)
    assert [g.name for g in method.param_groups()] == ["prompt"]


@pytest.mark.parametrize("task,source", [("cb", "mnli"), ("newsqa", "squad")])
def test_single_prompt_and_target_init_follow_the_task_kind(task, source):
    method, prompts = build("attempt-single", tasks=(task,))
    assert method.source_names == [source] and method.sources.shape == (1, M, D)
    assert torch.equal(method.target.weight[0], prompts[source])  # copy of MNLI's / SQuAD's prompt
    fresh, _ = build(tasks=(task,), target_init="normal")
    assert not torch.equal(fresh.target.weight[0], prompts[source])
    chosen, _ = build("attempt-single", tasks=(task,), init_source="qnli")  # where MNLI is not in the data
    assert chosen.source_names == ["qnli"] and torch.equal(chosen.target.weight[0], prompts["qnli"])


def test_bad_variant_options_are_usage_errors():
    with pytest.raises(UsageError, match="nothing to train"):
        METHODS.get("attempt-const").make_config({"target": "false"})
    with pytest.raises(UsageError, match="unknown attention"):
        METHODS.get("attempt").make_config({"attention": "tokens"})


def test_attempt_m_uses_each_examples_own_target_in_a_mixed_batch():
    method, prompts = build("attempt-m", tasks=("cb", "newsqa"))
    assert method.target.weight.shape == (2, M, D)
    assert torch.equal(method.target.weight[0], prompts["mnli"]) and torch.equal(method.target.weight[1], prompts["squad"])
    generator = torch.Generator().manual_seed(4)
    embeds, mask = torch.randn(4, 5, D, generator=generator), torch.ones(4, 5, dtype=torch.long)
    task_ids = torch.tensor([0, 1, 1, 0])
    out = method.prompts(embeds, mask, task_ids)
    for b, task in enumerate(task_ids.tolist()):
        own = method.target.weight[task].detach()
        expected, _ = reference(method, [*source_list(method, prompts), own], embeds[b], None, False)
        torch.testing.assert_close(out[b].double(), expected, rtol=1e-5, atol=1e-5)
    report = method.report()["attention"]
    assert report["sources"] == [*SOURCES, "target"] and set(report["targets"]) == {"cb", "newsqa"}


def test_g_pretraining_loads_the_group_matching_the_targets():
    g = G_TENSORS
    for tasks, group in [(("cb",), ["mnli", "sst2", "qqp", "qnli"]), (("newsqa",), ["squad", "record"])]:
        calls = []
        context, _ = fake_context(tasks, g_tensors=g, calls=calls)
        spec = METHODS.get("attempt-token")
        method = spec.build(spec.make_config({"prompt_length": M, "bottleneck": 4, "pretrain_g": "true"}), context)
        staged = [c for c in calls if c[0] == "attempt-m"]
        options = {"prompt_length": M, "bottleneck": 4, "temperature": 0.0, "pretrain_g": False}
        assert staged == [("attempt-m", group, options, False)]
        assert torch.equal(method.g.down.weight, g["g.down.weight"]) and torch.equal(method.g.norm.bias, g["g.norm.bias"])
        assert all(source for method_name, *_, source in calls if method_name == "pt")


# -- training hygiene -------------------------------------------------------------------
@pytest.mark.parametrize("protocol", [Protocol(), CODE], ids=["paper", "attempt-code"])
def test_only_declared_parameters_change_in_training(protocol):
    from bench.pipeline.runner import PromptedModel, cached_backbone

    backbone = cached_backbone("tiny-t5")
    context, _ = fake_context(protocol=protocol, d=backbone.d_model, m=4, embedding=backbone.embedding)
    spec = METHODS.get("attempt")
    method = spec.build(spec.make_config({"prompt_length": 4, "pretrain_g": False}), context)
    model = PromptedModel(backbone, method)
    groups = method.param_groups()
    optimizer = torch.optim.AdamW([{"params": g.params, "lr": g.lr} for g in groups])
    # CB is a SuperGLUE target: G at the paper's 0.1; the official code trained it at the prompt's 0.3
    expected = {"prompt": 0.3, "attention": 0.1, "attention_no_decay": 0.1} if protocol.g_lr_effective else {
        "prompt": 0.3, "attention": 0.3}
    assert {g.name: g.lr for g in groups} == expected
    declared = {id(p) for g in groups for p in g.params}
    assert declared == {id(p) for p in method.parameters() if p.requires_grad}
    frozen = {name: t.clone() for name, t in backbone.model.state_dict().items()}
    sources = method.sources.clone()
    before = {name: p.detach().clone() for name, p in method.named_parameters()}
    tokenizer = backbone.tokenizer
    encoded = tokenizer(["cb premise: a cat. hypothesis: an animal", "cb premise: rain"], padding=True, return_tensors="pt")
    labels = tokenizer(["entailment", "neutral"], padding=True, return_tensors="pt").input_ids
    batch = {"input_ids": encoded.input_ids, "attention_mask": encoded.attention_mask, "labels": labels,
             "task_ids": torch.zeros(2, dtype=torch.long)}
    model.train()
    for _ in range(3):
        model(batch).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(torch.equal(t, frozen[name]) for name, t in backbone.model.state_dict().items())
    assert torch.equal(method.sources, sources)
    for name, p in method.named_parameters():
        assert torch.equal(p, before[name]) != (id(p) in declared), name
    assert "g.norm.weight" in before and (id(method.g.norm.weight) in declared) == protocol.g_layernorm_trainable
    assert set(method.state_dict()) == {"target.weight", "g.down.weight", "g.up.weight", "g.norm.weight", "g.norm.bias"}


def test_g_learning_rate_is_its_own_only_when_effective():
    assert {g.name: g.lr for g in build(g_lr=0.05)[0].param_groups()} == {
        "prompt": 0.3, "attention": 0.05, "attention_no_decay": 0.05}
    assert {g.name: g.lr for g in build(g_lr=0.05, protocol=CODE)[0].param_groups()} == {"prompt": 0.3, "attention": 0.3}


@pytest.mark.parametrize("name,tasks,expected", [
    ("attempt", ("cb",), 0.1), ("attempt", ("boolq",), 0.1),  # SuperGLUE: 0.1
    ("attempt", ("rte",), 0.3), ("attempt", ("newsqa",), 0.3), ("attempt", ("winogrande",), 0.3),
    ("attempt-m", ("winogrande", "yelp", "scitail", "paws"), 0.1),  # "others" multi-task: 0.1
    ("attempt-m", ("multirc", "boolq", "wic", "wsc", "cb"), 0.1),
    ("attempt-m", ("mnli", "qqp", "qnli", "sst2", "stsb", "mrpc", "rte", "cola"), 0.3),
])
def test_g_learning_rate_follows_the_papers_table_per_suite(name, tasks, expected):
    method, _ = build(name, tasks=tasks)
    assert {g.name: g.lr for g in method.param_groups()}["attention"] == expected
    assert method.report()["g_lr"] == expected


def test_weight_decay_spares_g_layernorm_and_the_official_code_uses_none():
    method, _ = build()
    groups = {g.name: g for g in method.param_groups()}
    assert {name: g.weight_decay for name, g in groups.items()} == {"prompt": 1e-5, "attention": 1e-5,
                                                                     "attention_no_decay": 0.0}
    assert groups["attention_no_decay"].params == [method.g.norm.weight, method.g.norm.bias]
    assert groups["attention"].params == [method.g.down.weight, method.g.up.weight]
    everywhere, _ = build(protocol=Protocol(weight_decay_everywhere=True))
    assert [(g.name, g.weight_decay, len(g.params)) for g in everywhere.param_groups()] == [
        ("prompt", 1e-5, 1), ("attention", 1e-5, 4)]
    assert {g.weight_decay for g in build(protocol=CODE)[0].param_groups()} == {0.0}


def test_search_space_proposes_g_lr_first():
    class Trial:
        def __init__(self):
            self.asked = []

        def suggest_float(self, name, low, high, log=False):
            self.asked.append(name)
            return low

    trial = Trial()
    assert set(METHODS.get("attempt").cls.search_space(trial)) == {"g_lr", "lr"} and trial.asked == ["g_lr", "lr"]


# -- parameter counts ---------------------------------------------------------------------
def params(capsys, *argv):
    assert main(["params", "--model", "t5-base", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_param_counts_match_the_paper(capsys):
    single = params(capsys, "--method", "attempt")
    assert single["trainable"] == 231_936 == 76_800 + 2 * 100 * 768 + 2 * 768
    assert single["per_task"] == 231_936 and single["frozen_extra"] == 460_800
    multi = params(capsys, "--method", "attempt-m", "--num-tasks", "8")
    assert (multi["per_task"], multi["shared"], multi["param_per_task"]) == (76_800, 155_136, 96_192)
    assert multi["trainable"] == 76_800 * 8 + 155_136 and multi["frozen_extra"] == 460_800
    assert params(capsys, "--method", "attempt-no-target")["trainable"] == 155_136
    assert params(capsys, "--method", "attempt-const")["trainable"] == 76_800
    assert params(capsys, "--method", "attempt-single")["frozen_extra"] == 76_800
    counting = MethodContext(d_model=768, embedding=None, tokenizer=None, task_names=["cb"], protocol=CODE)
    spec = METHODS.get("attempt")
    assert spec.build(spec.make_config({}), counting).param_counts().trainable == 230_400  # LayerNorm frozen


# -- end to end ---------------------------------------------------------------------------
TINY_T5_WIDTH = 64
"""d of tiny-t5, the smoke profile's backbone: its paper temperature is 64·e."""
RUNS = ("attempt", "attempt-token", "attempt-m", "attempt-no-target", "attempt-const", "attempt-single")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Every entry on cb and wsc, sharing one library (source prompts and G train once)."""
    library, output = tmp_path_factory.mktemp("library"), tmp_path_factory.mktemp("runs")
    codes = {method: main(["run", "--method", method, "--suite", "superglue", "--tasks", "cb,wsc", "--profile", "smoke",
                           "--quiet", "--output", str(output), "--library", str(library)]) for method in RUNS}
    return codes, output


@pytest.mark.parametrize("method", RUNS)
def test_smoke_run_reports_attention(smoke, method):
    codes, output = smoke
    assert codes[method] == 0
    path = result_file(output, method, "cb+wsc" if method == "attempt-m" else "cb")
    attention = json.loads(path.read_text())["method_report"]["attention"]
    sources = ["mnli"] if method == "attempt-single" else list(SOURCES)
    assert attention["sources"] == sources + ([] if method == "attempt-no-target" else ["target"])
    assert set(attention["targets"]) == ({"cb", "wsc"} if method == "attempt-m" else {"cb"})
    for weights in attention["targets"].values():
        assert len(weights) == len(attention["sources"]) and sum(weights) == pytest.approx(1.0)
    checkpoint = load_file(str(path.with_suffix(".safetensors")))
    assert "sources" not in checkpoint and ("target.weight" in checkpoint) == (method != "attempt-no-target")
    temperature = json.loads(path.read_text())["method_report"]["temperature"]
    assert temperature == (None if method == "attempt-const" else pytest.approx(TINY_T5_WIDTH * math.e))


@pytest.mark.parametrize("extra,expected", [([], 2087.0), (["--option", "temperature=50"], 50.0)],
                         ids=["preset", "option"])
def test_attempt_code_runs_at_the_official_temperature_unless_the_option_says(tmp_path, extra, expected):
    assert main(["run", "--method", "attempt", "--tasks", "cb", "--profile", "smoke", "--quiet", "--epochs", "1",
                 "--preset", "attempt-code", "--option", "sources=mnli", *extra, "--output", str(tmp_path / "runs"),
                 "--library", str(tmp_path / "library")]) == 0
    result = json.loads(result_file(tmp_path / "runs", "attempt", "cb").read_text())
    assert result["method_report"]["temperature"] == expected


def test_attempt_code_pretrains_g_at_the_official_temperature_too(tmp_path):
    """ATTEMPT-m pre-trains G in a library stage (an ATTEMPT-m run on MNLI, SST-2, QQP, QNLI):
    under attempt-code, that run's softmax is at T = 2087 as well."""
    library, output = tmp_path / "library", tmp_path / "runs"
    assert main(["run", "--method", "attempt-m", "--tasks", "cb,wsc", "--profile", "smoke", "--quiet", "--epochs", "1",
                 "--preset", "attempt-code", "--option", "sources=mnli", "--output", str(output),
                 "--library", str(library)]) == 0
    assert json.loads(result_file(output, "attempt-m", "cb+wsc").read_text())["method_report"]["temperature"] == 2087.0
    [stage] = [e for e in PromptLibrary(library).entries() if e["spec"]["method"] == "attempt-m"]
    assert json.loads(Path(stage["results"]).read_text())["method_report"]["temperature"] == 2087.0


def test_attention_heatmap_is_written(smoke, tmp_path, monkeypatch):
    _, output = smoke
    paths = [result_file(output, "attempt", task) for task in ("cb", "wsc")]
    png = plot_attention(paths, tmp_path / "figure.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_attention_command([str(output / "attempt")]) == output / "attempt" / "attention.png"
    with pytest.raises(UsageError, match="differ"):  # one source vs six: separate plots
        plot_attention([paths[0], result_file(output, "attempt-single", "cb")], tmp_path / "mixed.png")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError, match=re.escape("pip install -e '.[plots]'")):
        plot_attention(paths, tmp_path / "again.png")


def test_every_random_draw_has_a_stream_of_its_own():
    """With target_init=normal, ATTEMPT-m's per-task targets differ, and G's down-projection is not
    0.01 x the first target's rows (both once came from one generator restarted at each draw)."""
    method, _ = build("attempt-m", tasks=("cb", "wsc", "rte"), sharpen=False, target_init="normal")
    targets = method.target.weight.detach()
    assert not torch.equal(targets[0], targets[1]) and not torch.equal(targets[1], targets[2])
    down = method.g.down.weight.detach().flatten()[: targets[0].numel()]
    assert not torch.allclose(down, 0.01 * targets[0].flatten())
    again, _ = build("attempt-m", tasks=("cb", "wsc", "rte"), sharpen=False, target_init="normal")
    assert torch.equal(again.target.weight, method.target.weight)  # reproducible from the run's seed
    assert torch.equal(again.g.down.weight, method.g.down.weight)
