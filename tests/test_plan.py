"""`bench plan` (bench/studies/plan.py): sample sizes against a simulation of the real test, the
reach the test set allows, pilot components from committed results, and bad input."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from bench.cli import main
from bench.studies.plan import Components, reachable, simulated_power, units_needed

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("sd, se, effect, m", [(4.0, 1.0, 5.0, 3), (6.0, 0.5, 3.0, 1), (3.0, 0.5, 4.0, 22)])
def test_the_planned_n_is_the_smallest_a_simulation_finds_enough(sd, se, effect, m):
    """At the planned n, 4,000 studies simulated with these components and run through the real test
    reject in at least 80% (within Monte Carlo error, SE 0.6%); at n - 1 they do not."""
    components = Components("given", sd, math.inf, se)
    n = units_needed(effect, components, m, 0.05)
    assert n is not None and n > 2
    assert simulated_power(effect, components, n, m, 0.05, 4000, seed=1) >= 0.78
    assert simulated_power(effect, components, n - 1, m, 0.05, 4000, seed=2) <= 0.82


def test_the_test_set_alone_bounds_what_any_n_can_detect():
    """Test-set SE 2, α/22: even infinitely many units leave a normal test of Δ/2 at z = 3.05, whose
    power for Δ = 3 is Φ(1.5 - 3.05) = 0.06; Δ = 9 reaches Φ(4.5 - 3.05) = 0.93."""
    components = Components("given", 2.0, math.inf, 2.0)
    assert not reachable(3.0, components, 22, 0.05)
    assert units_needed(3.0, components, 22, 0.05) is None
    assert sps.norm.ppf(1 - 0.05 / 44) == pytest.approx(3.05, abs=0.01)
    assert reachable(9.0, components, 22, 0.05) and units_needed(9.0, components, 22, 0.05) is not None


def test_without_unit_variance_two_units_do_what_the_test_set_allows():
    """sd 0, test-set SE 1, m = 1: the normal test finds Δ = 3 with power Φ(3 - 1.96) = 0.85, Δ = 2.5
    with Φ(0.54) = 0.71 only."""
    components = Components("given", 0.0, math.inf, 1.0)
    assert units_needed(3.0, components, 1, 0.05) == 2
    assert units_needed(2.5, components, 1, 0.05) is None


def test_the_sd_upper_bound_by_hand():
    # sd 4 on 6 df: 4 sqrt(6 / chi2.ppf(0.2, 6)) = 4 sqrt(6 / 3.070) = 5.59
    assert Components("pilot", 4.0, 6.0, 1.0).sd_upper() == pytest.approx(4 * math.sqrt(6 / 3.0701), abs=1e-3)
    assert Components("given", 4.0, math.inf, 1.0).sd_upper() is None


def test_the_command_with_given_components(capsys):
    assert main(["plan", "--sd-units", "4", "--se-test", "0.5", "--effects", "3,5,0.5", "--comparisons", "22",
                 "--simulate", "2000"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| given"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    components = Components("given", 4.0, math.inf, 0.5)
    for cell, effect in zip(cells[4:6], (3.0, 5.0)):
        n = units_needed(effect, components, 22, 0.05)
        assert cell.startswith(f"{n} (sim ")
        assert float(cell.split("sim ")[1].rstrip(")")) >= 0.77
    assert cells[6] == "out of reach: test-set SE"  # 0.5 points against a test-set SE of 0.5 at α/22
    assert "over 22 comparisons" in out and "α/22 = 0.0023" in out


@pytest.mark.parametrize("argv, message", [
    (["--effects", "x", "--sd-units", "1"], "--effects takes positive differences in points, comma-separated"),
    (["--effects", "0,2", "--sd-units", "1"], "--effects takes positive differences in points"),
    ([], "bench plan takes pilot results (RESULTS_DIR --compare-to METHOD) or the components"),
    (["runs", "--sd-units", "1"], "bench plan takes pilot results (RESULTS_DIR --compare-to METHOD) or the components"),
    (["--sd-units", "1", "--alpha", "2"], "--alpha takes a level between 0 and 1 (e.g. 0.05), not 2"),
    (["--sd-units", "1", "--power", "1"], "--power takes a probability between 0 and 1 (e.g. 0.8), not 1"),
    (["--sd-units", "-1"], "--sd-units and --se-test take standard deviations in points (>= 0), not -1 and 0"),
    (["/nonexistent", "--compare-to", "pt"], "results directory '/nonexistent' does not exist"),
    (["/tmp", "--compare-to", ""], "bench plan RESULTS_DIR needs --compare-to METHOD"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    assert main(["plan", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_pilot_components_from_the_committed_few_shot_results(shared_data_cpu, capsys):
    """The pooled sd of paired differences at RTE k=64, recomputed from the committed JSON by
    independent code: per method (not pt), the differences of its draws' accuracies from pt's."""
    folder = REPO / "leaderboards" / "minilm-fewshot"
    scores: dict[tuple, dict] = defaultdict(dict)
    for path in folder.rglob("k64-draw*-seed0.json"):
        result = json.loads(path.read_text())
        if result["run"]["tasks"] != ["rte"]:
            continue
        key = (result["run"]["method"], json.dumps(result["identity"]["method_config"], sort_keys=True))
        scores[key][result["run"]["draw"]] = result["test"]["rte"]["metrics"]["accuracy"]
    [pt] = [draws for (method, _), draws in scores.items() if method == "pt"]
    squares, df = 0.0, 0
    for (method, _), draws in scores.items():
        if method != "pt":
            d = np.array([draws[i] - pt[i] for i in sorted(draws)])
            squares += d.var(ddof=1) * (len(d) - 1)
            df += len(d) - 1
    assert main(["plan", str(folder), "--compare-to", "pt", "--per-task", "sources,source_tasks", "--effects", "3",
                 "--resamples", "300"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| rte k=64"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2].startswith(f"{math.sqrt(squares / df):.2f} (df {df}; ")
