"""Commands that train nothing start without torch, transformers, datasets, scipy or sklearn.

Each command runs in a fresh interpreter (this test process has long imported
torch), which then reports its exit code, its output and which heavy modules
`sys.modules` holds. Asserting on modules, not on wall time, keeps the test
exact on a loaded machine.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from methods.pt import PTConfig
from methods.registry import METHODS, MethodSpec

REPO = Path(__file__).resolve().parent.parent

HEAVY = ("torch", "transformers", "datasets", "scipy", "sklearn")

PROBE = """
import contextlib, io, json, sys
from bench.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:  # --help
        code = exit.code
print(json.dumps({"code": code, "output": out.getvalue(), "heavy": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,)


def fresh_main(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("argv,code,expected", [
    (["--help"], 0, "Comparative benchmark of prompt-transfer methods"),
    (["--version"], 0, "bench "),
    (["params", "--help"], 0, "--num-tasks"),
    (["params", "--method", "pt", "--profile", "smok"], 2, "unknown profile 'smok'"),
    (["tasks"], 0, "| copa "),
    (["tasks", "--json"], 0, '"name": "webnlg"'),
    (["methods"], 0, "attempt-m"),
    (["methods", "attempt-token"], 0, "attention = 'token'"),
    (["methods", "--json"], 0, '"multi_task": true'),
    (["run", "--method", "ptt", "--suite", "superglue"], 2, "unknown method 'ptt'"),
    (["run", "--method", "pt", "--suite", "superglu"], 2, "unknown suite 'superglu'"),
    (["run", "--method", "pt", "--tasks", "boolk"], 2, "unknown task 'boolk'"),
    (["run", "--method", "pt", "--suite", "superglue", "--preset", "papr"], 2, "unknown preset 'papr'"),
    (["run", "--method", "pt", "--suite", "superglue", "--profile", "smok"], 2, "unknown profile 'smok'"),
    (["run", "--method", "pt", "--suite", "superglue", "--model", "t5-bas"], 2, "unknown backbone 't5-bas'"),
    (["run", "--method", "pt", "--suite", "superglue", "--option", "prompt_len=5"], 2, "unknown option 'prompt_len'"),
    (["run", "--method", "attempt", "--suite", "superglue", "--option", "attention=tokens"], 2, "'tokens'"),
    (["sources", "train", "--tasks", "boolk"], 2, "unknown task 'boolk'"),
])
def test_commands_that_train_nothing_import_no_heavy_module(argv, code, expected):
    result = fresh_main(*argv)
    assert (result["code"], result["heavy"]) == (code, [])
    assert expected in result["output"]


def test_the_lazy_registry_resolves_the_classes_the_packages_export():
    import methods.amp
    import methods.attempt
    import methods.mpt
    import methods.pt
    import methods.spot

    exported = {"pt": methods.pt.PromptTuning, "spot-g": methods.spot.SpotG, "spot-t": methods.spot.SpotT,
                "attempt": methods.attempt.Attempt, "attempt-m": methods.attempt.AttemptMulti,
                "amp": methods.amp.AMP, "mpt": methods.mpt.MPT, "mpt-m": methods.mpt.MPTMulti,
                "mpt-source": methods.mpt.MPTSource}
    assert {name: METHODS.get(name).cls for name in exported} == exported
    assert {name for name, spec in METHODS.items() if spec.multi_task} == {
        "amp", "amp-maxpool", "attempt-m", "mpt-m", "mpt-source"}
    assert all(spec.cls.multi_task == spec.multi_task for _, spec in METHODS.items())
    with pytest.raises(AttributeError, match="'methods.pt' has no attribute 'PromptTun'"):
        methods.pt.PromptTun  # noqa: B018 (a name outside __all__ never imports the model)


def test_a_registry_entry_that_misstates_multi_task_is_refused():
    spec = MethodSpec("methods.pt.model:PromptTuning", PTConfig, multi_task=True)
    with pytest.raises(TypeError, match="methods.pt.model:PromptTuning has multi_task=False"):
        spec.cls


def test_the_run_path_imports_no_scorer_or_tuner_before_it_needs_one():
    """`bench.pipeline.runner` (what every run imports) leaves scipy, sklearn, PEFT and optuna to first use."""
    import subprocess
    import sys

    probe = ("import sys, bench.pipeline.runner; print(','.join(m for m in ('scipy', 'sklearn', 'peft', 'optuna') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == ""
