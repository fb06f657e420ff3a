#!/usr/bin/env bash
# STS-B on frozen MiniLM, read as the model was trained or not: each sentence encoded alone and
# compared (--train pair_encoding=two_tower, the default for sentence-transformers checkpoints)
# against one joined segment (joint, PEFT's SEQ_CLS form), for head-only and PT, 3 seeds, with the
# defaults a user gets (--model minilm --profile cpu), beside the frozen model's own cosine on the
# same rows (head-only, two towers, head_lr=0: nothing trains, the head is 5 x cosine).
# Data: the only real STS-B rows here, ../shared/data (32 training pairs; the first 40 dev pairs
# split 20/20 into dev and test by the papers' protocol): a check of the form, not an STS-B score.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
OUT=${OUT:-leaderboards/minilm-stsb}
BENCH=${BENCH:-bench}
run() { $BENCH run --model minilm --profile cpu --tasks stsb --data-dir "$SHARED/data" --seeds 0,1,2 --output "$OUT" \
          --quiet --resume "$@" > /dev/null; }
run --method head-only --train head_lr=0          # the frozen cosine: nothing trained
for encoding in two_tower joint; do
  run --method head-only --train pair_encoding=$encoding
  run --method pt --train pair_encoding=$encoding
done
$BENCH leaderboard "$OUT" --out "${BOARD:-leaderboards/minilm-stsb.md}" > /dev/null
