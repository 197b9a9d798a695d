#!/usr/bin/env bash
# The GPU figures still owed, cut to what a few minutes of a lent GPU allow, as
# one prepared call (issue: when a GPU is lent; run after gpu_release.sh on
# the same warm machine, whose WORK/gpu-release.db the latency rows join):
#   1. latency_gpu.py: eager and graph batch-1 latency of six CIFAR presets and
#      RANDOM random specs, graph repeatability, the predictor's error;
#   2. gpu_search_check.sh for SEARCH_S seconds on a small proxy.
# Each step has a hard time limit, so that what finished still comes back.
set -uo pipefail
WORK=${WORK:-/tmp/gpu-work} RANDOM_SPECS=${RANDOM_SPECS:-8} SEARCH_S=${SEARCH_S:-40}
source "$(dirname "$0")/gpu_env.sh"
mkdir -p "$WORK"
timeout "${LATENCY_LIMIT:-75}" python3 benchmarks/latency_gpu.py --registry "$WORK/gpu-release.db" \
  --presets resnet20 resnet56 resnet110 plain20 plain56 highway20 --random "$RANDOM_SPECS" --batches 1 \
  --out "$OUT/latency_gpu.json" 2>&1 | tee "$OUT/latency_gpu.txt"
cp "$WORK/gpu-release.db" "$OUT/" 2>/dev/null
OUT_SEARCH="$WORK/search"; mkdir -p "$OUT_SEARCH"
OUT="$OUT_SEARCH" SEARCH_S=$SEARCH_S REFERENCES=resnet20 SIZES="--proxy-images 5000 --val-images 2000 --proxy-epochs 2" \
  timeout "${SEARCH_LIMIT:-75}" bash "$(dirname "$0")/gpu_search_check.sh" 2>&1 | tail -n 30 | tee "$OUT/search.txt"
cp "$OUT_SEARCH/search.json" "$OUT_SEARCH/pareto.png" "$OUT/" 2>/dev/null
ls -l "$OUT"
