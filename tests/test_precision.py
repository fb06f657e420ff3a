"""`--train precision=fp32|tf32|bf16`: what reaches the frozen model's matmuls in training and
in evaluation, what stays fp32, what is refused on this (CPU) machine, and the keys it names."""
from __future__ import annotations

import json

import pytest
import torch

from bench.cli import main
from bench.core import precision
from helpers import result_file
from methods.library import PromptLibrary

SMOKE = ["--tasks", "cb", "--profile", "smoke", "--quiet", "--epochs", "1"]


@pytest.fixture()
def linear_outputs():
    """(grad enabled, output dtype) of every nn.Linear call while the fixture is active: training
    forwards run with gradients, evaluation under no_grad."""
    seen: list[tuple[bool, torch.dtype]] = []

    def hook(module, args, output):
        if isinstance(module, torch.nn.Linear):
            seen.append((torch.is_grad_enabled(), output.dtype))

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    yield seen
    handle.remove()


def run(tmp_path, name: str, *extra: str) -> dict:
    output = tmp_path / name
    assert main(["run", "--method", "pt", *SMOKE, "--output", str(output), "--library", str(tmp_path / "library"),
                 *extra]) == 0
    return json.loads(result_file(output, "pt", "cb").read_text())


def test_bf16_reaches_training_and_evaluation_matmuls(tmp_path, linear_outputs):
    result = run(tmp_path, "bf16", "--train", "precision=bf16")
    training = {dtype for grad, dtype in linear_outputs if grad}
    evaluation = {dtype for grad, dtype in linear_outputs if not grad}
    assert training == {torch.bfloat16} and evaluation == {torch.bfloat16}
    assert result["config"]["train"]["precision"] == "bf16"


def test_fp32_computes_in_fp32(tmp_path, linear_outputs):
    run(tmp_path, "fp32")
    assert {dtype for _, dtype in linear_outputs} == {torch.float32}


def test_bf16_trains_fp32_tensors_and_is_another_configuration(tmp_path):
    from safetensors.torch import load_file

    plain, halved = run(tmp_path, "fp32"), run(tmp_path, "bf16", "--train", "precision=bf16")
    assert plain["run"]["configuration"] != halved["run"]["configuration"]
    assert plain["epochs"][0]["train_loss"] != halved["epochs"][0]["train_loss"]  # other arithmetic, other loss
    tensors = load_file(str(result_file(tmp_path / "bf16", "pt", "cb").with_suffix(".safetensors")))
    assert {t.dtype for t in tensors.values()} == {torch.float32}  # autocast casts copies; the prompt stays fp32


def test_every_run_sets_the_tf32_switch(tmp_path):
    """A tf32 run of a grid must not leave TF32 on for the fp32 runs after it."""
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        run(tmp_path, "fp32")
        assert torch.backends.cuda.matmul.allow_tf32 is False
        precision.use("tf32")
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False


@pytest.mark.parametrize("setting, message", [
    ("precision=fp16", "unknown precision 'fp16'; valid: fp32, tf32, bf16"),
    ("precision=tf32", "precision 'tf32' is a CUDA tensor-core format and this machine has no CUDA GPU; "
                       "valid here: fp32, bf16"),
])
def test_a_precision_this_machine_cannot_use_is_one_line(tmp_path, capsys, setting, message):
    assert not torch.cuda.is_available()
    assert main(["run", "--method", "pt", *SMOKE, "--output", str(tmp_path / "runs"), "--train", setting]) == 2
    assert capsys.readouterr().err == f"bench: error: {message}\n"
    assert not (tmp_path / "runs").exists()


def test_tf32_is_accepted_where_cuda_is(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    precision.check("tf32")  # no error


def test_library_keys_leave_fp32_out_and_name_bf16(tmp_path):
    """Stage keys drop later settings at their neutral values, as configuration keys do."""
    library = tmp_path / "library"
    for name, extra in (("fp32", []), ("bf16", ["--train", "precision=bf16"])):
        assert main(["run", "--method", "spot-g", *SMOKE, "--option", "sources=mnli", "--output", str(tmp_path / name),
                     "--library", str(library), *extra]) == 0
    trains = [entry["spec"]["train"] for entry in PromptLibrary(library).entries()]
    assert sorted(train.get("precision", "absent") for train in trains) == ["absent", "bf16"]  # the mnli source prompt, once each
    assert all("eval_mode" not in train and "backbone_dropout" not in train for train in trains)
