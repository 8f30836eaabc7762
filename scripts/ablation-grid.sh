#!/usr/bin/env bash
# Runs a grid of bench/ablation.ts commands detached from any one working session, resumably:
#
#   nohup bash scripts/ablation-grid.sh DIR > DIR/grid.out 2>&1 &
#
# DIR/queue.txt holds one set of ablation arguments a line ('#' starts a comment); DIR/args.txt the
# arguments every line shares (data, categories, size, batch, --out). Lines run in order; each skips the
# runs already in DIR/rows.jsonl, so a killed grid restarts where it stopped. After every line the
# results (rows.jsonl, scores.jsonl) are committed, and the queue is read again: lines appended while the
# grid runs are picked up. The grid stops when a whole pass over the queue trained nothing new.
# DIR/grid-log.txt records each line's start and end with the machine's load (what else shared the cores).
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: ablation-grid.sh DIR (with DIR/queue.txt and DIR/args.txt)}
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
read -r -a common < <(grep -v '^#' "$dir/args.txt" | tr '\n' ' ')

commit_results() {
  local files=()
  for f in rows.jsonl scores.jsonl grid-log.txt; do [ -f "$dir/$f" ] && files+=("$dir/$f"); done
  git add -- "${files[@]}" 2>/dev/null || return 0
  git diff --cached --quiet -- "${files[@]}" && return 0
  # another git command may hold the index for a moment: try again
  for _ in 1 2 3 4 5 6; do
    git commit -q -m "ablation: results so far in $dir ($(wc -l < "$dir/rows.jsonl") rows)" -- "${files[@]}" && return 0
    sleep 10
  done
  echo "ablation-grid: could not commit the results (left for the next try)" >&2
}

while :; do
  before=$(wc -l < "$dir/rows.jsonl" 2>/dev/null || echo 0)
  mapfile -t lines < <(grep -v '^\s*#' "$dir/queue.txt" | grep -v '^\s*$')
  for line in "${lines[@]}"; do
    read -r -a args <<< "$line"
    rows0=$(wc -l < "$dir/rows.jsonl" 2>/dev/null || echo 0)
    echo "$(date -u +%FT%TZ) start [$line] load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$dir/grid-log.txt"
    npx tsx bench/ablation.ts "${common[@]}" "${args[@]}" --results "$dir" > "$dir/last-line.out" 2>&1
    rc=$?
    rows1=$(wc -l < "$dir/rows.jsonl" 2>/dev/null || echo 0)
    echo "$(date -u +%FT%TZ) end   [$line] exit $rc, $((rows1 - rows0)) new rows, load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$dir/grid-log.txt"
    if [ "$rc" != 0 ]; then tail -5 "$dir/last-line.out" >> "$dir/grid-log.txt"; fi
    [ "$rows1" != "$rows0" ] && commit_results
  done
  after=$(wc -l < "$dir/rows.jsonl" 2>/dev/null || echo 0)
  [ "$after" = "$before" ] && break
done
commit_results
echo "$(date -u +%FT%TZ) grid done: a pass over the queue trained nothing new" >> "$dir/grid-log.txt"
