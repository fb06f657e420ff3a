"""MPT: the decomposition, the distillation terms against independent computations,
stochastic task sampling, target initialisation, what trains, parameter counts,
and end-to-end smoke runs of every variant."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from bench.backbones.counting import count_params
from bench.backbones.model import load_backbone
from bench.cli import main
from bench.core.registry import UsageError
from bench.pipeline.data import Encoded, training_plan
from bench.pipeline.runner import PromptedModel, cached_backbone
from methods.base import MethodContext, Mixing
from methods.library import PromptLibrary
from methods.mpt import MPT, MPTConfig, MPTMulti, MPTSource
from methods.mpt.config import SOURCE_FIELDS
from methods.mpt.decomposition import decompose
from methods.mpt.distillation import hidden_mse, logits_kl
from methods.registry import METHODS

L, DIM = 6, 64  # prompt rows; tiny-t5's width
SOURCES = ["mnli", "qnli", "qqp", "sst2", "squad", "record"]




def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class FakeLibrary:
    """Stands in for the runner's stages: fixed random PT prompts and a fixed source stage."""

    def __init__(self):
        self.calls = []
        self.source = {"shared": torch.randn(L, DIM, generator=generator(7)),
                       "u.weight": torch.rand(len(SOURCES), L, generator=generator(8)) + 0.5,
                       "v.weight": torch.rand(len(SOURCES), DIM, generator=generator(9)) + 0.5}

    def __call__(self, method, tasks, options, epochs=None, source=False):
        self.calls.append((method, list(tasks), dict(options)))
        if method == "pt":
            return {"prompt": torch.randn(options["prompt_length"], DIM, generator=generator(sum(map(ord, tasks[0]))))}
        return self.source


def build(cls, tasks, stage=None, **options):
    context = MethodContext(d_model=DIM, embedding=None, tokenizer=None, task_names=tasks,
                            stage=stage or FakeLibrary())
    return cls(MPTConfig(prompt_length=L, **options), context)


# -- decomposition ---------------------------------------------------------------------------

def test_decomposition_is_shared_prompt_times_rank_one_mask():
    shared = torch.randn(L, 5, generator=generator(0))
    u, v = torch.randn(2, L, generator=generator(1)), torch.randn(2, 5, generator=generator(2))
    prompts = decompose(shared, u, v)
    assert prompts.shape == (2, L, 5)
    for b in range(2):
        for a in range(L):
            for c in range(5):
                assert math.isclose(prompts[b, a, c], shared[a, c] * u[b, a] * v[b, c], rel_tol=1e-6, abs_tol=1e-7)
    assert torch.linalg.matrix_rank(decompose(torch.ones(L, 5), u, v)[0]) == 1


def test_prompts_pick_each_examples_task_vectors():
    method = build(MPTMulti, ["cb", "wsc", "rte"])
    with torch.no_grad():
        method.u.weight.copy_(torch.rand(3, L, generator=generator(3)))
    task_ids = torch.tensor([2, 0, 2])
    prompts = method.prompts(torch.zeros(3, 4, DIM), torch.ones(3, 4), task_ids)
    for row, task in enumerate(task_ids.tolist()):
        expected = method.shared * torch.outer(method.u.weight[task], method.v.weight[task])
        assert torch.allclose(prompts[row], expected)


# -- distillation terms ----------------------------------------------------------------------

def test_logits_kl_with_temperature_against_a_loop():
    teacher, student = torch.randn(2, 3, 5, generator=generator(4)), torch.randn(2, 3, 5, generator=generator(5))
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    for temperature in (1.0, 2.0, 4.0):
        total, count = 0.0, 0
        for b in range(2):
            for s in range(3):
                if mask[b, s]:
                    p = [math.exp(x / temperature) for x in teacher[b, s].tolist()]
                    q = [math.exp(x / temperature) for x in student[b, s].tolist()]
                    p, q = [x / sum(p) for x in p], [x / sum(q) for x in q]
                    total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
                    count += 1
        expected = total / count * temperature**2
        assert math.isclose(logits_kl(teacher, student, mask, temperature), expected, rel_tol=1e-5)
    assert float(logits_kl(teacher, teacher, mask, 2.0)) == pytest.approx(0.0, abs=1e-7)


def test_hidden_mse_over_unmasked_positions():
    teacher, student = torch.randn(2, 4, 3, generator=generator(6)), torch.randn(2, 4, 3, generator=generator(7))
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    rows = [(teacher[b, s] - student[b, s]).pow(2).mean() for b in range(2) for s in range(4) if mask[b, s]]
    assert math.isclose(hidden_mse(teacher, student, mask), float(sum(rows) / len(rows)), rel_tol=1e-6)


@pytest.fixture(scope="module")
def batch():
    ids = torch.randint(3, 300, (4, 9), generator=generator(10))
    mask = torch.ones(4, 9, dtype=torch.long)
    mask[1, 6:] = 0
    ids[1, 6:] = 0
    labels = torch.randint(3, 300, (4, 3), generator=generator(11))
    labels[2, 2] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "task_ids": torch.tensor([0, 3, 5, 0])}


@torch.no_grad()
def independent_loss(method: MPTSource, batch, distillation: str) -> float:
    """L = L_PLM + 0.9 (...) from separate backbone passes and torch's own loss functions."""
    backbone = cached_backbone("tiny-t5")
    student_prompt = method.prompts(None, None, batch["task_ids"])
    teacher_prompt = torch.stack([method.teachers[t] for t in batch["task_ids"].tolist()])
    def t5(prompt):  # the Hugging Face model itself, prompt rows prepended by hand
        embeds = torch.cat([prompt, backbone.model.get_input_embeddings()(batch["input_ids"])], dim=1)
        mask = torch.cat([torch.ones(len(prompt), L, dtype=torch.long), batch["attention_mask"]], dim=1)
        return backbone.model(inputs_embeds=embeds, attention_mask=mask, labels=batch["labels"].masked_fill(batch["labels"] == 0, -100),
                              output_hidden_states=True)

    student, teacher = t5(student_prompt), t5(teacher_prompt)
    if distillation == "none":
        return float(student.loss)
    if distillation == "prompt":
        return float(student.loss + 0.9 * F.mse_loss(student_prompt, teacher_prompt))
    keep = batch["labels"] != 0
    temperature = method.config.temperature
    kl = F.kl_div(F.log_softmax(student.logits[keep] / temperature, -1), F.log_softmax(teacher.logits[keep] / temperature, -1),
                  log_target=True, reduction="batchmean") * temperature**2
    if distillation == "logits":
        return float(student.loss + 0.9 * kl)
    source_keep = torch.cat([torch.ones(4, L, dtype=torch.bool), batch["attention_mask"].bool()], dim=1)
    encoder = F.mse_loss(student.encoder_hidden_states[-1][source_keep], teacher.encoder_hidden_states[-1][source_keep])
    decoder = F.mse_loss(student.decoder_hidden_states[-1][keep], teacher.decoder_hidden_states[-1][keep])
    return float(student.loss + 0.9 * (kl + encoder + decoder))


@pytest.mark.parametrize("distillation", ["full", "logits", "prompt", "none"])
def test_source_training_loss_against_independent_passes(distillation, batch):
    backbone = cached_backbone("tiny-t5")
    method = build(MPTSource, SOURCES, distillation=distillation)
    with torch.no_grad():  # students apart from their teachers
        method.shared.add_(torch.randn(L, DIM, generator=generator(12)))
    backbone.eval()  # both computations deterministic
    loss = method.training_loss(backbone, batch, method.prompts(None, None, batch["task_ids"]))
    assert float(loss.detach()) == pytest.approx(independent_loss(method, batch, distillation), rel=1e-5)
    assert set(method.report()["mean_loss_terms"]) == {
        "full": {"plm", "logits", "hidden"}, "logits": {"plm", "logits"}, "prompt": {"plm", "prompt"}, "none": {"plm"},
    }[distillation]


def test_teacher_pass_leaves_the_backbone_in_train_mode(batch):
    backbone = cached_backbone("tiny-t5")
    method = build(MPTSource, SOURCES)
    backbone.train()
    method.training_loss(backbone, batch, method.prompts(None, None, batch["task_ids"]))
    assert backbone.training and backbone.model.training


@pytest.fixture(scope="module")
def dropout_backbone():
    """A tiny-t5 of its own (dropout 0.1), kept in train mode by the tests that use it."""
    backbone = load_backbone("tiny-t5")
    assert backbone.model.config.dropout_rate == 0.1
    return backbone


def identical_student(batch, **options) -> tuple[MPTSource, dict]:
    """One source task whose student prompt is exactly its teacher's (P* = the teacher prompt,
    u = v = ones), and `batch` as a batch of that task."""
    method = build(MPTSource, ["mnli"], **options)
    one_task = {**batch, "task_ids": torch.zeros(4, dtype=torch.long)}
    assert torch.equal(method.prompts(None, None, one_task["task_ids"]), method.teachers[[0, 0, 0, 0]])
    return method, one_task


def test_a_student_equal_to_its_teacher_has_zero_distillation_loss_in_train_mode(dropout_backbone, batch):
    """Both passes run without dropout, so the terms vanish for an identical student even while
    the backbone is in train mode, and L_PLM is the dropout-free pass's cross-entropy."""
    backbone = dropout_backbone
    method, one_task = identical_student(batch)
    args = (one_task["input_ids"], one_task["attention_mask"], one_task["labels"])
    teacher_prompt = method.teachers[[0, 0, 0, 0]]
    with torch.no_grad():
        backbone.eval()
        plm = float(backbone(*args, teacher_prompt).loss)
        backbone.train()
        assert not torch.equal(backbone(*args, teacher_prompt).logits, backbone(*args, teacher_prompt).logits)  # dropout is on
    frozen = {k: v.clone() for k, v in backbone.state_dict().items()}
    optimizer = torch.optim.AdamW([p for g in method.param_groups() for p in g.params], lr=0.3)
    loss = method.training_loss(backbone, one_task, method.prompts(None, None, one_task["task_ids"]))
    loss.backward()
    optimizer.step()
    terms = method.report()["mean_loss_terms"]
    assert terms["logits"] == pytest.approx(0.0, abs=1e-6) and terms["hidden"] == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(terms["plm"]) and terms["plm"] == pytest.approx(plm, rel=1e-6)
    assert float(loss.detach()) == pytest.approx(plm, rel=1e-6)
    assert backbone.training and backbone.model.training
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in frozen.items())


@pytest.mark.parametrize("options", [{"student_dropout": True}, {"distillation": "none"}, {"distillation": "prompt"}])
def test_student_pass_keeps_dropout_unless_distilling(options, dropout_backbone, batch):
    """`student_dropout` (standard KD) noises the student pass, so an identical student scores
    above zero; without logits or hidden terms the student pass keeps the papers' train-mode
    dropout, so L_PLM differs from the dropout-free pass's."""
    backbone = dropout_backbone
    method, one_task = identical_student(batch, **options)
    args = (one_task["input_ids"], one_task["attention_mask"], one_task["labels"])
    with torch.no_grad():
        backbone.eval()
        plm = float(backbone(*args, method.teachers[[0, 0, 0, 0]]).loss)
        backbone.train()
        method.training_loss(backbone, one_task, method.prompts(None, None, one_task["task_ids"]))
    terms = method.report()["mean_loss_terms"]
    assert terms["plm"] != pytest.approx(plm, rel=1e-6)
    if options.get("student_dropout"):
        assert terms["logits"] > 1e-4 and terms["hidden"] > 1e-4


# -- stochastic task sampling ----------------------------------------------------------------

def test_stochastic_task_sampling_draws_two_to_kappa_tasks_per_batch():
    sizes, kappa = [30, 7, 12, 3, 20], 3
    per_task = [[Encoded([t, i], [1], t) for i in range(n)] for t, n in enumerate(sizes)]
    for seed in range(5):
        plan = training_plan(per_task, 8, generator(seed), Mixing(max_tasks_per_batch=kappa))
        left = list(sizes)
        for batch in plan:
            tasks = {item.task_id for item in batch}
            if sum(n > 0 for n in left) >= 2:
                assert 2 <= len(tasks) <= kappa
            else:
                assert len(tasks) == 1
            for item in batch:
                left[item.task_id] -= 1
        used = sorted((item.task_id, item.input_ids[1]) for batch in plan for item in batch)
        assert used == sorted((t, i) for t, n in enumerate(sizes) for i in range(n))


def test_source_training_mixing_follows_the_config():
    assert build(MPTSource, SOURCES).mixing == Mixing(max_tasks_per_batch=6)
    assert build(MPTSource, SOURCES, max_tasks_per_batch=3).mixing == Mixing(max_tasks_per_batch=3)
    assert build(MPTSource, SOURCES, task_sampling=False).mixing == Mixing()


# -- source training's start, target adaptation's start --------------------------------------

def test_students_start_at_the_teachers_mean():
    method = build(MPTSource, SOURCES)
    assert torch.allclose(method.shared, method.teachers.mean(dim=0))
    assert torch.equal(method.u.weight, torch.ones(6, L)) and torch.equal(method.v.weight, torch.ones(6, DIM))
    assert "teachers" not in method.state_dict()


def test_target_vectors_start_at_the_source_averages():
    library = FakeLibrary()
    method = build(MPTMulti, ["cb", "wsc", "rte"], stage=library)
    assert torch.equal(method.shared, library.source["shared"])
    for row in range(3):
        assert torch.allclose(method.u.weight[row], library.source["u.weight"].mean(dim=0))
        assert torch.allclose(method.v.weight[row], library.source["v.weight"].mean(dim=0))
    [(stage, tasks, options)] = library.calls
    assert stage == "mpt-source" and tasks == SOURCES
    assert set(options) == set(SOURCE_FIELDS) and options["prompt_length"] == L


def test_two_learning_rates_and_the_update_ablations():
    groups = {g.name: g for g in build(MPT, ["cb"]).param_groups()}
    assert (groups["shared"].lr, groups["task_vectors"].lr) == (0.3, 0.4)
    assert {g.lr for g in build(MPTSource, SOURCES).param_groups()} == {0.3}
    only_shared = build(MPT, ["cb"], update="shared")
    assert [g.name for g in only_shared.param_groups()] == ["shared"] and not only_shared.u.weight.requires_grad
    only_vectors = build(MPT, ["cb"], update="vectors")
    assert [g.name for g in only_vectors.param_groups()] == ["task_vectors"] and not only_vectors.shared.requires_grad
    assert build(MPT, ["cb"], decomposition=False).u is None
    with pytest.raises(UsageError):
        MPTConfig(decomposition=False, update="vectors")
    with pytest.raises(UsageError):
        MPTConfig(distillation="kl")


# -- parameter counts ------------------------------------------------------------------------

def test_param_counts(capsys):
    counts = count_params("mpt", "t5-base")
    assert (counts.per_task, counts.shared, counts.trainable, counts.param_per_task) == (868, 76_800, 77_668, 77_668)
    group = count_params("mpt-m", "t5-base", num_tasks=8)
    assert group.param_per_task == 10_468 and group.trainable == 76_800 + 8 * 868
    source = count_params("mpt-source", "t5-base", num_tasks=6)
    assert source.frozen_extra == 6 * 76_800 and source.trainable == 76_800 + 6 * 868
    assert count_params("mpt-only-vectors", "t5-base").as_dict() | {"backbone": 0} == {
        "trainable": 868, "per_task": 868, "shared": 0, "frozen_extra": 76_800, "backbone": 0, "num_tasks": 1, "head": 0,
        "param_per_task": 868}
    assert main(["params", "--method", "mpt-m", "--model", "t5-base", "--num-tasks", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["param_per_task"] == 10_468


# -- what trains -----------------------------------------------------------------------------

def train_steps(method, batch, steps=3):
    backbone = cached_backbone("tiny-t5")
    model = PromptedModel(backbone, method)
    optimizer = torch.optim.AdamW([{"params": g.params, "lr": g.lr} for g in method.param_groups()])
    model.train()
    for _ in range(steps):
        model(batch).backward()
        optimizer.step()
        optimizer.zero_grad()


@pytest.mark.parametrize("cls, options", [(MPTSource, {}), (MPT, {"update": "vectors"}), (MPT, {"update": "shared"})])
def test_only_declared_parameters_change(cls, options, batch):
    backbone = cached_backbone("tiny-t5")
    tasks = SOURCES if cls is MPTSource else ["cb"]
    method = build(cls, tasks, **options)
    step_batch = batch if cls is MPTSource else {**batch, "task_ids": torch.zeros(4, dtype=torch.long)}
    frozen = {k: v.clone() for k, v in backbone.state_dict().items()}
    before = {k: v.clone() for k, v in method.named_parameters()}
    teachers = method.teachers.clone() if cls is MPTSource else None
    declared = {id(p) for g in method.param_groups() for p in g.params}
    train_steps(method, step_batch)
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in frozen.items())
    for name, parameter in method.named_parameters():
        assert torch.equal(parameter, before[name]) != (id(parameter) in declared), name
    if teachers is not None:
        assert torch.equal(method.teachers, teachers)


# -- end to end ------------------------------------------------------------------------------

QUICK = ["--profile", "smoke", "--quiet", "--max-train-examples", "8", "--max-eval-examples", "4"]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return tmp_path_factory.mktemp("library")


def run(method, tasks, library, output, *extra):
    return main(["run", "--method", method, "--suite", "superglue", "--tasks", tasks, *QUICK,
                 "--output", str(output), "--library", str(library), *extra])


def source_stage_reports(library) -> list[dict]:
    """method_report of each mpt-source stage stored in the library."""
    entries = [e for e in PromptLibrary(library).entries() if e["spec"]["method"] == "mpt-source"]
    return [json.loads(open(e["results"]).read())["method_report"] for e in entries]


def test_smoke_mpt_trains_the_source_stage_on_the_source_suite(library, tmp_path):
    assert run("mpt", "cb,wsc", library, tmp_path) == 0
    results = sorted(tmp_path.rglob("seed0.json"))
    assert [p.parent.parent.name for p in results] == ["cb", "wsc"]
    result = json.loads(results[0].read_text())
    assert result["method_report"] == {"source_tasks": SOURCES}
    assert result["params"]["trainable"] == 10 * 64 + 10 + 64
    entries = PromptLibrary(library).entries()
    assert sorted(e["spec"]["tasks"][0] for e in entries if e["spec"]["method"] == "pt") == sorted(SOURCES)
    [report] = source_stage_reports(library)
    assert set(report["mean_loss_terms"]) == {"plm", "logits", "hidden"}


def test_smoke_mpt_m_reuses_the_source_stage(library, tmp_path):
    assert run("mpt-m", "cb,wsc", library, tmp_path) == 0
    [path] = tmp_path.rglob("seed0.json")
    result = json.loads(path.read_text())
    assert result["run"]["tasks"] == ["cb", "wsc"] and set(result["test"]) == {"cb", "wsc"}
    assert result["params"]["shared"] == 640 and result["params"]["per_task"] == 74
    assert len(source_stage_reports(library)) == 1


@pytest.mark.parametrize("method", sorted(name for name in METHODS if name.startswith("mpt-") and name not in ("mpt-m", "mpt-source")))
def test_smoke_ablations(method, library, tmp_path):
    """Each ablation runs end to end; source-side ablations train their own (smaller) source stage."""
    assert run(method, "cb", library, tmp_path, "--option", "source_tasks=mnli,sst2") == 0
    [path] = tmp_path.rglob("seed0.json")
    result = json.loads(path.read_text())
    overrides = METHODS.get(method).overrides
    assert all(result["method_config"][k] == v for k, v in overrides.items())
    assert result["method_report"] == {"source_tasks": ["mnli", "sst2"]}
