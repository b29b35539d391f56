#!/usr/bin/env bash
# make bench: build/bench for each case with 1 and with all threads (at most BENCH_MAX_THREADS, 2 by
# default), each case in its own process so that its peak RSS is its own; and, where /usr/bin/python3
# imports torch (make bench-deps), tests/bench/torch_bench.py on the same case with the same weights,
# batch and threads, tcmalloc preloaded and BLIS_NUM_THREADS / OMP_NUM_THREADS set. Then a table:
# ours and PyTorch's images/s and GFLOP/s, ours / PyTorch, peak RSS of both, and the 1 -> 2 thread
# speed-up of the training step. Speed targets live here, not in make test.
# Environment: BENCH_STEPS (timed steps per case, default 3), BENCH_CASES (ids, default all:
# build/bench --list), BENCH_THREADS (thread counts, default "1 N"), BENCH_TORCH=0 to skip PyTorch,
# BENCH_LOG (the key=value lines, default build/bench.log).
# `run.sh --summary LOG` prints the table of an earlier run's key=value lines without running.
set -euo pipefail
cd "$(dirname "$0")/../.."
summary_only=
if [ "${1:-}" = --summary ]; then summary_only=1; export BENCH_LOG=${2:?usage: run.sh --summary LOG}; fi
steps=${BENCH_STEPS:-3}
cores=$(nproc)
max=${BENCH_MAX_THREADS:-2}
top=$(( cores < max ? cores : max ))
threads=${BENCH_THREADS:-$( [ "$top" -gt 1 ] && echo "1 $top" || echo 1 )}
cases=${BENCH_CASES:-$(build/bench --list | cut -f1)}
log=${BENCH_LOG:-build/bench.log}
weights=build/bench-weights
if [ -z "$summary_only" ]; then
mkdir -p "$weights"
: > "$log"

torch=0
if [ "${BENCH_TORCH:-1}" != 0 ] && /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then torch=1; fi
tcmalloc=$(ls /usr/lib/*/libtcmalloc_minimal.so.4 2>/dev/null | head -n 1 || true)
if [ "$torch" = 1 ] && [ -z "$tcmalloc" ]; then
  echo "bench: libtcmalloc-minimal4 is missing (make bench-deps): PyTorch runs with glibc malloc" >&2
fi
if [ "$torch" = 0 ] && [ "${BENCH_TORCH:-1}" != 0 ]; then
  echo "bench: /usr/bin/python3 has no torch (make bench-deps): ours only" >&2
fi
if [ "$torch" = 1 ]; then   # Debian's torch multiplies through the libblas.so.3 alternative
  echo "bench: PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), libblas.so.3 ->" \
       "$(readlink -f /usr/lib/*/libblas.so.3 | head -n 1), LD_PRELOAD ${tcmalloc:-none}"
fi

for t in $threads; do
  for c in $cases; do
    OMP_NUM_THREADS=$t BLIS_NUM_THREADS=$t build/bench --steps "$steps" --case "$c" --save "$weights" | tee -a "$log"
    [ "$torch" = 1 ] || continue
    gflop=$(grep "^bench impl=promoe case=$c threads=$t " "$log" | tail -n 1 | sed 's/.* forward_gflop=\([^ ]*\).*/\1/')
    LD_PRELOAD=${tcmalloc} OMP_NUM_THREADS=$t BLIS_NUM_THREADS=$t MKL_NUM_THREADS=$t \
      /usr/bin/python3 tests/bench/torch_bench.py --case "$c" --checkpoint "$weights/$c.safetensors" \
      --threads "$t" --steps "$steps" --forward-gflop "$gflop" | tee -a "$log"
  done
done
fi

echo
echo "Summary (FLOPs = 2 x multiply-adds of every matrix product; training step = 3 forwards, sampling"
echo "step with CFG = 2 forwards; %BLIS = our GFLOP/s over BLIS's rate on the blocks' own products;"
echo "x = ours / PyTorch; RSS = peak resident MB of the process)"
awk '
/^bench / {
  delete kv
  for (i = 2; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
  k = kv["case"] SUBSEP kv["threads"]
  if (!(kv["case"] in seen)) { seen[kv["case"]] = 1; order[++n] = kv["case"] }
  if (!(kv["threads"] in tseen)) { tseen[kv["threads"]] = 1; tlist[++nt] = kv["threads"] }
  for (f in kv) val[kv["impl"], k, f] = kv[f]
}
function x(a, b) { return b > 0 ? sprintf("%5.2fx", a / b) : "    -" }
function num(v, fmt) { return v == "" ? sprintf("%" length(sprintf(fmt, 0)) "s", "-") : sprintf(fmt, v) }
END {
  printf "%-12s %3s %-6s %10s %8s %6s %11s %8s %7s %9s %9s\n", "case", "thr", "step", "ours img/s", "GFLOP/s",
         "%BLIS", "torch img/s", "GFLOP/s", "ours/pt", "RSS ours", "RSS torch"
  for (i = 1; i <= n; i++) for (j = 1; j <= nt; j++) {
    c = order[i]; t = tlist[j]; k = c SUBSEP t
    if (val["promoe", k, "case"] == "") continue
    for (s = 0; s < 2; s++) {
      step = s ? "sample" : "train"
      oi = val["promoe", k, step "_img_s"]; og = val["promoe", k, step "_gflops"]
      ob = val["promoe", k, step "_blis_frac"]; ti = val["torch", k, step "_img_s"]; tg = val["torch", k, step "_gflops"]
      printf "%-12s %3s %-6s %10.2f %8.1f %5.0f%% %11s %8s %7s %9s %9s\n", c, t, step, oi, og, 100 * ob,
             num(ti, "%11.2f"), num(tg, "%8.1f"), (ti == "" ? "      -" : x(oi, ti)),
             s ? "" : sprintf("%9.0f", val["promoe", k, "rss_mb"]), s ? "" : num(val["torch", k, "rss_mb"], "%9.0f")
    }
  }
  if (nt > 1) {
    print ""
    printf "Training step speed-up, %s -> %s threads:\n", tlist[1], tlist[nt]
    for (i = 1; i <= n; i++) {
      c = order[i]; a = c SUBSEP tlist[1]; b = c SUBSEP tlist[nt]
      line = sprintf("  %-12s ours %s", c, x(val["promoe", b, "train_img_s"], val["promoe", a, "train_img_s"]))
      if (val["torch", a, "train_img_s"] != "" && val["torch", b, "train_img_s"] != "")
        line = line sprintf("   PyTorch %s", x(val["torch", b, "train_img_s"], val["torch", a, "train_img_s"]))
      print line
    }
  }
}' "$log"
