#!/usr/bin/env bash
# Runs each fuzz harness for SECONDS over its working corpus (build-fuzz/corpus/<target>, grown from
# the committed seeds in tests/fuzz/corpus/<target>). A crashing input is written to
# tests/fuzz/regressions/<target>/ (commit it: test_fuzz replays it). Prints each target's
# executions; exit status 1 if any target found something.
set -u
seconds=$1; shift
found=0
for t in "$@"; do
  mkdir -p build-fuzz/corpus/$t tests/fuzz/regressions/$t
  log=build-fuzz/$t.log
  build-fuzz/fuzz_$t -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix=tests/fuzz/regressions/$t/ \
    build-fuzz/corpus/$t tests/fuzz/corpus/$t >"$log" 2>&1
  rc=$?
  runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  if [ "$rc" -ne 0 ]; then
    found=1
    echo "fuzz $t: FOUND a failure after ${runs:-?} executions (exit $rc), see $log and tests/fuzz/regressions/$t/"
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -n 5
  else
    echo "fuzz $t: ${runs:-?} executions in ${seconds} s, nothing found"
  fi
done
exit $found
