#!/usr/bin/env bash
# Zoo release 1 on a GPU machine, as one prepared run (from the repository root):
# benchmarks/zoo_release.py trains the CIFAR presets within BUDGET minutes
# (default 9), ships the finished entries into a fresh release registry, draws
# the degradation figures and writes summary.json and table.md; this script
# then packs them for the trip back.
#
# What comes back from the GPU machine is limited (at most 8 files of 16 MiB,
# 64 MiB in all), and the CIFAR-stem resnet34 alone is 42.6 MB in float16:
# entries are shipped in priority order while their weights stay under
# SHIP_MAX_MB (default 60; plain34, also 42 MB, is then trained and drawn but
# not shipped), and the results travel as one .tar.gz cut into 15 MiB parts:
#   OUT/zoo-release.tgz.part-00 ...  (release.db, summary.json, table.md, figures, log)
#   OUT/zoo-release.log
# Back on the development machine:
#   mkdir -p /tmp/zoo-release && cat PARTS/zoo-release.tgz.part-* | tar -xz -C /tmp/zoo-release
#   python benchmarks/zoo_release.py --ship-from /tmp/zoo-release   # entries into registry.db, figures into docs/
#
# Needs the data set at DATA (default ../shared/data/cifar10-jpeg.tar.gz) and,
# where sqlalchemy/alembic are missing, their wheels in WHEELS (default .whl).
# Extra arguments go to zoo_release.py (e.g. --presets resnet20 plain20).
set -uo pipefail
WORK=${WORK:-/tmp/zoo-release}
BUDGET=${BUDGET:-9}
SHIP_MAX_MB=${SHIP_MAX_MB:-60}
source "$(dirname "$0")/gpu_env.sh"
mkdir -p "$WORK"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$WORK/gpu.txt" 2>&1
cat "$WORK/gpu.txt"
python3 benchmarks/zoo_release.py --budget-minutes "$BUDGET" --dataset "$DATA" --out "$WORK" \
  --registry "$WORK/work-registry.db" --ship "$WORK/release.db" --ship-max-mb "$SHIP_MAX_MB" "$@" \
  2>&1 | tee "$WORK/zoo-release.log"
status=$?
# Pack whatever exists, also after a failure: a partial release is still worth reading.
cp "$WORK/zoo-release.log" "$OUT/"
files=$(cd "$WORK" && ls release.db summary.json table.md degradation-*.png gpu.txt zoo-release.log 2>/dev/null)
tar -C "$WORK" -czf - $files | split -b 15M -d - "$OUT/zoo-release.tgz.part-"
ls -l "$OUT"
exit $status
