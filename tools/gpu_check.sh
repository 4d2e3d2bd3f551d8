#!/usr/bin/env bash
# The GPU check (tools/gpu_check.py) on a machine with one CUDA GPU, no network and only torch of our dependencies:
# installs the wheels tools/gpu_wheels.sh put in .whl/ (carried there), then runs every check. Under 8 minutes.
#   here:  bash tools/gpu_wheels.sh
#   there: bash tools/gpu_check.sh [--output results.md]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/asr-site .whl/*.whl
    export PYTHONPATH=/tmp/asr-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
exec python3 tools/gpu_check.py "$@"
