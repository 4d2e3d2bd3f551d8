#!/usr/bin/env bash
# Install the offline text-to-speech engines the synthetic corpus uses (Debian/Ubuntu packages).
# Skips apt entirely when everything is already installed.
set -euo pipefail
exec bash "$(dirname "$0")/apt_install.sh" espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k \
    festvox-us-slt-hts sox
