#!/usr/bin/env bash
# Commit the newest checkpoint of a training run (PEFT adapter + trainer state, ~60 MB) and its
# metrics, replacing the one committed before, so that a later session resumes the run from
# what the repository holds (benchmarks/quality.py resumes any run with a checkpoints/ folder).
#   scripts/commit_checkpoint.sh runs/quality/train/all-targets-ft-manyicl
set -euo pipefail
run="${1:?usage: scripts/commit_checkpoint.sh RUN_DIR}"
latest=$(find "$run/checkpoints" -maxdepth 1 -name 'step-*' | sort | tail -n 1)
[ -n "$latest" ] || { echo "no checkpoint in $run/checkpoints" >&2; exit 1; }
git rm -r -q --cached --ignore-unmatch "$run/checkpoints" > /dev/null
git add -f "$latest" "$run/metrics.jsonl"
git commit -q -m "checkpoint of an unfinished training run: $latest" -- "$run"
echo "committed $latest"
