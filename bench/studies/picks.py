"""`bench picks`: which source a transfer method leans on, draw by draw, and whether it holds.

ATTEMPT reports its mean attention over the prompts it mixes, SPoT-t the similarities it
ranked its sources by and the one it chose (`method_report`). A reading such as "ATTEMPT picks
the related source" needs three things a mean over runs hides:

- **Per draw.** Every run is shown with its weights, test score and floor.
- **Collapsed runs out.** A run at or below its floor (the best constant answer on its test
  split, bench/studies/stats.py) answered as a constant would: whatever its attention says, it
  picked nothing that mattered, so summaries leave it out and say how many.
- **Beyond the draw spread.** The source that has the largest weight in the most kept draws
  leads only where that count is beyond chance: were the m sources exchangeable, each draw's
  leader would be any of them with probability 1/m, so the count is tested one-sided against
  Binomial(n kept draws, 1/m), Bonferroni-corrected over the m sources it could have been
  (`lead_p`). Below α = 0.05 the summary names it; else it says the lead is within the draw
  spread. Two of two draws is never enough (p = m · (1/m)² ≥ 0.25 for m ≥ 2 sources).

Where the target prompt starts as a copy of one source (ATTEMPT's `target_init=source`, with
`init_source`), the attention to that source is confounded with the target's: the two
prompts are near-identical, so the group is marked and its lead is not read as a pick.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binom
from tabulate import tabulate

from bench.core.registry import UsageError
from bench.studies.report import configuration_rows, differing_settings
from bench.studies.stats import run_scores
from tasks.registry import TASKS


@dataclass(frozen=True)
class Pick:
    row: str
    """The leaderboard row: method and its differing settings."""
    task: str
    k: int
    draw: int
    seed: int
    score: float
    floor: float | None
    weights: dict[str, float]
    """ATTEMPT: attention per prompt (`target`: its own); SPoT-t: similarity per source."""
    kind: str
    """`attention` or `similarity`."""
    confounded_with: str | None
    """The source the target prompt was initialised from, where it was."""

    @property
    def collapsed(self) -> bool:
        return self.floor is not None and self.score <= self.floor

    def leader(self) -> str:
        """The source with the largest weight (the target's own prompt is not a source)."""
        sources = {name: w for name, w in self.weights.items() if name != "target"}
        return max(sources, key=sources.get)


def picks_of(results: list[dict], per_task: tuple[str, ...] = ()) -> list[Pick]:
    """Every run that reports attention or SPoT-t similarities, with its row label and floor."""
    found = []
    rows = configuration_rows(results, per_task)
    for row, label in zip(rows, differing_settings(rows, per_task)):
        scores = run_scores(row)
        for result in row:
            run, report = result["run"], result.get("method_report") or {}
            config = result["identity"]["method_config"]
            confounded = (config.get("init_source") or "mnli") if config.get("target_init") == "source" else None
            name = run["method"] + (f" ({label})" if label else "")
            for task in run["tasks"]:
                score = scores[task][(run["seed"], run["draw"])]
                if report.get("attention"):
                    attention = report["attention"]
                    weights = dict(zip(attention["sources"], attention["targets"][task]))
                    kind = "attention"
                elif report.get("similarities"):
                    weights = dict(report["similarities"][report.get("ranked_by", "mean")])
                    kind, confounded = "similarity", None
                else:
                    continue
                found.append(Pick(name, task, run["k_shot"], run["draw"], run["seed"], score.score, score.floor,
                                  weights, kind, confounded))
    return sorted(found, key=lambda p: (p.row, p.task, p.k, p.draw, p.seed))


LEAD_ALPHA = 0.05


def lead_p(leads: int, draws: int, sources: int) -> float:
    """The chance that some one of `sources` exchangeable sources leads in `leads` or more of
    `draws` draws: P(Binomial(draws, 1/sources) ≥ leads), times `sources` (Bonferroni), at most 1."""
    return min(1.0, sources * float(binom.sf(leads - 1, draws, 1 / sources)))


def lead_line(kept: list[Pick]) -> str:
    """The most frequent leader of the kept draws and whether its count is beyond chance."""
    counts: dict[str, int] = defaultdict(int)
    for pick in kept:
        counts[pick.leader()] += 1
    sources = len([name for name in kept[0].weights if name != "target"])
    leader = max(counts, key=counts.get)
    if sources < 2:
        return f"{leader} is the only source: no pick to read"
    p = lead_p(counts[leader], len(kept), sources)
    tally = f"{leader} leads in {counts[leader]} of {len(kept)} kept draws (p = {p:.3g}, 1 of {sources} sources by chance)"
    if p < LEAD_ALPHA:
        return f"{tally}: beyond the draw spread"
    return f"{tally}: within the draw spread, no lead (" + ", ".join(pick.leader() for pick in kept) + ")"


def summary(picks: list[Pick]) -> list[str]:
    """Per row, task and setting: the kept draws' mean weights and whether one source leads
    beyond the draw spread (`lead_line`)."""
    groups: dict[tuple, list[Pick]] = defaultdict(list)
    for pick in picks:
        groups[(pick.row, pick.task, pick.k)].append(pick)
    lines = []
    for (row, task, k), members in sorted(groups.items()):
        kept = [p for p in members if not p.collapsed]
        where = f"{row}, {task}{f' k={k}' if k else ''}"
        if not kept:
            lines.append(f"- {where}: every run collapsed ({len(members)}): no pick to read.")
            continue
        means = {name: float(np.mean([p.weights[name] for p in kept])) for name in kept[0].weights}
        lead = lead_line(kept)
        confound = kept[0].confounded_with
        if confound:
            lead += f"; confounded: the target prompt started as {confound}'s, so its weight is not a pick"
        weights = ", ".join(f"{name} {value:.2f}" for name, value in means.items())
        lines.append(f"- {where}: {len(kept)} of {len(members)} runs kept ({len(members) - len(kept)} collapsed); "
                     f"mean {kept[0].kind} {weights}; {lead}.")
    return lines


def picks_table(picks: list[Pick]) -> str:
    table = [[p.row, p.task, f"k={p.k}" if p.k else "full", p.draw, p.seed, f"{p.score:.1f}",
              "–" if p.floor is None else f"{p.floor:.1f}", "yes" if p.collapsed else "",
              p.kind, ", ".join(f"{name} {w:.2f}" for name, w in p.weights.items()), p.leader()] for p in picks]
    headers = ["row", "task", "setting", "draw", "seed", "test", "floor", "collapsed", "kind", "weight per source", "leader"]
    return tabulate(table, headers, tablefmt="github", disable_numparse=True)


def picks_command(directory: Path, per_task: tuple[str, ...], skip_unreadable: bool) -> str:
    """`bench picks RESULTS_DIR`: the per-run table, then the summary."""
    from bench.core.results import load_results, require_results

    if not directory.is_dir():
        raise UsageError(f"results directory {str(directory)!r} does not exist")
    picks = picks_of(require_results(load_results(directory, skip_unreadable=skip_unreadable), directory), per_task)
    if not picks:
        raise UsageError(f"no run in {directory} reports attention or SPoT-t similarities (attempt, attempt-token, "
                         "spot-t write them)")
    metrics = sorted({f"{p.task}: {TASKS.get(p.task).report_metric}" for p in picks})
    return (f"# Source picks in `{directory}`\n\nPer run: its test score ({', '.join(metrics)}), its floor (the best "
            f"constant answer on its test split), the weights its method reports per source (ATTEMPT: mean attention, "
            f"`target` its own prompt; SPoT-t: prompt similarity) and the source with the largest. Collapsed runs (at or "
            f"below the floor) are left out of the summary.\n\n" + picks_table(picks) + "\n\n"
            + "\n".join(summary(picks)) + "\n")
