#!/usr/bin/env bash
# The main job on a fresh machine: set everything up, then transcribe the example recording with the bundled
# default model (`asr transcribe FILE` with no other flag), as a text transcript and as words with times.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_tts.sh
bash tools/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "reference:  $(cat examples/speech.txt)"
echo -n "transcript: "
asr transcribe examples/speech.flac
asr transcribe examples/speech.flac --format json
