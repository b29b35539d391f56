#!/usr/bin/env bash
# make bench: the speed benchmark with 1 and with all threads (speed targets live here, not in tests).
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${BENCH_STEPS:-5}
for threads in 1 "$(nproc)"; do
  OMP_NUM_THREADS=$threads BLIS_NUM_THREADS=$threads build/bench "$steps"
done
