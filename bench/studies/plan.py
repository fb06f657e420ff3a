"""`bench plan`: how many paired units (seeds × few-shot draws) a study needs before it runs.

A verdict with no power reads as "no difference" when the design could not have seen one. The
plan takes the two variance components a paired cell's test stands on (bench/studies/
inference.py) from pilot results or from the user:

- the **standard deviation of the paired differences** between units (seeds, draws): pooled
  over the pilot's rows compared with the reference at that cell, weighted by their degrees
  of freedom, with its one-sided 80% upper confidence bound beside it (a pilot of 3 units
  estimates it loosely: planning on the bound is the careful choice);
- the **test-set standard error** of a cell's difference (the paired bootstrap over test
  examples), which does not shrink with more units: all of them are scored on one test split,
  so a difference below about 2.5 test-set SEs stays out of reach whatever n.

For each effect Δ it finds the smallest n ≥ 2 at which the test detects Δ with the target
power at Holm's strictest threshold α/m over m comparisons (`inference.power`, exact under
the normal model), and `--simulate N` checks each n by running the real test on N simulated
studies with those components.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from tabulate import tabulate

from bench.core.registry import UsageError
from bench.studies.inference import POWER, cell_test, power

UPPER_BOUND = 0.8
"""One-sided confidence of the pilot's standard deviation's upper bound."""


@dataclass(frozen=True)
class Components:
    label: str
    """Where they come from: a pilot cell (`rte k=16`) or `given`."""
    sd_units: float
    """Standard deviation of the paired differences between units."""
    df: float
    """Its degrees of freedom (pooled over the pilot's rows; inf where given)."""
    se_test: float
    """The test-set standard error of a cell's difference."""
    rows: int = 0
    """Pilot rows pooled (0 where given)."""
    units: int = 0
    """Pilot units per row (the largest)."""

    def sd_upper(self) -> float | None:
        """The sd's one-sided UPPER_BOUND confidence bound, from the chi-square of its df."""
        if not math.isfinite(self.df):
            return None
        return self.sd_units * math.sqrt(self.df / sps.chi2.ppf(1 - UPPER_BOUND, self.df))


def units_needed(effect: float, components: Components, comparisons: int, alpha: float, target: float = POWER,
                 max_units: int = 200) -> int | None:
    """The smallest n in [2, max_units] whose test finds `effect` with power `target` at
    alpha/comparisons; None where none does."""
    alpha_each = alpha / comparisons
    variance = components.sd_units**2
    if variance == 0:  # the test set alone: the normal test, whatever n (2 units still needed)
        return 2 if power(effect, 0.0, components.se_test**2, 2, 1, alpha_each) >= target else None
    enough = lambda n: power(effect, variance, components.se_test**2, n, n - 1, alpha_each) >= target
    if not enough(max_units):
        return None
    low, high = 1, max_units  # power rises with n: the smallest n that is enough, by bisection
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def reachable(effect: float, components: Components, comparisons: int, alpha: float, target: float = POWER) -> bool:
    """Whether any n reaches the target: with infinitely many units the test-set SE alone is left."""
    if components.se_test == 0:
        return True
    z = sps.norm.ppf(1 - alpha / comparisons / 2)
    ratio = effect / components.se_test
    return bool(sps.norm.cdf(ratio - z) + sps.norm.cdf(-ratio - z) >= target)


def simulated_power(effect: float, components: Components, n: int, comparisons: int, alpha: float,
                    simulations: int, seed: int = 0) -> float:
    """The share of `simulations` studies with these components in which the real test
    (`inference.cell_test`, paired, the test-set variance known) rejects at alpha/comparisons:
    each unit's difference is effect + its own N(0, sd²) + one N(0, se_test²) the units share
    (they are scored on one test set)."""
    rng = np.random.default_rng(seed)
    var_test = components.se_test**2
    rejected = 0
    for _ in range(simulations):
        d = effect + components.sd_units * rng.standard_normal(n) + components.se_test * rng.standard_normal()
        test = cell_test(d, np.zeros(n), True, var_test, alpha, with_sign_flip=False)
        rejected += test.p is not None and test.p < alpha / comparisons
    return rejected / simulations


def pilot_components(cells, reference: str) -> tuple[list[Components], list[str]]:
    """Per board cell (task × setting) of a pilot's `--compare-to` cells (compare.board_cells):
    the paired rows' pooled sd of differences and their mean test-set variance; unpaired rows
    and rows without predictions are left out, and said."""
    pooled: dict[str, list] = defaultdict(list)
    notes = []
    for board in cells:
        test = board.cell.test
        label = f"{board.task} k={board.k}" if board.k else board.task
        if test.design != "paired" or test.sd_units is None:
            notes.append(f"{label}: {board.name} against {reference} is {test.blocked or 'unpaired'}: not pooled")
            continue
        if test.var_test is None:
            notes.append(f"{label}: {board.name} has no test-set resamples (no predictions): not pooled")
            continue
        pooled[label].append((test.sd_units**2, test.n - 1, test.var_test, test.n))
    components = []
    for label, rows in sorted(pooled.items()):
        df = sum(r[1] for r in rows)
        components.append(Components(label, math.sqrt(sum(r[0] * r[1] for r in rows) / df), float(df),
                                     math.sqrt(float(np.mean([r[2] for r in rows]))), len(rows), max(r[3] for r in rows)))
    return components, notes


def plan_table(components: list[Components], effects: list[float], comparisons: int, alpha: float, target: float,
               max_units: int, simulations: int, seed: int) -> str:
    """One row per components, one column per effect: the units needed (and, simulated, the
    power the real test reached with them)."""
    table = []
    for c in components:
        upper = c.sd_upper()
        sd = f"{c.sd_units:.2f}" + ("" if upper is None else f" (df {c.df:g}; ≤ {upper:.2f} at {UPPER_BOUND:.0%})")
        row = [c.label, f"{c.rows} rows × {c.units} units" if c.rows else "given", sd, f"{c.se_test:.2f}"]
        for effect in effects:
            n = units_needed(effect, c, comparisons, alpha, target, max_units)
            if n is None:
                row.append("out of reach: test-set SE" if not reachable(effect, c, comparisons, alpha, target)
                           else f"> {max_units}")
                continue
            if simulations:
                row.append(f"{n} (sim {simulated_power(effect, c, n, comparisons, alpha, simulations, seed):.2f})")
            else:
                row.append(str(n))
        table.append(row)
    headers = ["cell", "pilot", "sd of paired differences", "test-set SE", *[f"Δ = {e:g}" for e in effects]]
    return tabulate(table, headers, tablefmt="github", disable_numparse=True)


def plan_text(components: list[Components], effects: list[float], comparisons: int, alpha: float, target: float,
              max_units: int, simulations: int, seed: int, notes: list[str]) -> str:
    reach = sps.norm.ppf(1 - alpha / comparisons / 2) + sps.norm.ppf(target)
    intro = (f"# Power plan\n\nUnits (paired seeds × draws) each cell needs to detect a paired difference Δ (points) "
             f"with power {target:g} at α = {alpha:g} over {comparisons} comparison{'s' * (comparisons != 1)} "
             f"(Holm's strictest threshold, α/{comparisons} = {alpha / comparisons:.2g}), by the test behind bench's "
             f"verdicts (bench/studies/inference.py). The test-set SE does not shrink with more units (they share one test "
             f"split): an effect below about {reach:.1f} test-set SEs (z at α/{comparisons} plus z at the power) stays out "
             f"of reach whatever n. Planning on the sd's upper bound (`--sd-units`) is safer than on a small pilot's "
             f"estimate.")
    if simulations:
        intro += (f" `sim`: the share of {simulations} simulated studies at that n (these components, normal) in which "
                  f"the real test rejected.")
    table = plan_table(components, effects, comparisons, alpha, target, max_units, simulations, seed)
    return "\n\n".join([intro, table, *[f"Note: {note}." for note in notes]]) + "\n"


def parse_effects(text: str) -> list[float]:
    try:
        effects = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        effects = []
    if not effects or any(not e > 0 for e in effects):
        raise UsageError(f"--effects takes positive differences in points, comma-separated (e.g. 1,2,3,5), not {text!r}")
    return effects


def plan_command(args, per_task: tuple[str, ...]) -> str:
    """`bench plan`: components from a pilot (RESULTS_DIR --compare-to METHOD) or given (--sd-units,
    --se-test); checked before any work."""
    from pathlib import Path

    effects = parse_effects(args.effects)
    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha takes a level between 0 and 1 (e.g. 0.05), not {args.alpha:g}")
    if not 0 < args.power < 1:
        raise UsageError(f"--power takes a probability between 0 and 1 (e.g. 0.8), not {args.power:g}")
    if args.simulate < 0:
        raise UsageError(f"--simulate takes a number of simulated studies (e.g. 2000), not {args.simulate}")
    given = args.sd_units is not None
    if given == bool(args.results_dir):
        raise UsageError("bench plan takes pilot results (RESULTS_DIR --compare-to METHOD) or the components "
                         "(--sd-units SD [--se-test SE]), one of the two")
    notes: list[str] = []
    if given:
        if args.sd_units < 0 or (args.se_test or 0) < 0:
            raise UsageError(f"--sd-units and --se-test take standard deviations in points (>= 0), not "
                             f"{args.sd_units:g} and {args.se_test or 0:g}")
        components = [Components("given", args.sd_units, math.inf, args.se_test or 0.0)]
        comparisons = args.comparisons or 1
    else:
        from bench.core.results import load_results
        from bench.studies.compare import board_cells

        if not args.compare_to:
            raise UsageError("bench plan RESULTS_DIR needs --compare-to METHOD: the reference of the pilot's comparisons")
        directory = Path(args.results_dir)
        if not directory.is_dir():
            raise UsageError(f"results directory {args.results_dir!r} does not exist")
        results = load_results(directory, skip_unreadable=args.skip_unreadable)[0]
        cells, _ = board_cells(results, args.compare_to, per_task, args.alpha, args.resamples, args.seed)
        components, notes = pilot_components(cells, args.compare_to)
        if not components:
            raise UsageError(f"{directory}: no paired cell against {args.compare_to} with predictions to plan from")
        comparisons = args.comparisons or sum(c.cell.test.p is not None for c in cells) or 1
    return plan_text(components, effects, comparisons, args.alpha, args.power, args.max_units, args.simulate,
                     args.seed, notes)
