#!/usr/bin/env bash
# Set up everything the tests need (TTS engines, the browser the server's page is tested in, Python environment)
# and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_tts.sh
bash tools/apt_install.sh chromium chromium-driver  # tests/test_serve_page.py drives the page headless
bash tools/setup.sh
exec .venv/bin/python -m pytest -ra "$@"
