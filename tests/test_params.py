"""`bench params` gives the papers' exact parameter counts for every method (T5-base, m = r = 100)."""
from __future__ import annotations

import json

import pytest

from bench.cli import main


@pytest.mark.parametrize("argv,expected", [
    (["--method", "pt"], {"trainable": 76_800, "param_per_task": 76_800}),
    (["--method", "spot-g"], {"trainable": 76_800, "param_per_task": 76_800}),
    (["--method", "spot-t"], {"trainable": 76_800, "param_per_task": 76_800}),
    (["--method", "attempt"], {"trainable": 231_936, "frozen_extra": 460_800}),
    (["--method", "attempt-token"], {"trainable": 231_936}),
    (["--method", "attempt", "--preset", "attempt-code"], {"trainable": 230_400}),
    (["--method", "attempt-m", "--num-tasks", "8"],
     {"per_task": 76_800, "shared": 155_136, "param_per_task": 96_192, "trainable": 76_800 * 8 + 155_136}),
    (["--method", "mpt"], {"trainable": 77_668, "per_task": 868, "shared": 76_800, "param_per_task": 77_668}),
    (["--method", "mpt-m", "--num-tasks", "8"], {"param_per_task": 10_468, "shared": 76_800}),
    (["--method", "amp"], {"shared": 1_769_472, "trainable": 1_769_472}),
    (["--method", "amp-maxpool", "--num-tasks", "11"], {"shared": 1_769_472, "frozen_extra": 11 * 76_800}),
])
def test_papers_counts(capsys, argv, expected):
    assert main(["params", *argv, "--model", "t5-base", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert {key: counts[key] for key in expected} == expected
    assert counts["backbone"] == 222_903_552
