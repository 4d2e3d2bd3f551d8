#!/usr/bin/env bash
# Set up everything the tests need (TTS engines, Python environment) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_tts.sh
bash tools/setup.sh
exec .venv/bin/python -m pytest -ra "$@"
