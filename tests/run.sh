#!/usr/bin/env bash
# Runs every test program given as an argument, from the repository root, and prints one closing
# line "N passed, N failed" counting checks over all programs. Exit status 1 if any check failed.
set -u
passed=0; failed=0; broken=()
for t in "$@"; do
  # The double-precision gradient checks run thousands of forwards of tiny models, where thread
  # start-up costs more than it saves: one thread. The float tests use the machine's threads.
  case "$t" in
    */f64_*) out=$(OMP_NUM_THREADS=1 "$t" 2>&1); rc=$? ;;
    *) out=$("$t" 2>&1); rc=$? ;;
  esac
  printf '%s\n' "$out" | grep -E 'FAIL|passed|skipped' 
  line=$(printf '%s\n' "$out" | grep -E '^[a-z0-9_]+: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
  if [ -z "$line" ]; then broken+=("$t (exit $rc, no summary)"); failed=$((failed+1)); continue; fi
  p=$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line"); f=$(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$line")
  passed=$((passed+p)); failed=$((failed+f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then broken+=("$t (exit $rc)"); failed=$((failed+1)); fi
done
for b in "${broken[@]+"${broken[@]}"}"; do echo "BROKEN $b"; done
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
