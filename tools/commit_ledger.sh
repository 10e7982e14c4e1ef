#!/usr/bin/env bash
# Commits a sweep ledger (launch/local_launch.py --ledger) whenever it holds more
# finished runs than at its last commit, checking every INTERVAL seconds, until the
# launcher whose process id is given has exited (then once more, and stops).
#
#   tools/commit_ledger.sh results/laptop_phase "$(cat launcher.pid)" [INTERVAL=600]
#
# Only the ledger's paths are committed (git commit --only): anything else staged in
# the checkout stays staged.  A commit that fails (another git command holding the
# index) is retried at the next check.
set -u
ledger=$1 pid=$2 interval=${3:-600}
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" || exit 1
count() { find "$ledger" -name FINISHED -o -name DIVERGED 2>/dev/null | wc -l; }
committed=-1
while :; do
  alive=0; kill -0 "$pid" 2>/dev/null && alive=1
  now=$(count)
  if [ "$now" != "$committed" ]; then
    if git add -- "$ledger" && git commit -q --only -m "Ledger $ledger: $now finished runs" -- "$ledger"; then
      committed=$now
      echo "$(date -u +%H:%M:%S) committed $now finished runs"
    fi
  fi
  [ "$alive" = 1 ] || break
  sleep "$interval"
done
