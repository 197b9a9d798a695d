#!/usr/bin/env bash
# The judge of proxy_fidelity.py on a GPU, as one prepared call (issue: search that pays off):
#   1. the 12 nets that proxy_fidelity.py draws, each trained on all of Fashion-MNIST for EPOCHS epochs once
#      per seed in SEEDS: OUT/judge-<EPOCHS>ep-s012.json, with how well the seeds agree with each other;
#   2. CHECK_EPOCHS epochs, seed 0 alone (OUT/judge-<CHECK_EPOCHS>ep-s0.json: the recipe of the CPU judge in
#      benchmarks/results/proxy-fidelity-fashion-mnist.json), to show
#      whether a GPU judges as the CPU does before its multi-seed judge is trusted.
# One process per net: eager steps of nets this small are bound by the CPU thread that launches them
# (GPU-CALIBRATION.md: 4 processes 3.9x one), and the machine has 16 cores. Part 1 stops after LIMIT_S,
# part 2 after CHECK_LIMIT_S; a net keeps each finished seed, so a stopped part still leaves a judge of
# fewer seeds. Sized from GPU-CALIBRATION.md (84k steps at 300-450 steps/s in all), not yet run on a GPU.
# Before the call, on the development machine (the data set and the wheels travel as carried paths; the
# tracked registry.db, 88 MB, is over the 64 MiB a call carries, so it is untracked for the call):
#   mkdir -p .gpu-data/fashion-mnist .whl && cp ../shared/data/fashion-mnist/* .gpu-data/fashion-mnist/
#   cp ../shared/wheels-gpu/*.whl .whl/      # optuna, sqlalchemy, alembic (reszoo.search imports optuna)
#   git rm -q --cached registry.db && echo /registry.db >> .git/info/exclude
#   device run: bash benchmarks/gpu_fidelity_judge.sh   carry: .gpu-data, .whl
#   afterwards: git reset -q registry.db && sed -i '/^\/registry.db$/d' .git/info/exclude
# Back on the development machine, the proxy (trained there, as the search trains it) is scored against it:
#   python benchmarks/proxy_fidelity.py --dataset fashion-mnist --data-root ../shared/data --full-epochs 5 \
#     --full-from OUT/judge-5ep-s012.json --proxy-precision bfloat16 --out fidelity-gpu-judge.json
# Tried on the CPU first, tiny:
#   DEVICE=cpu DATASET=synthetic:1000 NETS=3 EPOCHS=1 CHECK_EPOCHS=1 SEEDS=0,1 OUT=/tmp/out bash benchmarks/gpu_fidelity_judge.sh
# (DATA_ROOT=../shared/data for Fashion-MNIST on this machine)
set -uo pipefail
DEVICE=${DEVICE:-cuda} DATASET=${DATASET:-fashion-mnist} DATA_ROOT=${DATA_ROOT:-.gpu-data}
NETS=${NETS:-12} EPOCHS=${EPOCHS:-5} CHECK_EPOCHS=${CHECK_EPOCHS:-3} SEEDS=${SEEDS:-0,1,2} LIMIT_S=${LIMIT_S:-300}
CHECK_LIMIT_S=${CHECK_LIMIT_S:-120}
WORK=${WORK:-/tmp/judge-work}
source "$(dirname "$0")/gpu_env.sh"
mkdir -p "$WORK"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  python3 -c "import torch, sys; print('torch', torch.__version__, 'python', sys.version.split()[0])"; } | tee "$OUT/gpu.txt"

judge() {  # judge EPOCHS SEEDS SECONDS: one process per net, SECONDS at most
  local name="judge-${1}ep-s${2//,/}" began=$SECONDS
  for i in $(seq 0 $((NETS - 1))); do
    timeout "$3" python3 benchmarks/proxy_fidelity.py --dataset "$DATASET" --data-root "$DATA_ROOT" \
      --nets "$NETS" --full-only --full-device "$DEVICE" --full-epochs "$1" --full-seeds "$2" \
      --shard "$i/$NETS" --out "$WORK/$name.json" > "$WORK/$name.$i.log" 2>&1 &
  done
  wait
  echo "== $name: $((SECONDS - began)) s for $NETS nets x seeds $2 on $DEVICE"
  cat "$WORK/$name".*.log
  python3 benchmarks/proxy_fidelity.py --dataset "$DATASET" --data-root "$DATA_ROOT" --nets "$NETS" --full-only \
    --full-device "$DEVICE" --full-epochs "$1" --full-seeds "$2" --out "$WORK/$name.json" --report-only | tail -n 3
  cp "$WORK/$name.json" "$OUT/"
}
{ judge "$EPOCHS" "$SEEDS" "$LIMIT_S"; judge "$CHECK_EPOCHS" 0 "$CHECK_LIMIT_S"; } 2>&1 | tee "$OUT/judge.log"
