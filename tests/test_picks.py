"""`bench picks` (bench/studies/picks.py): per-draw weights, collapsed runs out of the summary, a
lead only where its count of kept draws is beyond chance, and the init_source confound named."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.studies.picks import Pick, lead_p, summary

REPO = Path(__file__).resolve().parent.parent


def pick(draw: int, score: float, weights: dict, confounded: str | None = None, floor: float = 50.0) -> Pick:
    return Pick("attempt", "rte", 16, draw, 0, score, floor, weights, "attention", confounded)


def test_two_of_two_draws_are_within_the_spread_and_collapsed_runs_are_left_out():
    picks = [pick(0, 55.0, {"qnli": 0.5, "sst2": 0.3, "target": 0.2}),
             pick(1, 58.0, {"qnli": 0.4, "sst2": 0.2, "target": 0.4}),
             pick(2, 50.0, {"qnli": 0.1, "sst2": 0.8, "target": 0.1})]  # at its floor: collapsed, left out
    [line] = summary(picks)
    # 2 sources: P(one of them leads both draws by chance) = 2 · (1/2)² = 0.5
    assert line == ("- attempt, rte k=16: 2 of 3 runs kept (1 collapsed); mean attention qnli 0.45, sst2 0.25, "
                    "target 0.30; qnli leads in 2 of 2 kept draws (p = 0.5, 1 of 2 sources by chance): within the "
                    "draw spread, no lead (qnli, qnli).")


def test_a_lead_beyond_the_draw_spread_is_named():
    # qnli leads 6 of 6 draws among 2 sources: p = 2 · (1/2)⁶ = 0.03125 < 0.05
    picks = [pick(draw, 55.0, {"qnli": 0.5, "sst2": 0.3, "target": 0.2}) for draw in range(6)]
    [line] = summary(picks)
    assert line.endswith("qnli leads in 6 of 6 kept draws (p = 0.0312, 1 of 2 sources by chance): beyond the draw spread.")
    # 5 of 5 is not enough with 2 sources (p = 2/32 = 0.0625)
    assert "within the draw spread" in summary(picks[:5])[0]


def test_lead_p_is_the_bonferroni_corrected_binomial_tail():
    def tail(leads, draws, sources):  # P(X >= leads), X ~ Binomial(draws, 1/sources), summed by hand
        q = 1 / sources
        return sum(math.comb(draws, x) * q ** x * (1 - q) ** (draws - x) for x in range(leads, draws + 1))
    assert lead_p(2, 2, 4) == pytest.approx(0.25)
    assert lead_p(5, 5, 4) == pytest.approx(4 / 4 ** 5)
    assert lead_p(7, 12, 4) == pytest.approx(4 * tail(7, 12, 4))
    assert lead_p(7, 12, 4) == pytest.approx(0.0570, abs=1e-4)  # just above α: 7 of 12 is not a lead
    assert lead_p(8, 12, 4) < 0.05 < lead_p(7, 12, 4)
    assert lead_p(1, 3, 4) == 1.0  # capped


def test_the_target_prompt_is_no_source_and_disagreeing_draws_have_no_lead():
    picks = [pick(0, 55.0, {"qnli": 0.3, "sst2": 0.2, "target": 0.5}),
             pick(1, 58.0, {"qnli": 0.2, "sst2": 0.3, "target": 0.5})]
    [line] = summary(picks)
    assert line.endswith("qnli leads in 1 of 2 kept draws (p = 1, 1 of 2 sources by chance): within the draw "
                         "spread, no lead (qnli, sst2).")


def test_one_kept_draw_is_no_lead_and_the_confound_is_named():
    picks = [pick(0, 55.0, {"qnli": 0.6, "target": 0.4}, confounded="qnli"), pick(1, 49.0, {"qnli": 0.9, "target": 0.1})]
    [line] = summary(picks)
    assert "1 of 2 runs kept (1 collapsed)" in line and "qnli is the only source: no pick to read" in line
    assert line.endswith("confounded: the target prompt started as qnli's, so its weight is not a pick.")


def test_every_run_collapsed():
    assert summary([pick(0, 40.0, {"qnli": 1.0})]) == ["- attempt, rte k=16: every run collapsed (1): no pick to read."]


def test_the_command_on_committed_runs(tmp_path, capsys):
    """Three committed ATTEMPT runs (RTE k=64, target started from QNLI's prompt): every run in
    the table with its floor, the group marked as confounded."""
    [config] = [p for p in (REPO / "leaderboards/minilm-fewshot/attempt/rte").iterdir()
                if any(p.glob("k64-draw*.json")) and '"target_init": "source"' in next(p.glob("*.json")).read_text()]
    shutil.copytree(config, tmp_path / "attempt" / "rte" / config.name)
    assert main(["picks", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| attempt")]
    assert len(rows) == 3 and all("| rte " in row and "| k=64 " in row for row in rows)
    assert "confounded: the target prompt started as qnli's" in out


def test_results_without_picks_are_refused(tmp_path, capsys):
    source = next((REPO / "leaderboards/minilm-fewshot/pt/rte").glob("*/k16-draw0-seed0.json"))
    target = tmp_path / "pt" / "rte" / source.parent.name / source.name
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)
    assert main(["picks", str(tmp_path)]) == 2
    assert "reports attention or SPoT-t similarities" in capsys.readouterr().err
