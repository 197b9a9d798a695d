#!/usr/bin/env bash
# GPU check of the search issue, as one prepared script for a machine with a
# CUDA GPU (run from the repository root; OUT defaults to ./gpu-out):
#   a search of at most 8 minutes on CIFAR-10 (JPEG q75) under a batch-1 CUDA
#   graph latency limit of 0.3 ms, with resnet20/32/56 and plain20 trained on the
#   same proxy for reference; prints the best feasible nets against resnet20,
#   writes every trial as JSON, the Pareto plot, and whether the feasible front
#   dominates the presets (front_vs_presets.txt).
# Needs the data set at DATA (default ../shared/data/cifar10-jpeg.tar.gz) and,
# where optuna/sqlalchemy/alembic are missing, their wheels in WHEELS.
# Tried on a CPU first with tiny sizes:
#   DEVICE=cpu RUNTIME=eager LIMIT_MS=1000 SEARCH_S=30 SIZES="--proxy-images 200 --val-images 100 --proxy-epochs 1" \
#     bash benchmarks/gpu_search_check.sh
set -euo pipefail
DEVICE=${DEVICE:-cuda} RUNTIME=${RUNTIME:-graph} LIMIT_MS=${LIMIT_MS:-0.3} SEARCH_S=${SEARCH_S:-380}
SIZES=${SIZES:---proxy-images 20000 --val-images 5000 --proxy-epochs 4}
REFERENCES=${REFERENCES:-resnet20,resnet32,resnet56,plain20}
TIME=$(command -v /usr/bin/time >/dev/null && echo "/usr/bin/time -v" || echo "")
source "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv 2>&1 | tee "$OUT/gpu.txt" || true
# 8 minutes in all: trials stop starting after 380 s; the presets' proxy runs follow.
# shellcheck disable=SC2086  # SIZES is a list of options
$TIME python3 -m reszoo --registry "$OUT/registry.db" search --dataset "$DATA" --device "$DEVICE" \
  --runtime "$RUNTIME" --max-latency-ms "$LIMIT_MS" --timeout "$SEARCH_S" $SIZES \
  --reference "$REFERENCES" --study gpu-check \
  --storage "journal:$OUT/studies.log" --out "$OUT/search.json" 2> "$OUT/search_time.txt" | tee "$OUT/search.txt"
grep -E "Elapsed|Maximum resident|error" "$OUT/search_time.txt" || true
python3 -m reszoo plot pareto gpu-check --storage "journal:$OUT/studies.log" --out "$OUT/pareto.png"
python3 - "$OUT/search.json" <<'PY' | tee "$OUT/front_vs_presets.txt"
import json, sys
summary = json.load(open(sys.argv[1]))
def score(row):  # what the search ranks by (the negated training loss); older results: top-1
    return row["score"] if row.get("score") is not None else row["accuracy"]
front = [(t["latency_ms"], score(t)) for t in summary["front"]]
for name, ref in summary["references"].items():
    if ref["accuracy"] is None:
        print(f"{name}: {ref['latency_ms']:.3f} ms, over the limit (not trained)")
        continue
    # Dominated: some front net at least as fast and as well scored, and strictly better on one.
    beaten = any(ms <= ref["latency_ms"] and s >= score(ref)
                 and (ms < ref["latency_ms"] or s > score(ref)) for ms, s in front)
    print(f"{name}: {100 * ref['accuracy']:.2f}% at {ref['latency_ms']:.3f} ms; dominated by the front: {beaten}")
best = summary["best"][0] if summary["best"] else None
if best:
    r20 = summary["references"]["resnet20"]
    print(f"best feasible: trial {best['trial']} {best['summary']}: {100 * best['accuracy']:.2f}% at "
          f"{best['latency_ms']:.3f} ms; resnet20 {100 * r20['accuracy']:.2f}% at {r20['latency_ms']:.3f} ms; "
          f"accuracy ratio {best['accuracy'] / r20['accuracy']:.3f}, latency ratio {best['latency_ms'] / r20['latency_ms']:.3f}")
PY
