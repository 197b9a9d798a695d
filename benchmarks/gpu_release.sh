#!/usr/bin/env bash
# The paper-schedule zoo on a GPU, as one prepared call (issue: when a GPU is lent):
#   1. the train-step table on cuda: bf16 eager against the whole step in one
#      CUDA graph, resnet20 and resnet56 at batch 128 (ratio to eager);
#   2. `reszoo release zoo.toml --device cuda`: the manifest's CUDA recipe
#      (He et al.: 64k iterations) in priority order, up to 4 nets on CUDA
#      streams in one process, within BUDGET (nets that cannot fit are not
#      started), into WORK/gpu-release.db, copied to OUT with the log;
#   3. nvjpeg against CPU decoding on 2000 images of the archive.
# Back on the development machine:
#   reszoo release zoo.toml --into registry.db --from OUT/gpu-release.db
# Tried on the CPU first, with a manifest of one short CPU recipe on synthetic data:
#   DEVICE=cpu BUDGET=2m MANIFEST=/tmp/tiny.toml OUT=/tmp/out bash benchmarks/gpu_release.sh
set -uo pipefail
BUDGET=${BUDGET:-7.5m} DEVICE=${DEVICE:-cuda} ONLY=${ONLY:-} WORK=${WORK:-/tmp/gpu-work} MANIFEST=${MANIFEST:-zoo.toml}
source "$(dirname "$0")/gpu_env.sh"
mkdir -p "$WORK"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  python3 -c "import torch, sys; print('torch', torch.__version__, 'python', sys.version.split()[0])"; } | tee "$OUT/gpu.txt"
if [ "$DEVICE" = cuda ]; then
  timeout 100 python3 benchmarks/train_step.py --device cuda --steps 30 --nets resnet20 resnet56 \
    --paths bfloat16 graph 2>&1 | tee "$OUT/train_step.txt"
fi
# shellcheck disable=SC2086  # ONLY is a list of options
python3 -m reszoo release "$MANIFEST" --into "$WORK/gpu-release.db" --device "$DEVICE" --budget "$BUDGET" \
  --data-root "$(dirname "$DATA")" --docs "$WORK/docs" $ONLY --json > "$OUT/release.json" 2> "$WORK/release.log"
status=$?
tail -n 40 "$WORK/release.log"
cp "$WORK/release.log" "$WORK/gpu-release.db" "$OUT/" 2>/dev/null
if [ "$DEVICE" = cuda ]; then
  timeout 60 python3 benchmarks/jpeg_decode_check.py "$DATA" --images 2000 2>&1 | tee "$OUT/jpeg.txt"
fi
ls -l "$OUT"
exit $status
