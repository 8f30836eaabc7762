#!/usr/bin/env bash
# Runs a grid of bench/ablation.ts commands detached from any one working session, resumably:
#
#   nohup setsid bash scripts/ablation-grid.sh DIR > /tmp/grid.out 2>&1 < /dev/null &
#
# DIR/queue.txt holds one set of ablation arguments a line ('#' starts a comment); DIR/args.txt the
# arguments every line shares (data, categories, size, batch, --out), relative to the repository this
# script is in, whose code runs. Lines run in order; each skips the runs already in DIR/rows.jsonl, so a
# killed grid restarts where it stopped. After every line the results (rows.jsonl, scores.jsonl,
# grid-log.txt) are committed in the repository that holds DIR, and the queue is read again: the next
# line is the first one not yet run in this pass, so a line inserted or appended while the grid runs is
# picked up at once. The grid stops when a whole pass trained nothing new.
# DIR/grid-log.txt records each line's start and end with the machine's load (what else shared the cores).
#
# To keep the grid's code fixed while the checkout it reports to changes, run it from a worktree:
#   git worktree add --detach ../grid-code && cp -a node_modules ../grid-code/   (its own: main's may change)
#   nohup setsid bash ../grid-code/scripts/ablation-grid.sh "$PWD/DIR" ...
set -uo pipefail
dir=$(cd "${1:?usage: ablation-grid.sh DIR (with DIR/queue.txt and DIR/args.txt)}" && pwd)
cd "$(dirname "$0")/.."
code=$(git rev-parse --short HEAD)
results_repo=$(git -C "$dir" rev-parse --show-toplevel)
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
read -r -a common < <(grep -v '^#' "$dir/args.txt" | tr '\n' ' ')

commit_results() {
  local files=()
  for f in rows.jsonl scores.jsonl grid-log.txt; do [ -f "$dir/$f" ] && files+=("$dir/$f"); done
  git -C "$results_repo" add -- "${files[@]}" 2>/dev/null || return 0
  git -C "$results_repo" diff --cached --quiet -- "${files[@]}" && return 0
  # another git command may hold the index for a moment: try again
  for _ in 1 2 3 4 5 6; do
    git -C "$results_repo" commit -q -m "ablation: results so far in ${dir#"$results_repo"/} ($(wc -l < "$dir/rows.jsonl") rows; code $code)" -- "${files[@]}" && return 0
    sleep 10
  done
  echo "ablation-grid: could not commit the results (left for the next try)" >&2
}

before=$(wc -l < "$dir/rows.jsonl" 2>/dev/null || echo 0)
ran=() # the lines run in this pass
while :; do
  mapfile -t lines < <(grep -v '^\s*#' "$dir/queue.txt" | grep -v '^\s*$')
  line=""
  for l in "${lines[@]}"; do
    seen=0
    for r in "${ran[@]}"; do [ "$r" = "$l" ] && seen=1 && break; done
    [ "$seen" = 0 ] && line=$l && break
  done
  if [ -z "$line" ]; then
    # a pass is over: another if it trained anything (a line may have failed for want of an earlier one)
    after=$(wc -l < "$dir/rows.jsonl" 2>/dev/null || echo 0)
    [ "$after" = "$before" ] && break
    before=$after
    ran=()
    continue
  fi
  ran+=("$line")
  read -r -a args <<< "$line"
  code=$(git rev-parse --short HEAD)
  rows0=$(wc -l < "$dir/rows.jsonl" 2>/dev/null || echo 0)
  committed=$rows0
  echo "$(date -u +%FT%TZ) start [$line] code $code, load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$dir/grid-log.txt"
  npx tsx bench/ablation.ts "${common[@]}" "${args[@]}" --results "$dir" > "$dir/last-line.out" 2>&1 &
  pid=$!
  # a line can take hours: its rows are committed as each run finishes, not only at its end
  # (polled every 5 s so that a line with nothing left to train ends at once; committed at most once a minute)
  last=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    [ $((SECONDS - last)) -lt 60 ] && continue
    last=$SECONDS
    now=$(wc -l < "$dir/rows.jsonl" 2>/dev/null || echo 0)
    if [ "$now" != "$committed" ]; then commit_results; committed=$now; fi
  done
  wait "$pid"
  rc=$?
  rows1=$(wc -l < "$dir/rows.jsonl" 2>/dev/null || echo 0)
  echo "$(date -u +%FT%TZ) end   [$line] exit $rc, $((rows1 - rows0)) new rows, load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$dir/grid-log.txt"
  if [ "$rc" != 0 ]; then tail -5 "$dir/last-line.out" >> "$dir/grid-log.txt"; fi
  [ "$rows1" != "$committed" ] && commit_results
done
echo "$(date -u +%FT%TZ) grid done: a pass over the queue trained nothing new" >> "$dir/grid-log.txt"
commit_results
