#!/usr/bin/env bash
# The analyses of the mini study that need a run's checkpoint, for every done run that lacks them
# (so a rerun skips what is stored): sampling noise (the pilot rows evaluated again with another
# sampler seed), expert diversity (`promoe svd`, token choice and ProMoE), token semantics
# (`promoe tokens`, dense and ProMoE; the first seed's t-SNE pictures beside the report).
# Usage: scripts/study-analyse.sh DB OUT_DIR
set -euo pipefail
db=${1:-results/mini-study/study.db}
out=${2:-results/mini-study}
promoe=build/promoe
sweep=study-mini
REDRAW_SEED_OFFSET=1000   # sampler seed of the second evaluation: run seed + this

# Done runs of a label in the study: "run_id seed" lines.
runs_of() {
  sqlite3 "$db" "SELECT r.run_id, r.seed FROM sweep_runs s JOIN runs r USING (run_id)
                 WHERE s.sweep = '$sweep' AND r.label = '$1' AND r.status = 'done' ORDER BY r.seed"
}
count() { sqlite3 "$db" "$1"; }
has_checkpoint() { [ -f "results/checkpoints/$1/latest.safetensors" ]; }

for label in dense promoe; do
  runs_of "$label" | while IFS='|' read -r run seed; do
    redraw=$((seed + REDRAW_SEED_OFFSET))
    if [ "$(count "SELECT count(*) FROM evals WHERE run_id = '$run' AND sample_seed = $redraw")" = 0 ] && has_checkpoint "$run"; then
      "$promoe" eval "$run" --db "$db" --seed "$redraw" --cfg 1.5
    fi
  done
done
for label in dit-moe promoe; do
  runs_of "$label" | while IFS='|' read -r run seed; do
    if [ "$(count "SELECT count(*) FROM diversity WHERE run_id = '$run'")" = 0 ] && has_checkpoint "$run"; then
      "$promoe" svd "$run" --db "$db"
    fi
  done
done
for label in dense promoe; do
  runs_of "$label" | while IFS='|' read -r run seed; do
    if [ "$(count "SELECT count(*) FROM token_stats WHERE run_id = '$run'")" = 0 ] && has_checkpoint "$run"; then
      dir="results/checkpoints/$run/analysis"
      [ "$seed" = 0 ] && dir="$out/figures/tokens-$label"
      "$promoe" tokens "$run" --db "$db" --out "$dir"
    fi
  done
done
