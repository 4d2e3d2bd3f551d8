#!/usr/bin/env bash
# The main job on a fresh machine: install, speak a few sentences with offline TTS, train a tiny model on them
# (about two minutes on two CPU cores), then transcribe one of them with `asr transcribe`.
# Until a default model ships, this shows the whole pipeline working end to end, not a useful recognizer:
# the tiny model only learns the sentences it was trained on.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_tts.sh
bash tools/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
work=exp/quickstart
python tools/make_demo_data.py "$work/data"
asr train --train-manifest "$work/data/manifest.jsonl" --exp-dir "$work/model" --preset tiny --device cpu \
    --no-progress 2>&1 | grep -E "model:|epoch (1|100|200|300|400):|saved" || true
echo "reference:  $(head -1 "$work/data/manifest.jsonl" | python -c 'import json,sys; print(json.load(sys.stdin)["text"])')"
echo -n "transcript: "
asr transcribe "$work/data/utt000.flac" --model "$work/model/model.pt"
