# make bench: build/bench for each case with 1 and with all threads (at most BENCH_MAX_THREADS, 2 by
# default), in fp32 and in bf16 (train.precision; fp32 only on a processor without AVX512-BF16), each
# case in its own process so that its peak RSS is its own; and, where /usr/bin/python3 imports torch
# (make bench-deps), tests/bench/torch_bench.py on the same case with the same weights, batch and
# threads, in fp32 and under bf16 autocast, tcmalloc preloaded, BLIS_NUM_THREADS / OMP_NUM_THREADS
# set and BLIS_ARCH_TYPE set to the kernels our BLIS runs (its fp32 products go through the
# libblas.so.3 alternative: BLIS, never its generic fallback). A probe measures the machine's fp32
# FMA peak per thread count (tests/bench/peak.h). Then a table: ours and PyTorch's images/s and
# GFLOP/s, our fraction of the FMA peak, ours / PyTorch at the same precision and against PyTorch
# fp32, peak RSS of both, the 1 -> N thread speed-up, and the targets.
# Speed targets live here, not in make test.
# Environment: BENCH_STEPS (timed steps per case, default 3), BENCH_CASES (ids, default all but
# `tiny`: build/bench --list), BENCH_THREADS (thread counts, default "1 N"), BENCH_PRECISIONS
# (default "fp32 bf16"), BENCH_TORCH=0 to skip PyTorch, BENCH_PAIR_ROUNDS (interleaved rounds of the
# ProMoE-S / DiT-S/2 step ratio, default 7), BENCH_LOG (the key=value lines, default build/bench.log).
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
cases=${BENCH_CASES:-$(build/bench --list | cut -f1 | grep -v '^tiny$')}
precisions=${BENCH_PRECISIONS:-fp32 bf16}
pair_rounds=${BENCH_PAIR_ROUNDS:-7}
if ! grep -qw avx512_bf16 /proc/cpuinfo && [ -z "$summary_only" ]; then
  echo "bench: this processor has no AVX512-BF16: the bf16 rows are left out (fp32 only)" >&2
  precisions=$(tr ' ' '\n' <<<"$precisions" | grep -vx bf16 | tr '\n' ' ')
fi
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

blis_arch=$(build/bench --blis-arch)
if [ "$torch" = 1 ]; then
  case "$(readlink -f /usr/lib/*/libblas.so.3 | head -n 1)" in
    *blis*) ;;
    *) echo "bench: libblas.so.3 is not BLIS: PyTorch fp32 runs on other kernels than ours" \
            "(update-alternatives --config libblas.so.3-$(gcc -print-multiarch))" >&2 ;;
  esac
fi

for t in $threads; do
  OMP_NUM_THREADS=$t build/bench --peak | tee -a "$log"
  for c in $cases; do
    for p in $precisions; do
      OMP_NUM_THREADS=$t BLIS_NUM_THREADS=$t build/bench --steps "$steps" --case "$c" --precision "$p" \
        --save "$weights" | tee -a "$log"
      [ "$torch" = 1 ] || continue
      gflop=$(grep "^bench impl=promoe case=$c precision=$p threads=$t " "$log" | tail -n 1 |
              sed 's/.* forward_gflop=\([^ ]*\).*/\1/')
      LD_PRELOAD=${tcmalloc} OMP_NUM_THREADS=$t BLIS_NUM_THREADS=$t MKL_NUM_THREADS=$t BLIS_ARCH_TYPE=$blis_arch \
        /usr/bin/python3 tests/bench/torch_bench.py --case "$c" --checkpoint "$weights/$c.safetensors" \
        --threads "$t" --steps "$steps" --precision "$p" --forward-gflop "$gflop" | tee -a "$log"
    done
  done
done
# The MoE step against the dense step, interleaved in one process (bench.c, run_pair): a ratio of two
# processes' averages minutes apart moves by 10-20% on a shared machine.
if grep -qx dit-s2 <<<"$cases" && grep -qx promoe-s <<<"$cases"; then
  for p in $precisions; do
    OMP_NUM_THREADS=$top BLIS_NUM_THREADS=$top build/bench --pair dit-s2,promoe-s --rounds "$pair_rounds" \
      --precision "$p" | tee -a "$log"
  done
fi
fi

echo
echo "Summary (FLOPs = 2 x multiply-adds of every matrix product; training step = 3 forwards, sampling"
echo "step with CFG = 2 forwards; %peak = our GFLOP/s over the fp32 FMA peak of the probe at that thread"
echo "count; %kern = over the rate of BLIS (fp32) or gemm_bf16 (bf16, on oneDNN) alone on the blocks'"
echo "products; x = ours / PyTorch at the same precision (bf16: autocast), x fp32 = ours / PyTorch fp32;"
echo "RSS = peak resident MB of the process)"
awk '
/^bench impl=pair / {
  delete kv
  for (i = 2; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
  for (f in kv) pair[kv["precision"], f] = kv[f]
  next
}
/^bench impl=probe / {
  for (i = 2; i <= NF; i++) { split($i, p, "="); if (p[1] == "fma_peak_gflops") peak[tv] = p[2]; if (p[1] == "threads") tv = p[2] }
  next
}
/^bench / {
  delete kv
  kv["precision"] = "fp32"
  for (i = 2; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
  k = kv["case"] SUBSEP kv["threads"] SUBSEP kv["precision"]
  if (!(kv["case"] in seen)) { seen[kv["case"]] = 1; order[++n] = kv["case"] }
  if (!(kv["threads"] in tseen)) { tseen[kv["threads"]] = 1; tlist[++nt] = kv["threads"] }
  if (!(kv["precision"] in pseen)) { pseen[kv["precision"]] = 1; plist[++np] = kv["precision"] }
  for (f in kv) val[kv["impl"], k, f] = kv[f]
}
function x(a, b) { return b > 0 && a != "" ? sprintf("%5.2fx", a / b) : "     -" }
function num(v, fmt) { return v == "" ? sprintf("%" length(sprintf(fmt, 0)) "s", "-") : sprintf(fmt, v) }
function pct(a, b) { return b > 0 && a != "" ? sprintf("%5.0f%%", 100 * a / b) : "     -" }
function verdict(ok) { return ok ? "met" : "NOT met" }
END {
  printf "%-12s %3s %-4s %-6s %10s %8s %6s %6s %11s %8s %7s %7s %9s %9s\n", "case", "thr", "prec", "step",
         "ours img/s", "GFLOP/s", "%peak", "%kern", "torch img/s", "GFLOP/s", "x", "x fp32", "RSS ours", "RSS torch"
  for (i = 1; i <= n; i++) for (j = 1; j <= nt; j++) for (q = 1; q <= np; q++) {
    c = order[i]; t = tlist[j]; pr = plist[q]; k = c SUBSEP t SUBSEP pr; k32 = c SUBSEP t SUBSEP "fp32"
    if (val["promoe", k, "case"] == "") continue
    for (s = 0; s < 2; s++) {
      step = s ? "sample" : "train"
      oi = val["promoe", k, step "_img_s"]; og = val["promoe", k, step "_gflops"]
      ob = val["promoe", k, step "_blis_frac"]; ti = val["torch", k, step "_img_s"]; tg = val["torch", k, step "_gflops"]
      t32 = val["torch", k32, step "_img_s"]
      printf "%-12s %3s %-4s %-6s %10.2f %8.1f %6s %5.0f%% %11s %8s %7s %7s %9s %9s\n", c, t, pr, step, oi, og,
             pct(og, peak[t]), 100 * ob, num(ti, "%11.2f"), num(tg, "%8.1f"), x(oi, ti), x(oi, t32),
             s ? "" : sprintf("%9.0f", val["promoe", k, "rss_mb"]), s ? "" : num(val["torch", k, "rss_mb"], "%9.0f")
    }
  }
  if (nt > 1) {
    print ""
    printf "Training step speed-up, %s -> %s threads:\n", tlist[1], tlist[nt]
    for (i = 1; i <= n; i++) for (q = 1; q <= np; q++) {
      c = order[i]; pr = plist[q]; a = c SUBSEP tlist[1] SUBSEP pr; b = c SUBSEP tlist[nt] SUBSEP pr
      if (val["promoe", a, "case"] == "" || val["promoe", b, "case"] == "") continue
      line = sprintf("  %-12s %-4s ours %s", c, pr, x(val["promoe", b, "train_img_s"], val["promoe", a, "train_img_s"]))
      if (val["torch", a, "train_img_s"] != "" && val["torch", b, "train_img_s"] != "")
        line = line sprintf("   PyTorch %s", x(val["torch", b, "train_img_s"], val["torch", a, "train_img_s"]))
      print line
    }
  }
  t = tlist[nt]
  print ""
  printf "Targets at %s threads (where measured):\n", t
  for (i = 1; i <= n; i++) for (s = 0; s < 2; s++) {
    c = order[i]; step = s ? "sample" : "train"; k = c SUBSEP t SUBSEP "bf16"; k32 = c SUBSEP t SUBSEP "fp32"
    oi = val["promoe", k, step "_img_s"]
    if (oi == "") continue
    tb = val["torch", k, step "_img_s"]; tf = val["torch", k32, step "_img_s"]
    if (tb != "") printf "  %-12s %-6s bf16 >= 1.25x PyTorch bf16 autocast: %s (%s)\n", c, step, x(oi, tb), verdict(oi >= 1.25 * tb)
    if (tf != "") printf "  %-12s %-6s bf16 >= 1.25x PyTorch fp32:          %s (%s)\n", c, step, x(oi, tf), verdict(oi >= 1.25 * tf)
  }
  g = val["promoe", "dit-s2" SUBSEP t SUBSEP "fp32", "train_gflops"]
  if (g != "" && peak[t] > 0)
    printf "  dit-s2       train  fp32 >= 70%% of the FMA peak:       %s (%s)\n", pct(g, peak[t]), verdict(g >= 0.7 * peak[t])
  for (q = 1; q <= np; q++) {
    pr = plist[q]; d = val["promoe", "dit-s2" SUBSEP t SUBSEP pr, "train_img_s"]; e = val["promoe", "promoe-s" SUBSEP t SUBSEP pr, "train_img_s"]
    r = pair[pr, "ratio_median"]
    if (r != "")
      printf "  promoe-s     train  %s MoE step <= 1.10x dense step:   %5.2fx (%s; median of %d interleaved rounds, %.2fx to %.2fx%s)\n", pr, r,
             verdict(r <= 1.10), pair[pr, "rounds"], pair[pr, "ratio_min"], pair[pr, "ratio_max"],
             d != "" && e != "" ? sprintf("; separate processes: %.2fx", d / e) : ""
    else if (d != "" && e != "")
      printf "  promoe-s     train  %s MoE step <= 1.10x dense step:   %s (%s; separate processes)\n", pr, x(d, e), verdict(d <= 1.10 * e)
  }
}' "$log"
