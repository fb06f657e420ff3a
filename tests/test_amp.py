"""AMP: DAM's fast form against the paper's literal block sums, the max-pool variant, the
target prompts, what trains, parameter counts, and end-to-end smoke runs."""
from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from bench.backbones.counting import count_params
from bench.cli import main
from bench.core.registry import UsageError
from bench.pipeline.runner import PromptedModel, cached_backbone
from methods.amp import AMP, AMPConfig
from methods.amp.attention import PromptAttention, block_sum_scores, score_scale
from methods.base import MethodContext

N, L, D, K = 3, 5, 8, 4
DIM = 64  # tiny-t5's width
TASKS = ["cb", "wsc", "boolq"]




def attention_module(pooling="mean", scale=1.0, value_init="random", d=D, k=K):
    return PromptAttention(d, k, pooling, scale, value_init, torch.Generator().manual_seed(1))


def random_prompts(n=N, length=L, d=D):
    return torch.randn(n, length, d, generator=torch.Generator().manual_seed(2))


def fake_stage(method, tasks, options, **request):
    """A library that holds a fixed random PT prompt per task: stage 1 is a PT run on the task's
    own data with the paper's schedule (30 epochs, early stopping), never an imported prompt."""
    assert method == "pt" and len(tasks) == 1
    assert request == {"epochs": 30, "patience": 5, "on_target": True}
    seed = sum(map(ord, tasks[0]))
    return {"prompt": torch.randn(options["prompt_length"], DIM, generator=torch.Generator().manual_seed(seed))}


def amp(**options) -> AMP:
    config = AMPConfig(prompt_length=L, **options)
    context = MethodContext(d_model=DIM, embedding=None, tokenizer=None, task_names=TASKS, stage=fake_stage)
    return AMP(config, context)


def relative_error(a, b):
    return float((a - b).detach().norm() / b.detach().norm())


def test_dam_fast_form_equals_the_literal_block_sums():
    psi, prompts = attention_module(), random_prompts()
    oracle = block_sum_scores(psi.query(prompts), psi.key(prompts))
    assert oracle.shape == (N, N)
    assert relative_error(psi.scores(prompts), oracle) < 1e-5


def test_block_sum_oracle_is_the_mean_over_row_pairs():
    queries, keys = random_prompts(d=K), random_prompts(d=K) * 2
    by_pairs = torch.tensor([[sum(float(queries[i, a] @ keys[j, b]) for a in range(L) for b in range(L)) / L**2
                              for j in range(N)] for i in range(N)])
    assert relative_error(block_sum_scores(queries, keys), by_pairs) < 1e-5


def test_maxpool_variant_projects_every_row_then_pools():
    psi, prompts = attention_module("max"), random_prompts()
    w_q, w_k = psi.query.weight, psi.key.weight
    expected = torch.zeros(N, N)
    for i in range(N):
        for j in range(N):
            q = torch.stack([prompts[i, a] @ w_q.T for a in range(L)]).max(dim=0).values
            k = torch.stack([prompts[j, b] @ w_k.T for b in range(L)]).max(dim=0).values
            expected[i, j] = q @ k
    assert relative_error(psi.scores(prompts), expected) < 1e-5
    assert relative_error(psi.scores(prompts), attention_module("mean").scores(prompts)) > 1e-3


def test_softmax_over_sources_and_scale_option():
    prompts = random_prompts()
    plain = attention_module()
    scaled = attention_module(scale=score_scale("sqrt", K))
    assert torch.allclose(scaled.scores(prompts), plain.scores(prompts) / math.sqrt(K))
    attention = plain.attention(prompts)
    assert torch.allclose(attention, torch.softmax(plain.scores(prompts), dim=1))
    assert torch.allclose(attention.sum(dim=1), torch.ones(N))
    assert score_scale("none", K) == 1.0 and score_scale("0.25", K) == 0.25
    with pytest.raises(UsageError):
        score_scale("huge", K)
    with pytest.raises(UsageError):
        attention_module(pooling="sum")


def test_target_prompts_are_attention_weighted_values():
    psi, prompts = attention_module(), random_prompts()
    attention = psi.attention(prompts)
    for i in range(N):
        expected = sum(attention[i, j] * (prompts[j] @ psi.value.weight.T) for j in range(N))
        assert relative_error(psi(prompts)[i], expected) < 1e-5


def test_identity_value_init_starts_from_a_mix_of_the_sources():
    psi, prompts = attention_module(value_init="identity", d=D), random_prompts()
    expected = torch.einsum("ij,jld->ild", psi.attention(prompts), prompts)
    assert torch.allclose(psi(prompts), expected, atol=1e-6)


def test_export_equals_what_the_model_prepends():
    method = amp(pooling="max")
    task_ids = torch.tensor([2, 0, 2, 1])
    prepended = method.prompts(torch.zeros(4, 7, DIM), torch.ones(4, 7), task_ids)
    exported = method.export()
    assert list(exported) == TASKS
    for row, task_id in enumerate(task_ids.tolist()):
        assert torch.equal(prepended[row], exported[TASKS[task_id]])
    report = method.report()["attention"]
    assert report["sources"] == TASKS and set(report["targets"]) == set(TASKS)
    assert all(abs(sum(weights) - 1) < 1e-5 and len(weights) == 3 for weights in report["targets"].values())


def test_source_prompts_come_from_the_library_in_task_order():
    method = amp()
    for i, task in enumerate(TASKS):
        expected = fake_stage("pt", [task], {"prompt_length": L}, epochs=30, patience=5, on_target=True)["prompt"]
        assert torch.equal(method.sources[i], expected)


def test_param_counts(capsys):
    counts = count_params("amp", "t5-base", num_tasks=3)
    assert (counts.trainable, counts.per_task, counts.shared) == (1_769_472, 0, 1_769_472)
    assert counts.frozen_extra == 3 * 100 * 768 and counts.num_tasks == 3
    assert count_params("amp", "t5-base", options={"key_dim": "64"}).shared == 2 * 768 * 64 + 768 * 768
    assert main(["params", "--method", "amp", "--model", "t5-base", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["shared"] == 1_769_472 and printed["per_task"] == 0 and printed["trainable"] == 1_769_472


def test_training_moves_only_psi():
    torch.manual_seed(0)
    backbone = cached_backbone("tiny-t5")
    method = amp()
    model = PromptedModel(backbone, method)
    frozen = {k: v.clone() for k, v in backbone.state_dict().items()}
    sources, psi = method.sources.clone(), {k: v.clone() for k, v in method.psi.state_dict().items()}
    groups = method.param_groups()
    assert [(g.name, g.lr, g.weight_decay) for g in groups] == [("psi", AMPConfig.lr, 1e-5), ("psi_no_decay", AMPConfig.lr, 0.0)]
    assert groups[1].params == [method.psi.value.weight]  # W_V starts at the identity: no decay towards 0
    optimizer = torch.optim.AdamW([{"params": g.params, "lr": 1e-2} for g in groups])
    batch = {"input_ids": torch.randint(3, 300, (4, 12)), "attention_mask": torch.ones(4, 12, dtype=torch.long),
             "labels": torch.randint(3, 300, (4, 3)), "task_ids": torch.tensor([0, 1, 2, 0])}
    model.train()
    for _ in range(3):
        model(batch).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in frozen.items())
    assert torch.equal(method.sources, sources)
    assert all(not torch.equal(v, method.psi.state_dict()[k]) for k, v in psi.items())


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return tmp_path_factory.mktemp("library")


@pytest.mark.parametrize("method", ["amp", "amp-maxpool"])
def test_smoke_run_reports_attention_and_exports_targets(method, library, tmp_path):
    code = main(["run", "--method", method, "--suite", "superglue", "--tasks", "cb,wsc", "--profile", "smoke",
                 "--quiet", "--output", str(tmp_path), "--library", str(library)])
    assert code == 0
    result_path = next(tmp_path.rglob("seed0.json"))
    result = json.loads(result_path.read_text())
    assert result["run"]["tasks"] == ["cb", "wsc"] and set(result["test"]) == {"cb", "wsc"}
    attention = result["method_report"]["attention"]
    assert attention["sources"] == ["cb", "wsc"]
    assert all(abs(sum(w) - 1) < 1e-5 for w in attention["targets"].values())
    assert result["method_config"]["pooling"] == ("max" if method == "amp-maxpool" else "mean")
    assert result["params"]["shared"] == 2 * 64 * 64 + 64 * 64 and result["params"]["frozen_extra"] == 2 * 10 * 64
    exported = load_file(str(result_path.with_suffix(".export.safetensors")))
    assert sorted(exported) == ["cb", "wsc"] and all(t.shape == (10, 64) for t in exported.values())
    assert result["export"] == result_path.with_suffix(".export.safetensors").name
