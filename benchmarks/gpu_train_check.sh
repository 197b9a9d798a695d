#!/usr/bin/env bash
# GPU check of the training issue, as one prepared script for a machine with a
# CUDA GPU (run from the repository root; OUT defaults to ./gpu-out):
#   1. benchmarks/train_step.py on cuda: eager, graph and compile step times of
#      resnet20/56/110 at batch 128, as ratios to eager (target: graph or
#      compile <= 0.3x eager for resnet20 and resnet56);
#   2. the paper's full schedule for resnet20 (64k iterations, batch 128) end
#      to end, data loading and evaluation included (target <= 4 min), with its
#      test accuracy on CIFAR-10 (JPEG q75).
# Needs the data set at DATA (default ../shared/data/cifar10-jpeg.tar.gz) and,
# where optuna/sqlalchemy/alembic are missing, their wheels in WHEELS.
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 benchmarks/train_step.py --device cuda --steps 50 | tee "$OUT/train_step.txt"
/usr/bin/time -v python3 -m reszoo --registry "$OUT/registry.db" train resnet20 --dataset "$DATA" \
  --recipe paper --runtime graph --device cuda --publish resnet20-paper --json 2> "$OUT/paper_time.txt" \
  | tee "$OUT/paper_resnet20.json"
grep -E "Elapsed|Maximum resident" "$OUT/paper_time.txt" || true
