#!/usr/bin/env bash
# Keep a copy of every checkpoints/last.pt an `asr train` run writes (every train.checkpoint_every_steps steps), as
# EXP_DIR/snapshots/last-<time>.pt, for curves of WER through training (tools/plot_wer_by_source.py). Runs until no
# `asr train` is left running; start it beside one:  bash tools/snapshot_checkpoints.sh EXP_DIR &
set -euo pipefail
exp_dir=${1:?usage: snapshot_checkpoints.sh EXP_DIR}
mkdir -p "$exp_dir/snapshots"
last=""
sleep 30  # let the run start
while pgrep -f "asr train" > /dev/null; do
  if [ -f "$exp_dir/checkpoints/last.pt" ]; then
    stamp=$(stat -c %Y "$exp_dir/checkpoints/last.pt")
    if [ "$stamp" != "$last" ]; then
      sleep 5  # written atomically, but let a replace settle
      cp "$exp_dir/checkpoints/last.pt" "$exp_dir/snapshots/last-$stamp.pt.tmp"
      mv "$exp_dir/snapshots/last-$stamp.pt.tmp" "$exp_dir/snapshots/last-$stamp.pt"
      last=$stamp
    fi
  fi
  sleep 20
done
